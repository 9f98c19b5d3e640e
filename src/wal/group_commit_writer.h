// GroupCommitWriter: many callers' appends become one write and one fdatasync.
//
// Part of the Write-Ahead Log pattern, in the shell (it owns a thread). Appends wait in one bounded
// queue. Whoever finds the log idle becomes the *leader* for a group: it takes everything queued (up
// to the batch bounds), calls WriteAheadLog::Append once and WriteAheadLog::Sync once, publishes the
// new durable index and wakes everyone waiting, then runs the completions of asynchronous requests.
// While one fdatasync runs, the next group accumulates, so the cost of a sync is shared by everyone
// who arrived during it (leveldb's writer queue works the same way).
//
// Two ways in:
//   - AppendAndWait (synchronous callers): the caller leads a group itself when the log is idle, so
//     a lone writer pays no thread hand-off at all, only its write and fdatasync.
//   - SubmitEntries / SubmitPayloads with a Completion (the consensus shell, which must not block):
//     the writer's own thread leads the group when no synchronous caller does.
//
// Ordering: entries become durable in submission order; completions run in that order, on the
// thread that led their group. Completions should be quick; they may Submit again (no lock is held
// while they run).
//
// Bounds: at most `queue_entries_max` entries wait; a Submit beyond that returns Busy. A group holds
// at most `batch_entries_max` entries and `batch_bytes_max` payload bytes (but at least one request).
//
// Failure: if Append or Sync fails, the writer stops for good: that group, everything queued, and
// every later call complete with the failure (the log itself is failed after a sync error; after a
// failed append the indexes already handed out no longer line up, so stopping is the safe choice, as
// etcd does when its WAL cannot be written).
//
// Indexes: SubmitEntries takes entries whose indexes the caller assigned (the consensus core);
// SubmitPayloads and AppendAndWait assign the next indexes under the queue lock (benchmarks, tools).
// Do not mix both styles on one writer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/status.h"
#include "wal/write_ahead_log.h"

namespace cairn::wal {

struct GroupCommitOptions {
  uint64_t queue_entries_max = 100'000;
  uint64_t batch_entries_max = 10'000;
  uint64_t batch_bytes_max = 16ull << 20;
};

struct GroupCommitStats {
  uint64_t batches = 0;
  uint64_t entries = 0;
  uint64_t largest_batch_entries = 0;
};

class GroupCommitWriter {
 public:
  // Runs once the entries are durable (with the durable index) or failed.
  using Completion = std::function<void(Result<LogIndex>)>;

  // `log` must outlive the writer and must not be used by anyone else while the writer runs.
  GroupCommitWriter(WriteAheadLog& log, GroupCommitOptions options = {});
  // Drains what was queued, then stops the thread.
  ~GroupCommitWriter();
  GroupCommitWriter(const GroupCommitWriter&) = delete;
  GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;

  Status SubmitEntries(std::vector<Entry> entries, Completion done);
  Status SubmitPayloads(Generation generation, uint8_t type, std::vector<std::string> payloads,
                        Completion done);
  // Appends one entry and returns once it is durable, with the durable index at that moment.
  Result<LogIndex> AppendAndWait(Generation generation, uint8_t type, std::string payload);

  GroupCommitStats stats() const;

 private:
  struct Request {
    std::vector<Entry> entries;
    Completion done;
  };

  // Requires mutex_ held. Appends `request` to the queue, or says why not.
  Status Enqueue(Request request);
  // Requires mutex_ held via `lock`, leading_ false and a non-empty queue. Writes one group,
  // releasing the lock while doing I/O and running completions; returns with it held again.
  void LeadOneGroup(std::unique_lock<std::mutex>& lock);
  void Run();

  WriteAheadLog& log_;
  const GroupCommitOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable work_available_;  // The writer thread waits here.
  std::deque<Request> queue_;     // Guarded by mutex_.
  uint64_t queued_entries_ = 0;   // Guarded by mutex_.
  LogIndex next_index_;           // Guarded by mutex_: the next index to hand out.
  LogIndex durable_index_;        // Guarded by mutex_: the highest index known durable.
  bool leading_ = false;          // Guarded by mutex_: someone is writing a group.
  bool stopping_ = false;         // Guarded by mutex_.
  Status failure_;                // Guarded by mutex_: set once, final.
  GroupCommitStats stats_;        // Guarded by mutex_.
  std::thread thread_;
};

}  // namespace cairn::wal
