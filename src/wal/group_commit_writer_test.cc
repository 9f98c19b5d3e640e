#include "wal/group_commit_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "storage/sim_file_system.h"
#include "storage/posix_file_system.h"
#include "storage/temp_directory.h"

namespace cairn::wal {
namespace {

TEST(GroupCommitWriter, ManyWritersShareSyncs) {
  TempDirectory dir;
  PosixFileSystem fs;
  auto log = WriteAheadLog::Open(fs, dir.Join("wal")).value();
  constexpr int kWriters = 16;
  constexpr int kAppendsPerWriter = 40;
  std::vector<std::vector<LogIndex>> seen(kWriters);
  {
    GroupCommitWriter writer(*log);
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        for (int i = 0; i < kAppendsPerWriter; ++i) {
          auto durable = writer.AppendAndWait(Generation(1), 1, fmt::format("w{}-{}", w, i));
          ASSERT_TRUE(durable.ok()) << durable.status().ToString();
          seen[w].push_back(*durable);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    const GroupCommitStats stats = writer.stats();
    EXPECT_EQ(uint64_t{kWriters * kAppendsPerWriter}, stats.entries);
    EXPECT_LT(stats.batches, stats.entries) << "some syncs were shared";
  }
  EXPECT_EQ(LogIndex(kWriters * kAppendsPerWriter), log->last_index());
  EXPECT_EQ(log->last_index(), log->durable_index());
  // Each writer's own appends became durable in order.
  for (const auto& indexes : seen) {
    for (size_t i = 1; i < indexes.size(); ++i) EXPECT_LT(indexes[i - 1], indexes[i]);
  }
}

TEST(GroupCommitWriter, CompletionsRunInSubmissionOrder) {
  SimFileSystem fs(1);
  ASSERT_TRUE(fs.CreateDirectory("/d").ok());
  auto log = WriteAheadLog::Open(fs, "/d/wal").value();
  std::vector<uint64_t> order;
  std::mutex order_mutex;
  {
    GroupCommitWriter writer(*log);
    for (uint64_t i = 1; i <= 200; ++i) {
      std::vector<Entry> entries = {Entry{LogIndex(i), Generation(1), 1, "x"}};
      ASSERT_TRUE(writer
                      .SubmitEntries(std::move(entries),
                                     [&, i](Result<LogIndex> durable) {
                                       ASSERT_TRUE(durable.ok());
                                       EXPECT_GE(*durable, LogIndex(i));
                                       std::lock_guard lock(order_mutex);
                                       order.push_back(i);
                                     })
                      .ok());
    }
  }  // The destructor drains the queue.
  ASSERT_EQ(200u, order.size());
  for (uint64_t i = 0; i < order.size(); ++i) EXPECT_EQ(i + 1, order[i]);
}

TEST(GroupCommitWriter, FullQueueIsBusy) {
  SimFileSystem fs(1);
  ASSERT_TRUE(fs.CreateDirectory("/d").ok());
  auto log = WriteAheadLog::Open(fs, "/d/wal").value();
  GroupCommitWriter writer(*log, {.queue_entries_max = 2});
  std::vector<std::string> three = {"a", "b", "c"};
  Status status = writer.SubmitPayloads(Generation(1), 1, three, [](Result<LogIndex>) {});
  EXPECT_EQ(StatusCode::kBusy, status.code());
}

TEST(GroupCommitWriter, SyncFailureFailsEverythingAfter) {
  SimFileSystem fs(1);
  ASSERT_TRUE(fs.CreateDirectory("/d").ok());
  auto log = WriteAheadLog::Open(fs, "/d/wal").value();
  GroupCommitWriter writer(*log);
  ASSERT_TRUE(writer.AppendAndWait(Generation(1), 1, "ok").ok());
  fs.SetFailSyncs(true);
  auto failed = writer.AppendAndWait(Generation(1), 1, "lost");
  EXPECT_EQ(StatusCode::kFailed, failed.status().code());
  fs.SetFailSyncs(false);
  auto later = writer.AppendAndWait(Generation(1), 1, "later");
  EXPECT_FALSE(later.ok()) << "the writer stopped for good";
}

TEST(GroupCommitWriter, SubmittingOutOfOrderCrashes) {
  SimFileSystem fs(1);
  ASSERT_TRUE(fs.CreateDirectory("/d").ok());
  auto log = WriteAheadLog::Open(fs, "/d/wal").value();
  auto submit_gap = [&log] {
    GroupCommitWriter writer(*log);
    std::vector<Entry> entries;
    entries.push_back(Entry{LogIndex(5), Generation(1), 1, "x"});
    (void)writer.SubmitEntries(std::move(entries), [](Result<LogIndex>) {});
  };
  EXPECT_DEATH(submit_gap(), "submitted entries continue the log");
}

}  // namespace
}  // namespace cairn::wal
