// LogWriter: the member's write-ahead log writer thread, doing group commit.
//
// Design note. The member thread (MemberNode, the Singular Update Queue) never waits for the disk
// on the write path. It hands each Ready's storage part to this thread as a Job and goes on: the
// leader has already sent its appends (so followers write their copies while the leader writes
// its own), and it keeps stepping acknowledgements, reads and new client writes while the fsync
// runs. This thread takes every job queued since its last write, writes them together and makes
// them durable with one fdatasync (group commit), then, in submission order, sends the messages
// that had to wait for the disk (a follower's acknowledgements, votes) and reports the durable log
// position back to the member thread (consensus::Replica::LogDurable), which is when the leader
// counts its own copy toward the quorum.
//
// Jobs are carried out strictly in submission order; a job with a hard state, a snapshot or a
// truncation starts a new group (those must reach the disk before anything queued after them).
// Rare operations that must finish before the member thread goes on (installing a snapshot,
// saving a local snapshot) use RunAndWait. The queue is bounded: Submit blocks the member thread
// when jobs_max jobs are waiting (back-pressure from a slow disk). A storage failure is final:
// the member aborts and recovers from its data directory on restart.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "consensus/replica.h"
#include "member/member_storage.h"
#include "server/metrics.h"

namespace cairn::server {

class LogWriter {
 public:
  using Frames = std::vector<std::pair<NodeId, std::string>>;
  using SendFn = std::function<void(Frames)>;
  // Called on the writer thread once the log up to (index, generation) is durable.
  using DurableFn = std::function<void(LogIndex index, Generation generation)>;

  struct Job {
    consensus::Ready storage{};   // Only hard_state, snapshot, truncate_after and entries are used.
    Frames messages_after{};      // Sent once the job (and every earlier one) is durable.
  };

  LogWriter(member::MemberStorage& storage, SendFn send, DurableFn on_durable, Metrics* metrics,
            size_t jobs_max = 1024);
  ~LogWriter();

  void Start();
  // Writes what is queued, then stops the thread. Idempotent.
  void Stop();

  void Submit(Job job);
  // True when every job submitted so far is durable and its messages handed to `send`. Then a
  // message that promises nothing newer than what was submitted may be sent without a job (the
  // member's read-index traffic on followers skips two thread hand-offs that way).
  bool AllJobsDone() const { return unfinished_jobs_.load(std::memory_order_acquire) == 0; }
  // Runs `action` on the writer thread after every job submitted before it, and waits for it.
  Status RunAndWait(std::function<Status()> action);
  // Runs `action` on the writer thread after every job submitted before it, without waiting; its
  // failure is a storage failure (final, like a failed write).
  void RunLater(std::function<Status()> action);

 private:
  struct Item {
    std::optional<Job> job;
    std::function<void()> action;  // Set instead of `job` for RunAndWait.
  };
  void Run();
  void WriteGroup(std::vector<Item>& items, size_t begin, size_t end);
  [[noreturn]] void Failed(const Status& status);

  member::MemberStorage& storage_;
  const SendFn send_;
  const DurableFn on_durable_;
  Metrics* const metrics_;
  const size_t jobs_max_;

  std::mutex mutex_;
  std::condition_variable wake_writer_;
  std::condition_variable wake_submitters_;
  std::deque<Item> queue_;
  std::atomic<size_t> unfinished_jobs_{0};  // Submitted, not yet durable with messages sent.
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cairn::server
