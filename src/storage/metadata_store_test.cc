#include "storage/metadata_store.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/crc32c.h"

#include "storage/sim_file_system.h"

namespace cairn {
namespace {

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirectory("/data").ok()); }
  std::unique_ptr<MetadataStore> Open() {
    auto store = MetadataStore::Open(fs_, "/data");
    CAIRN_CHECK(store.ok(), "metadata store opens: {}", store.status().ToString());
    return std::move(store).value();
  }
  SimFileSystem fs_{3};
};

TEST_F(MetadataStoreTest, MissingRecordMeansGenerationZeroNoVote) {
  EXPECT_EQ((DurableMetadata{Generation(0), NodeId(0)}), Open()->current());
}

TEST_F(MetadataStoreTest, SavedRecordSurvivesCrash) {
  auto store = Open();
  ASSERT_TRUE(store->Save({Generation(3), NodeId(2)}).ok());
  fs_.Crash(TearMode::kAnyByte);
  EXPECT_EQ((DurableMetadata{Generation(3), NodeId(2)}), Open()->current());
}

TEST_F(MetadataStoreTest, CrashAtEveryStepLeavesOldOrNewRecord) {
  for (uint64_t crash_after = 1; crash_after <= 6; ++crash_after) {
    SimFileSystem fs(crash_after);
    ASSERT_TRUE(fs.CreateDirectory("/data").ok());
    auto store = MetadataStore::Open(fs, "/data").value();
    ASSERT_TRUE(store->Save({Generation(1), NodeId(1)}).ok());
    fs.SetCrashPoint(crash_after);
    (void)store->Save({Generation(2), NodeId(3)});
    fs.Crash(TearMode::kAnyByte);
    auto reopened = MetadataStore::Open(fs, "/data");
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    const DurableMetadata seen = (*reopened)->current();
    EXPECT_TRUE(seen == (DurableMetadata{Generation(1), NodeId(1)}) ||
                seen == (DurableMetadata{Generation(2), NodeId(3)}))
        << "crash after " << crash_after << ": generation " << seen.generation.value();
  }
}

TEST_F(MetadataStoreTest, DamagedRecordRefusesToOpen) {
  auto store = Open();
  ASSERT_TRUE(store->Save({Generation(5), NodeId(1)}).ok());
  fs_.FlipBit("/data/meta", 17, 3);
  Status status = MetadataStore::Open(fs_, "/data").status();
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("/data/meta")) << status.ToString();
}

TEST_F(MetadataStoreTest, FailedSaveIsFinal) {
  auto store = Open();
  fs_.SetFailSyncs(true);
  EXPECT_FALSE(store->Save({Generation(1), NodeId(1)}).ok());
  fs_.SetFailSyncs(false);
  EXPECT_EQ(StatusCode::kFailed, store->Save({Generation(1), NodeId(1)}).code());
}

TEST_F(MetadataStoreTest, EncodeDecodeRoundTrip) {
  const DurableMetadata metadata{Generation(0x0102030405060708), NodeId(99)};
  EXPECT_EQ(metadata, MetadataStore::Decode(MetadataStore::Encode(metadata)).value());
  EXPECT_EQ(StatusCode::kCorruption, MetadataStore::Decode("short").status().code());
}

TEST_F(MetadataStoreTest, NewerVersionIsUnsupported) {
  std::string bytes = MetadataStore::Encode({Generation(1), NodeId(1)});
  bytes[8] = 9;  // format version 9, checksum recomputed below
  const uint32_t crc = crc32c::Value(bytes.data(), 32);
  std::memcpy(bytes.data() + 32, &crc, 4);
  EXPECT_EQ(StatusCode::kUnsupported, MetadataStore::Decode(bytes).status().code());
}

TEST_F(MetadataStoreTest, GoingBackInGenerationCrashes) {
  auto store = Open();
  ASSERT_TRUE(store->Save({Generation(4), NodeId(0)}).ok());
  EXPECT_DEATH((void)store->Save({Generation(3), NodeId(0)}), "the generation never goes back");
}

TEST_F(MetadataStoreTest, ChangingAVoteInOneGenerationCrashes) {
  auto store = Open();
  ASSERT_TRUE(store->Save({Generation(4), NodeId(1)}).ok());
  EXPECT_DEATH((void)store->Save({Generation(4), NodeId(2)}), "a vote cast in generation 4");
}

}  // namespace
}  // namespace cairn
