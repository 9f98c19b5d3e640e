#include "wal/group_commit_writer.h"

#include <fmt/format.h>

#include <future>

namespace cairn::wal {

GroupCommitWriter::GroupCommitWriter(WriteAheadLog& log, GroupCommitOptions options)
    : log_(log), options_(options), next_index_(log.last_index().next()) {
  CAIRN_CHECK(options_.batch_entries_max > 0 && options_.queue_entries_max > 0,
              "group commit bounds are positive");
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
  work_available_.notify_one();
  return Status::Ok();
}

Status GroupCommitWriter::SubmitEntries(std::vector<Entry> entries, Completion done) {
  std::lock_guard lock(mutex_);
  if (!entries.empty()) {
    CAIRN_CHECK(entries.front().index == next_index_,
                "submitted entries continue the log (got {}, expected {})",
                entries.front().index, next_index_);
  }
  const LogIndex after = LogIndex(next_index_.value() + entries.size());
  CAIRN_TRY(Enqueue(Request{std::move(entries), std::move(done)}));
  next_index_ = after;
  return Status::Ok();
}

Status GroupCommitWriter::SubmitPayloads(Generation generation, uint8_t type,
                                         std::vector<std::string> payloads, Completion done) {
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
  return Status::Ok();
}

Result<LogIndex> GroupCommitWriter::AppendAndWait(Generation generation, uint8_t type,
                                                  std::string payload) {
  std::promise<Result<LogIndex>> promise;
  std::future<Result<LogIndex>> future = promise.get_future();
  std::vector<std::string> payloads;
  payloads.push_back(std::move(payload));
  CAIRN_TRY(SubmitPayloads(generation, type, std::move(payloads),
                           [&promise](Result<LogIndex> result) {
                             promise.set_value(std::move(result));
                           }));
  return future.get();
}

GroupCommitStats GroupCommitWriter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void GroupCommitWriter::Run() {
  std::vector<Request> batch;
  std::vector<Entry> entries;
  while (true) {
    batch.clear();
    entries.clear();
    {
      std::unique_lock lock(mutex_);
      work_available_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // Stopping, and everything queued has been written.
      uint64_t batch_bytes = 0;
      while (!queue_.empty() && (batch.empty() || (entries.size() < options_.batch_entries_max &&
                                                   batch_bytes < options_.batch_bytes_max))) {
        Request& request = queue_.front();
        queued_entries_ -= request.entries.size();
        for (Entry& entry : request.entries) {
          batch_bytes += entry.payload.size();
          entries.push_back(std::move(entry));
        }
        batch.push_back(std::move(request));
        queue_.pop_front();
      }
    }

    Status status = log_.Append(entries);
    Result<LogIndex> durable = status.ok() ? log_.Sync() : Result<LogIndex>(status);

    std::deque<Request> abandoned;
    {
      std::lock_guard lock(mutex_);
      if (durable.ok()) {
        ++stats_.batches;
        stats_.entries += entries.size();
        stats_.largest_batch_entries = std::max<uint64_t>(stats_.largest_batch_entries,
                                                          entries.size());
      } else {
        failure_ = durable.status();
        abandoned.swap(queue_);
        queued_entries_ = 0;
      }
    }
    for (Request& request : batch) request.done(durable);
    for (Request& request : abandoned) request.done(durable.status());
  }
}

}  // namespace cairn::wal
