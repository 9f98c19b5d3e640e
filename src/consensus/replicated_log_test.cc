#include "consensus/replicated_log.h"

#include <gtest/gtest.h>

namespace cairn::consensus {
namespace {

wal::Entry E(uint64_t index, uint64_t generation) {
  return wal::Entry{LogIndex(index), Generation(generation), 1, "v" + std::to_string(index)};
}

TEST(ReplicatedLog, GenerationsAndMatching) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1), E(2, 1), E(3, 2)});
  EXPECT_EQ(LogIndex(3), log.last_index());
  EXPECT_EQ(Generation(2), log.last_generation());
  EXPECT_TRUE(log.Matches(LogIndex(0), Generation(0)));
  EXPECT_TRUE(log.Matches(LogIndex(2), Generation(1)));
  EXPECT_FALSE(log.Matches(LogIndex(3), Generation(1)));
  EXPECT_FALSE(log.Matches(LogIndex(4), Generation(2)));
  EXPECT_EQ(LogIndex(1), log.FirstIndexOfGenerationAt(LogIndex(2)));
  EXPECT_EQ(LogIndex(2), log.LastIndexOfGeneration(Generation(1), LogIndex(3)));
  EXPECT_FALSE(log.LastIndexOfGeneration(Generation(3), LogIndex(3)).has_value());
}

TEST(ReplicatedLog, AppendAfterReplacesConflictingSuffixAndReportsTruncation) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1), E(2, 1), E(3, 1)});
  std::vector<wal::Entry> incoming = {E(2, 1), E(3, 2), E(4, 2)};
  EXPECT_EQ(LogIndex(4), log.AppendAfter(incoming));
  EXPECT_EQ(Generation(2), *log.GenerationAt(LogIndex(3)));
  auto unpersisted = log.TakeUnpersisted();
  ASSERT_TRUE(unpersisted.truncate_after.has_value());
  EXPECT_EQ(LogIndex(2), *unpersisted.truncate_after);
  ASSERT_EQ(2u, unpersisted.entries.size());
  EXPECT_EQ(LogIndex(3), unpersisted.entries[0].index);
}

TEST(ReplicatedLog, DuplicateAppendKeepsLaterEntries) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1), E(2, 1), E(3, 1)});
  std::vector<wal::Entry> stale = {E(2, 1)};
  EXPECT_EQ(LogIndex(2), log.AppendAfter(stale));
  EXPECT_EQ(LogIndex(3), log.last_index()) << "a stale duplicate never truncates";
  EXPECT_FALSE(log.TakeUnpersisted().truncate_after.has_value());
}

TEST(ReplicatedLog, HighWaterMarkOnlyMovesForwardAndBoundsApply) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1), E(2, 1), E(3, 1)});
  log.CommitTo(LogIndex(2));
  log.CommitTo(LogIndex(1));
  EXPECT_EQ(LogIndex(2), log.commit_index());
  auto applied = log.TakeToApply(log.commit_index());
  ASSERT_EQ(2u, applied.size());
  EXPECT_EQ(LogIndex(2), log.applied_index());
  EXPECT_TRUE(log.TakeToApply(log.commit_index()).empty());
}

TEST(ReplicatedLogDeathTest, CommittedEntriesAreNeverTruncated) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1), E(2, 1)});
  log.CommitTo(LogIndex(2));
  std::vector<wal::Entry> conflicting = {E(2, 2)};
  EXPECT_DEATH(log.AppendAfter(conflicting), "committed entries are never truncated");
}

TEST(ReplicatedLogDeathTest, CommitNeverPassesLastIndex) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1)});
  EXPECT_DEATH(log.CommitTo(LogIndex(5)), "never passes the last index");
}

TEST(ReplicatedLog, StartsAfterSnapshot) {
  ReplicatedLog log(LogIndex(10), Generation(3), {E(11, 3)});
  EXPECT_EQ(LogIndex(11), log.first_index());
  EXPECT_TRUE(log.Matches(LogIndex(10), Generation(3)));
  EXPECT_FALSE(log.GenerationAt(LogIndex(9)).has_value());
  EXPECT_EQ(LogIndex(10), log.commit_index());
}

TEST(ReplicatedLog, CompactedEntriesLeaveTheLogAtOnceAndMemoryWhenFreed) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1), E(2, 1), E(3, 2), E(4, 2), E(5, 2)});
  log.CommitTo(LogIndex(5));
  ASSERT_EQ(5u, log.TakeToApply(LogIndex(5)).size());
  log.CompactTo(LogIndex(3));
  EXPECT_EQ(3u, log.compacted_held());
  EXPECT_EQ(LogIndex(4), log.first_index());
  EXPECT_EQ(LogIndex(5), log.last_index());
  EXPECT_EQ("v4", log.At(LogIndex(4)).payload);
  EXPECT_EQ(Generation(2), log.GenerationAt(LogIndex(3)));
  EXPECT_FALSE(log.GenerationAt(LogIndex(2)).has_value());
  // More compaction and appends while the first ones are still held.
  log.Append(E(6, 3));
  EXPECT_EQ(2u, log.FreeCompacted(1));
  log.CompactTo(LogIndex(5));
  EXPECT_EQ(4u, log.compacted_held());
  EXPECT_EQ("v6", log.At(LogIndex(6)).payload);
  EXPECT_EQ(Generation(3), log.last_generation());
  EXPECT_EQ(0u, log.FreeCompacted(100));
  EXPECT_EQ(LogIndex(6), log.first_index());
  EXPECT_EQ("v6", log.At(LogIndex(6)).payload);
}

TEST(ReplicatedLog, ALogCompactedToItsEndHasTheSnapshotsGeneration) {
  ReplicatedLog log(LogIndex(0), Generation(0), {E(1, 1), E(2, 4)});
  log.CommitTo(LogIndex(2));
  ASSERT_EQ(2u, log.TakeToApply(LogIndex(2)).size());
  log.CompactTo(LogIndex(2));
  EXPECT_EQ(LogIndex(2), log.last_index());
  EXPECT_EQ(Generation(4), log.last_generation());
  EXPECT_TRUE(log.IsUpToDate(LogIndex(2), Generation(4)));
  log.RestoreSnapshot(LogIndex(9), Generation(5));
  EXPECT_EQ(0u, log.compacted_held());
  EXPECT_EQ(LogIndex(9), log.last_index());
  EXPECT_EQ(Generation(5), log.last_generation());
}

}  // namespace
}  // namespace cairn::consensus
