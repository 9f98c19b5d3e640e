// GroupCommitWriter: many callers' appends become one write and one fdatasync.
//
// Part of the Write-Ahead Log pattern, in the shell (it owns a thread). Callers Submit entries
// with a completion; a single writer thread takes everything queued (up to a batch bound), calls
// WriteAheadLog::Append once and WriteAheadLog::Sync once, then runs the completions with the
// durable index. While one fdatasync is in progress the next batch accumulates, so the cost of a
// sync is shared by everyone who arrived during it.
//
// Ordering: entries become durable in submission order, and completions run in that order, on the
// writer thread. Completions should be quick; they may call Submit again, because the queue lock
// is not held while they run.
//
// Bounds: at most `queue_entries_max` entries wait; Submit beyond that returns Busy. A batch holds
// at most `batch_entries_max` entries and `batch_bytes_max` payload bytes.
//
// Failure: if Append or Sync fails, the writer stops for good: that batch, everything queued, and
// every later Submit complete with the failure (the log itself is failed after a sync error; after
// a failed append the indexes already handed out no longer line up, so stopping is the safe
// choice, as etcd does when its WAL cannot be written).
//
// Indexes: SubmitEntries takes entries whose indexes the caller assigned (the consensus core);
// SubmitPayloads assigns the next indexes itself under the queue lock (used by benchmarks and
// tools). Do not mix both styles on one writer.
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
  // Runs on the writer thread once the entries are durable (the durable index) or failed.
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
  // Submits and waits until durable; returns the durable index at completion.
  Result<LogIndex> AppendAndWait(Generation generation, uint8_t type, std::string payload);

  GroupCommitStats stats() const;

 private:
  struct Request {
    std::vector<Entry> entries;
    Completion done;
  };

  Status Enqueue(Request request);  // Requires mutex_ held.
  void Run();

  WriteAheadLog& log_;
  const GroupCommitOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable work_available_;
  std::deque<Request> queue_;            // Guarded by mutex_.
  uint64_t queued_entries_ = 0;          // Guarded by mutex_.
  LogIndex next_index_;                  // Guarded by mutex_: the next index to hand out.
  bool stopping_ = false;                // Guarded by mutex_.
  Status failure_;                       // Guarded by mutex_: set once, final.
  GroupCommitStats stats_;               // Guarded by mutex_.
  std::thread thread_;
};

}  // namespace cairn::wal
