#include "wal/group_commit_writer.h"

#include <fmt/format.h>

#include <future>

namespace cairn::wal {

GroupCommitWriter::GroupCommitWriter(WriteAheadLog& log, GroupCommitOptions options)
    : log_(log),
      options_(options),
      next_index_(log.last_index().next()),
      durable_index_(log.durable_index()) {
  CAIRN_CHECK(options_.batch_entries_max > 0 && options_.queue_entries_max > 0,
              "group commit bounds are positive");
  CAIRN_CHECK(log.durable_index() == log.last_index(),
              "the writer starts on a log with nothing pending ({} appended, {} durable)",
              log.last_index(), log.durable_index());
  thread_ = std::thread([this] { Run(); });
}

GroupCommitWriter::~GroupCommitWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_available_.notify_all();
  thread_.join();
}

Status GroupCommitWriter::Enqueue(Request request) {
  if (!failure_.ok()) return failure_;
  if (stopping_) return Status::Failed("the group commit writer is stopping");
  if (queued_entries_ + request.entries.size() > options_.queue_entries_max) {
    return Status::Busy(fmt::format("the write-ahead log queue is full ({} entries waiting)",
                                    queued_entries_));
  }
  queued_entries_ += request.entries.size();
  queue_.push_back(std::move(request));
  return Status::Ok();
}

Status GroupCommitWriter::SubmitEntries(std::vector<Entry> entries, Completion done) {
  CAIRN_CHECK(done != nullptr, "an asynchronous submission has a completion");
  {
    std::lock_guard lock(mutex_);
    if (!entries.empty()) {
      CAIRN_CHECK(entries.front().index == next_index_,
                  "submitted entries continue the log (got {}, expected {})",
                  entries.front().index, next_index_);
    }
    const LogIndex after = LogIndex(next_index_.value() + entries.size());
    CAIRN_TRY(Enqueue(Request{std::move(entries), std::move(done)}));
    next_index_ = after;
  }
  work_available_.notify_one();
  return Status::Ok();
}

Status GroupCommitWriter::SubmitPayloads(Generation generation, uint8_t type,
                                         std::vector<std::string> payloads, Completion done) {
  CAIRN_CHECK(done != nullptr, "an asynchronous submission has a completion");
  {
    std::lock_guard lock(mutex_);
    std::vector<Entry> entries;
    entries.reserve(payloads.size());
    LogIndex index = next_index_;
    for (std::string& payload : payloads) {
      entries.push_back(Entry{index, generation, type, std::move(payload)});
      index = index.next();
    }
    CAIRN_TRY(Enqueue(Request{std::move(entries), std::move(done)}));
    next_index_ = index;
  }
  work_available_.notify_one();
  return Status::Ok();
}

Result<LogIndex> GroupCommitWriter::AppendAndWait(Generation generation, uint8_t type,
                                                  std::string payload) {
  // The promise's shared state outlives whichever side finishes last, so the leader may complete
  // it after this caller has already returned.
  std::promise<Result<LogIndex>> promise;
  std::future<Result<LogIndex>> future = promise.get_future();
  {
    std::unique_lock lock(mutex_);
    std::vector<Entry> entries;
    entries.push_back(Entry{next_index_, generation, type, std::move(payload)});
    CAIRN_TRY(Enqueue(Request{std::move(entries), [&promise](Result<LogIndex> durable) {
                                promise.set_value(std::move(durable));
                              }}));
    next_index_ = next_index_.next();
    // The log is idle: write our entry (and whatever queued before it) ourselves, with no thread
    // hand-off. Otherwise the current leader, or the writer thread after it, takes it.
    if (!leading_) LeadOneGroup(lock);
  }
  return future.get();
}

GroupCommitStats GroupCommitWriter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void GroupCommitWriter::LeadOneGroup(std::unique_lock<std::mutex>& lock) {
  CAIRN_CHECK(!leading_, "one group at a time is written");
  CAIRN_CHECK(!queue_.empty(), "a group is led only when something waits");
  leading_ = true;
  std::vector<Request> group;
  std::vector<Entry> entries;
  uint64_t group_bytes = 0;
  while (!queue_.empty() && (group.empty() || (entries.size() < options_.batch_entries_max &&
                                               group_bytes < options_.batch_bytes_max))) {
    Request& request = queue_.front();
    queued_entries_ -= request.entries.size();
    for (Entry& entry : request.entries) {
      group_bytes += entry.payload.size();
      entries.push_back(std::move(entry));
    }
    group.push_back(std::move(request));
    queue_.pop_front();
  }
  lock.unlock();

  Status appended = log_.Append(entries);
  Result<LogIndex> durable = appended.ok() ? log_.Sync() : Result<LogIndex>(appended);

  std::deque<Request> abandoned;
  lock.lock();
  if (durable.ok()) {
    CAIRN_CHECK(*durable >= durable_index_, "the durable index never goes back ({} < {})",
                *durable, durable_index_);
    durable_index_ = *durable;
    ++stats_.batches;
    stats_.entries += entries.size();
    stats_.largest_batch_entries = std::max<uint64_t>(stats_.largest_batch_entries, entries.size());
  } else {
    failure_ = durable.status();
    abandoned.swap(queue_);
    queued_entries_ = 0;
  }
  lock.unlock();
  // The leader stays the leader while it runs the completions: the callers it wakes resubmit in
  // the meantime, so the next group is large instead of starting with the first one back.
  for (Request& request : group) request.done(durable);
  for (Request& request : abandoned) request.done(durable.status());
  lock.lock();
  leading_ = false;
  // Wake the writer thread only when it has something to do: a lone synchronous writer then never
  // pays for a context switch.
  if (!queue_.empty() || stopping_) work_available_.notify_one();
}

void GroupCommitWriter::Run() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_available_.wait(lock, [this] { return (stopping_ || !queue_.empty()) && !leading_; });
    if (queue_.empty()) {
      if (stopping_) return;  // Everything queued has been written.
      continue;
    }
    LeadOneGroup(lock);
  }
}

}  // namespace cairn::wal
