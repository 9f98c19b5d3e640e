#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace cairn {
namespace {

TEST(Status, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ("OK", status.ToString());
}

TEST(Status, CarriesCodeAndMessage) {
  Status status = Status::Corruption("segment 1 offset 64: bad checksum");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_EQ("Corruption: segment 1 offset 64: bad checksum", status.ToString());
}

TEST(Status, WithContextPrefixesMessage) {
  Status status = Status::NoSpace("write failed").WithContext("/data/wal");
  EXPECT_EQ(StatusCode::kNoSpace, status.code());
  EXPECT_EQ("/data/wal: write failed", status.message());
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

Result<int> Half(int value) {
  if (value % 2 != 0) return Status::InvalidArgument("odd");
  return value / 2;
}

Result<int> Quarter(int value) {
  CAIRN_ASSIGN_OR_RETURN(int half, Half(value));
  CAIRN_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int value) {
  CAIRN_TRY(Half(value).status());
  return Status::Ok();
}

TEST(Result, HoldsValueOrStatus) {
  EXPECT_EQ(4, Quarter(16).value());
  EXPECT_EQ(StatusCode::kInvalidArgument, Quarter(6).status().code());
  EXPECT_TRUE(CheckEven(2).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> result(std::make_unique<int>(5));
  ASSERT_TRUE(result.ok());
  std::unique_ptr<int> owned = std::move(result).value();
  EXPECT_EQ(5, *owned);
}

TEST(ResultDeathTest, ReadingValueOfFailureCrashesNamingTheInvariant) {
  Result<int> result(Status::NotFound("no such entry"));
  EXPECT_DEATH((void)result.value(), "only read from a successful Result.*no such entry");
}

TEST(ResultDeathTest, BuildingFromOkStatusCrashes) {
  EXPECT_DEATH(Result<int>{Status::Ok()}, "never Ok");
}

TEST(CheckDeathTest, CheckCrashesInEveryBuildWithItsMessage) {
  const int commit = 5;
  const int last = 3;
  EXPECT_DEATH(CAIRN_CHECK(commit <= last, "commit index {} never passes last index {}", commit,
                           last),
               "commit index 5 never passes last index 3");
}

}  // namespace
}  // namespace cairn
