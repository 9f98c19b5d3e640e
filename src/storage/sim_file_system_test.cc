#include "storage/sim_file_system.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

std::unique_ptr<WritableFile> Create(SimFileSystem& fs, const std::string& path) {
  auto file = fs.OpenWritable(path, OpenMode::kCreateNew);
  CAIRN_CHECK(file.ok(), "test file {} is created: {}", path, file.status().ToString());
  return std::move(file).value();
}

class SimFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirectory("/d").ok()); }
  SimFileSystem fs_{1};
};

TEST_F(SimFileSystemTest, SyncedDataAndNameSurviveCrash) {
  auto file = Create(fs_, "/d/a");
  ASSERT_TRUE(file->Append("hello").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs_.SyncDirectory("/d").ok());
  fs_.Crash(TearMode::kNone);
  EXPECT_EQ("hello", fs_.RawContents("/d/a"));
}

TEST_F(SimFileSystemTest, UnsyncedAppendIsLostWithoutTearing) {
  auto file = Create(fs_, "/d/a");
  ASSERT_TRUE(file->Append("hello").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs_.SyncDirectory("/d").ok());
  ASSERT_TRUE(file->Append(" world").ok());
  fs_.Crash(TearMode::kNone);
  EXPECT_EQ("hello", fs_.RawContents("/d/a"));
}

TEST_F(SimFileSystemTest, NameWithoutDirectorySyncIsLost) {
  auto file = Create(fs_, "/d/a");
  ASSERT_TRUE(file->Append("data").ok());
  ASSERT_TRUE(file->Sync().ok());
  fs_.Crash(TearMode::kNone);
  EXPECT_EQ(FileKind::kMissing, fs_.Stat("/d/a").value());
}

TEST_F(SimFileSystemTest, UnsyncedRenameReverts) {
  fs_.SetRawContents("/d/meta", "old");
  auto file = Create(fs_, "/d/meta.tmp");
  ASSERT_TRUE(file->Append("new").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs_.Rename("/d/meta.tmp", "/d/meta").ok());
  EXPECT_EQ("new", fs_.RawContents("/d/meta"));
  fs_.Crash(TearMode::kNone);
  EXPECT_EQ("old", fs_.RawContents("/d/meta"));
}

TEST_F(SimFileSystemTest, SectorTearKeepsSectorAlignedPrefix) {
  const std::string synced(100, 's');
  const std::string unsynced(2000, 'u');
  bool saw_partial = false;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    SimFileSystem fs(seed);
    ASSERT_TRUE(fs.CreateDirectory("/d").ok());
    auto file = Create(fs, "/d/a");
    ASSERT_TRUE(file->Append(synced).ok());
    ASSERT_TRUE(file->Sync().ok());
    ASSERT_TRUE(fs.SyncDirectory("/d").ok());
    ASSERT_TRUE(file->Append(unsynced).ok());
    fs.Crash(TearMode::kSectorPrefix);
    const std::string after = fs.RawContents("/d/a");
    ASSERT_GE(after.size(), synced.size());
    ASSERT_EQ((synced + unsynced).substr(0, after.size()), after);
    const bool on_boundary = after.size() == synced.size() ||
                             after.size() == synced.size() + unsynced.size() ||
                             after.size() % SimFileSystem::kSectorBytes == 0;
    EXPECT_TRUE(on_boundary) << after.size();
    saw_partial |= after.size() > synced.size() && after.size() < synced.size() + unsynced.size();
  }
  EXPECT_TRUE(saw_partial) << "some seed keeps part of the unsynced write";
}

TEST_F(SimFileSystemTest, ZeroFillKeepsLengthWithZeros) {
  bool saw_zeros = false;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    SimFileSystem fs(seed);
    ASSERT_TRUE(fs.CreateDirectory("/d").ok());
    auto file = Create(fs, "/d/a");
    ASSERT_TRUE(file->Sync().ok());
    ASSERT_TRUE(fs.SyncDirectory("/d").ok());
    ASSERT_TRUE(file->Append(std::string(1500, 'x')).ok());
    fs.Crash(TearMode::kZeroFill);
    const std::string after = fs.RawContents("/d/a");
    ASSERT_EQ(1500u, after.size());
    const size_t first_zero = after.find('\0');
    if (first_zero != std::string::npos) {
      saw_zeros = true;
      EXPECT_EQ(0u, first_zero % SimFileSystem::kSectorBytes);
      EXPECT_EQ(std::string::npos, after.find('x', first_zero));
    }
  }
  EXPECT_TRUE(saw_zeros);
}

TEST_F(SimFileSystemTest, SpaceLimitWritesWhatFitsThenNoSpace) {
  fs_.SetSpaceLimitBytes(10);
  auto file = Create(fs_, "/d/a");
  Status status = file->Append("0123456789abcdef");
  EXPECT_EQ(StatusCode::kNoSpace, status.code());
  EXPECT_EQ(10u, file->Size());
  ASSERT_TRUE(file->Truncate(4).ok());
  EXPECT_TRUE(file->Append("456").ok());
}

TEST_F(SimFileSystemTest, FailedSyncMakesNothingDurable) {
  auto file = Create(fs_, "/d/a");
  ASSERT_TRUE(fs_.SyncDirectory("/d").ok());
  ASSERT_TRUE(file->Append("lost").ok());
  fs_.SetFailSyncs(true);
  EXPECT_EQ(StatusCode::kIoError, file->Sync().code());
  fs_.SetFailSyncs(false);
  fs_.Crash(TearMode::kNone);
  EXPECT_EQ("", fs_.RawContents("/d/a"));
}

TEST_F(SimFileSystemTest, DeniedPrefixIsPermissionDenied) {
  fs_.DenyPermission("/d/secret");
  EXPECT_EQ(StatusCode::kPermissionDenied,
            fs_.OpenWritable("/d/secret", OpenMode::kCreateNew).status().code());
}

TEST_F(SimFileSystemTest, CrashPointKillsProcessUntilRestart) {
  auto file = Create(fs_, "/d/a");  // One mutation.
  fs_.SetCrashPoint(2);
  ASSERT_TRUE(file->Append("first").ok());
  EXPECT_FALSE(file->Append("second").ok());
  EXPECT_TRUE(fs_.dead());
  EXPECT_FALSE(fs_.Stat("/d/a").ok());
  fs_.Crash(TearMode::kNone);
  EXPECT_FALSE(fs_.dead());
  EXPECT_FALSE(file->Append("stale handle").ok()) << "handles from before a crash are dead";
}

TEST_F(SimFileSystemTest, FlipBitChangesDurableBytes) {
  fs_.SetRawContents("/d/a", std::string(4, '\0'));
  fs_.FlipBit("/d/a", 2, 0);
  fs_.Crash(TearMode::kNone);
  EXPECT_EQ(std::string("\0\0\1\0", 4), fs_.RawContents("/d/a"));
}

TEST_F(SimFileSystemTest, ListDirectoryShowsFilesAndSubdirectories) {
  ASSERT_TRUE(fs_.CreateDirectory("/d/sub").ok());
  Create(fs_, "/d/b");
  Create(fs_, "/d/a");
  EXPECT_EQ((std::vector<std::string>{"a", "b", "sub"}), fs_.ListDirectory("/d").value());
}

TEST_F(SimFileSystemTest, OverwrittenSectorsRevertOneByOneOnACrash) {
  // A synced file of zeros (a preallocated segment), overwritten without a sync: under kNone all
  // of it reverts; under a tear mode each sector keeps its new bytes or not, in any mix, holes
  // included (an old sector between new ones); synced overwrites always stay.
  constexpr size_t kSectors = 8;
  const std::string zeros(kSectors * SimFileSystem::kSectorBytes, '\0');
  const std::string ones(zeros.size(), '\1');
  bool saw_hole = false;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SimFileSystem fs(seed);
    ASSERT_TRUE(fs.CreateDirectory("/d").ok());
    {
      auto file = fs.OpenWritable("/d/a", OpenMode::kCreateNew).value();
      ASSERT_TRUE(file->Append(zeros).ok());
      ASSERT_TRUE(file->Sync().ok());
      ASSERT_TRUE(fs.SyncDirectory("/d").ok());
      ASSERT_TRUE(file->WriteAt(0, ones).ok());
      EXPECT_EQ(zeros.size(), file->Size()) << "an overwrite does not grow the file";
    }
    fs.Crash(seed == 1 ? TearMode::kNone : TearMode::kSectorPrefix);
    const std::string after = fs.RawContents("/d/a");
    ASSERT_EQ(zeros.size(), after.size());
    if (seed == 1) {
      EXPECT_EQ(zeros, after);
    }
    std::string sectors;
    for (size_t sector = 0; sector < kSectors; ++sector) {
      const std::string_view bytes =
          std::string_view(after).substr(sector * SimFileSystem::kSectorBytes,
                                         SimFileSystem::kSectorBytes);
      ASSERT_TRUE(bytes == std::string_view(zeros).substr(0, bytes.size()) ||
                  bytes == std::string_view(ones).substr(0, bytes.size()))
          << "a sector is old or new, whole";
      sectors += bytes[0] == 0 ? '0' : '1';
    }
    const size_t old_after_new = sectors.find("10");
    if (old_after_new != std::string::npos &&
        sectors.find('1', old_after_new + 1) != std::string::npos) {
      saw_hole = true;  // New, old, new.
    }
    // Synced overwrites survive.
    auto file = fs.OpenWritable("/d/a", OpenMode::kAppendExisting).value();
    ASSERT_TRUE(file->WriteAt(100, "abc").ok());
    ASSERT_TRUE(file->Sync().ok());
    fs.Crash(TearMode::kSectorPrefix);
    EXPECT_EQ("abc", fs.RawContents("/d/a").substr(100, 3));
  }
  EXPECT_TRUE(saw_hole) << "some crash left an old sector between new ones";
}

}  // namespace
}  // namespace cairn
