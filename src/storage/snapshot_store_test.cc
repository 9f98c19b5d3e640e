#include "storage/snapshot_store.h"

#include <gtest/gtest.h>

#include "storage/sim_file_system.h"

namespace cairn {
namespace {

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirectory("/data").ok()); }
  std::unique_ptr<SnapshotStore> Open(SnapshotOptions options = {}) {
    auto store = SnapshotStore::Open(fs_, "/data/snap", options);
    CAIRN_CHECK(store.ok(), "snapshot store opens: {}", store.status().ToString());
    return std::move(store).value();
  }
  SimFileSystem fs_{5};
};

TEST_F(SnapshotStoreTest, EmptyStoreHasNoSnapshot) {
  EXPECT_FALSE(Open()->LoadNewest().value().has_value());
}

TEST_F(SnapshotStoreTest, SaveThenLoadNewestAfterCrash) {
  auto store = Open();
  ASSERT_TRUE(store->Save({LogIndex(10), Generation(2)}, "state at 10").ok());
  ASSERT_TRUE(store->Save({LogIndex(20), Generation(3)}, "state at 20").ok());
  fs_.Crash(TearMode::kAnyByte);
  auto newest = Open()->LoadNewest().value();
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ((SnapshotMeta{LogIndex(20), Generation(3)}), newest->meta);
  EXPECT_EQ("state at 20", newest->data);
}

TEST_F(SnapshotStoreTest, SavedInPiecesAndSlicesReadsBackWhole) {
  SnapshotOptions options;
  options.write_back_every_bytes = 7;  // Slices end in the header, in and between the pieces.
  auto store = Open(options);
  const std::string first = "membership|";
  std::string second;
  for (int i = 0; i < 40; ++i) second += std::to_string(i);
  ASSERT_TRUE(store->Save({LogIndex(30), Generation(4)}, {first, second}).ok());
  fs_.Crash(TearMode::kAnyByte);
  auto newest = Open()->LoadNewest().value();
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(first + second, newest->data);
}

TEST_F(SnapshotStoreTest, KeepsOnlyTheNewestN) {
  auto store = Open({.retained_snapshots = 2});
  for (uint64_t index = 1; index <= 5; ++index) {
    ASSERT_TRUE(store->Save({LogIndex(index * 100), Generation(1)}, "s").ok());
  }
  const std::vector<SnapshotMeta> expected = {{LogIndex(400), Generation(1)},
                                              {LogIndex(500), Generation(1)}};
  EXPECT_EQ(expected, store->List().value());
}

TEST_F(SnapshotStoreTest, DamagedNewestFallsBackToOlderValidOne) {
  auto store = Open();
  ASSERT_TRUE(store->Save({LogIndex(10), Generation(1)}, "older").ok());
  ASSERT_TRUE(store->Save({LogIndex(20), Generation(1)}, "newer").ok());
  fs_.FlipBit("/data/snap/" + SnapshotStore::FileName({LogIndex(20), Generation(1)}), 50, 1);
  auto newest = store->LoadNewest().value();
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(LogIndex(10), newest->meta.index);
  EXPECT_EQ("older", newest->data);
}

TEST_F(SnapshotStoreTest, CrashDuringSaveNeverExposesAHalfSnapshot) {
  for (uint64_t crash_after = 1; crash_after <= 8; ++crash_after) {
    SimFileSystem fs(crash_after);
    ASSERT_TRUE(fs.CreateDirectory("/data").ok());
    auto store = SnapshotStore::Open(fs, "/data/snap").value();
    ASSERT_TRUE(store->Save({LogIndex(5), Generation(1)}, std::string(3000, 'a')).ok());
    fs.SetCrashPoint(crash_after);
    (void)store->Save({LogIndex(9), Generation(2)}, std::string(3000, 'b'));
    fs.Crash(TearMode::kSectorPrefix);
    auto reopened = SnapshotStore::Open(fs, "/data/snap");
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    auto newest = (*reopened)->LoadNewest();
    ASSERT_TRUE(newest.ok()) << newest.status().ToString();
    ASSERT_TRUE(newest->has_value());
    const Snapshot& snapshot = **newest;
    if (snapshot.meta.index == LogIndex(9)) {
      EXPECT_EQ(std::string(3000, 'b'), snapshot.data);
    } else {
      EXPECT_EQ(LogIndex(5), snapshot.meta.index);
      EXPECT_EQ(std::string(3000, 'a'), snapshot.data);
    }
  }
}

TEST_F(SnapshotStoreTest, UnexpectedFileRefusesToOpen) {
  ASSERT_TRUE(fs_.CreateDirectory("/data/snap").ok());
  fs_.SetRawContents("/data/snap/notes.txt", "hi");
  EXPECT_EQ(StatusCode::kCorruption, SnapshotStore::Open(fs_, "/data/snap").status().code());
}

TEST_F(SnapshotStoreTest, ZeroRetainedIsInvalid) {
  EXPECT_EQ(StatusCode::kInvalidArgument,
            SnapshotStore::Open(fs_, "/data/snap", {.retained_snapshots = 0}).status().code());
}

}  // namespace
}  // namespace cairn
