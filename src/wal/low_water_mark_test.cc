#include "wal/low_water_mark.h"

#include <gtest/gtest.h>

#include "storage/sim_file_system.h"
#include "storage/snapshot_store.h"

namespace cairn::wal {
namespace {

TEST(LowWaterMark, ReleasableKeepsRetainedTail) {
  LowWaterMark mark({.retained_entries = 100});
  EXPECT_EQ(LogIndex(0), mark.ReleasableThrough(LogIndex(50)));
  EXPECT_EQ(LogIndex(0), mark.ReleasableThrough(LogIndex(100)));
  EXPECT_EQ(LogIndex(1), mark.ReleasableThrough(LogIndex(101)));
  EXPECT_EQ(LogIndex(4900), mark.ReleasableThrough(LogIndex(5000)));
}

TEST(LowWaterMark, DefaultRetainsFiveThousandEntries) {
  EXPECT_EQ(LogIndex(5000), LowWaterMark().ReleasableThrough(LogIndex(10000)));
}

class LowWaterMarkCleaning : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirectory("/data").ok()); }
  SimFileSystem fs_{9};
};

TEST_F(LowWaterMarkCleaning, SnapshotThenCleaningDeletesWholeSegmentsOnly) {
  auto log = WriteAheadLog::Open(fs_, "/data/wal", {.segment_bytes_target = 200}).value();
  std::vector<Entry> entries;
  for (uint64_t index = 1; index <= 60; ++index) {
    entries.push_back(Entry{LogIndex(index), Generation(1), 1, "payload-" + std::to_string(index)});
  }
  ASSERT_TRUE(log->Append(entries).ok());
  ASSERT_TRUE(log->Sync().ok());
  const size_t segments_before = log->Segments().size();
  ASSERT_GT(segments_before, 6u);

  auto snapshots = SnapshotStore::Open(fs_, "/data/snap").value();
  ASSERT_TRUE(snapshots->Save({LogIndex(40), Generation(1)}, "state").ok());
  LowWaterMark mark({.retained_entries = 10});
  const uint64_t removed = mark.OnSnapshotDurable(*log, LogIndex(40)).value();
  EXPECT_GT(removed, 0u);
  EXPECT_EQ(LogIndex(30), mark.mark());
  // Every remaining segment holds an entry above the mark; every removed one held only entries at
  // or below it.
  EXPECT_LE(log->first_index(), LogIndex(31));
  EXPECT_GT(log->Segments().front().last_index, LogIndex(30));
  EXPECT_EQ(segments_before - removed, log->Segments().size());
  EXPECT_EQ(log->Segments().size(), fs_.ListDirectory("/data/wal").value().size())
      << "the files on disk are exactly the segments the log holds";

  // Reopen after a crash: the cleaning was durable and the log still reaches the snapshot.
  log.reset();
  fs_.Crash(TearMode::kNone);
  auto reopened = WriteAheadLog::Open(fs_, "/data/wal", {.segment_bytes_target = 200}).value();
  EXPECT_EQ(segments_before - removed, reopened->Segments().size());
  EXPECT_LE(reopened->first_index(), LogIndex(41));
  auto tail = reopened->Read(LogIndex(31), LogIndex(60)).value();
  EXPECT_EQ("payload-31", tail.front().payload);
}

TEST_F(LowWaterMarkCleaning, MarkOnlyMovesForward) {
  auto log = WriteAheadLog::Open(fs_, "/data/wal", {.segment_bytes_target = 200}).value();
  std::vector<Entry> entries;
  for (uint64_t index = 1; index <= 40; ++index) {
    entries.push_back(Entry{LogIndex(index), Generation(1), 1, "p"});
  }
  ASSERT_TRUE(log->Append(entries).ok());
  ASSERT_TRUE(log->Sync().ok());
  LowWaterMark mark({.retained_entries = 5});
  ASSERT_TRUE(mark.OnSnapshotDurable(*log, LogIndex(30)).ok());
  EXPECT_EQ(LogIndex(25), mark.mark());
  EXPECT_EQ(0u, mark.OnSnapshotDurable(*log, LogIndex(20)).value());
  EXPECT_EQ(LogIndex(25), mark.mark());
}

TEST_F(LowWaterMarkCleaning, ActiveSegmentIsNeverDeleted) {
  auto log = WriteAheadLog::Open(fs_, "/data/wal").value();
  ASSERT_TRUE(log->Append(std::vector<Entry>{Entry{LogIndex(1), Generation(1), 1, "only"}}).ok());
  ASSERT_TRUE(log->Sync().ok());
  LowWaterMark mark({.retained_entries = 0});
  EXPECT_EQ(0u, mark.OnSnapshotDurable(*log, LogIndex(1)).value());
  EXPECT_EQ(1u, log->Segments().size());
}

}  // namespace
}  // namespace cairn::wal
