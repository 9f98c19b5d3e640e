#include "storage/data_directory.h"

#include <gtest/gtest.h>

#include "storage/posix_file_system.h"
#include "storage/sim_file_system.h"
#include "storage/temp_directory.h"

namespace cairn {
namespace {

TEST(DataDirectory, CreatesMissingDirectoryWithMarker) {
  TempDirectory dir;
  PosixFileSystem fs;
  auto opened = DataDirectory::Open(fs, dir.Join("member/data"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->created());
  EXPECT_EQ(FileKind::kFile, fs.Stat(dir.Join("member/data/CAIRN")).value());
  auto reopened = DataDirectory::Open(fs, dir.Join("member/data"));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_FALSE(reopened->created());
}

TEST(DataDirectory, InitialisesEmptyExistingDirectory) {
  TempDirectory dir;
  PosixFileSystem fs;
  auto opened = DataDirectory::Open(fs, dir.path());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_TRUE(opened->created());
}

TEST(DataDirectory, RefusesDirectoryThatIsNotCairns) {
  TempDirectory dir;
  PosixFileSystem fs;
  ASSERT_TRUE(fs.CreateDirectory(dir.Join("member")).ok());  // What an etcd data dir holds.
  Status status = DataDirectory::Open(fs, dir.path()).status();
  EXPECT_EQ(StatusCode::kInvalidArgument, status.code());
  EXPECT_NE(std::string::npos, status.message().find("is not a Cairn data directory"))
      << status.ToString();
  EXPECT_NE(std::string::npos, status.message().find("'member'")) << status.ToString();
  EXPECT_EQ(FileKind::kMissing, fs.Stat(dir.Join("CAIRN")).value()) << "left untouched";
}

TEST(DataDirectory, RefusesNewerFormatVersion) {
  SimFileSystem fs(1);
  ASSERT_TRUE(fs.CreateDirectory("/data").ok());
  fs.SetRawContents("/data/CAIRN", "cairn data directory\nformat_version 2\n");
  Status status = DataDirectory::Open(fs, "/data").status();
  EXPECT_EQ(StatusCode::kUnsupported, status.code());
  EXPECT_NE(std::string::npos, status.message().find("format version 2")) << status.ToString();
}

TEST(DataDirectory, RefusesDamagedMarker) {
  SimFileSystem fs(1);
  ASSERT_TRUE(fs.CreateDirectory("/data").ok());
  fs.SetRawContents("/data/CAIRN", "garbage");
  EXPECT_EQ(StatusCode::kCorruption, DataDirectory::Open(fs, "/data").status().code());
}

TEST(DataDirectory, RefusesAFile) {
  SimFileSystem fs(1);
  fs.SetRawContents("/data", "x");
  EXPECT_EQ(StatusCode::kInvalidArgument, DataDirectory::Open(fs, "/data").status().code());
}

TEST(DataDirectory, CrashDuringCreationLeavesUsableDirectory) {
  for (uint64_t crash_after = 1; crash_after <= 4; ++crash_after) {
    SimFileSystem fs(crash_after);
    ASSERT_TRUE(fs.CreateDirectory("/data").ok());
    fs.SetCrashPoint(crash_after);
    (void)DataDirectory::Open(fs, "/data");
    fs.Crash(TearMode::kSectorPrefix);
    auto reopened = DataDirectory::Open(fs, "/data");
    EXPECT_TRUE(reopened.ok()) << "crash after " << crash_after << ": "
                               << reopened.status().ToString();
  }
}

TEST(DataDirectory, PermissionDeniedIsReported) {
  SimFileSystem fs(1);
  ASSERT_TRUE(fs.CreateDirectory("/data").ok());
  fs.DenyPermission("/data");
  Status status = DataDirectory::Open(fs, "/data").status();
  EXPECT_EQ(StatusCode::kPermissionDenied, status.code()) << status.ToString();
}

}  // namespace
}  // namespace cairn
