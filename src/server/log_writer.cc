#include "server/log_writer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <future>

namespace cairn::server {
namespace {

// Bounds on one group: entries and payload bytes written before one fdatasync.
constexpr size_t kGroupEntriesMax = 65'536;
constexpr size_t kGroupBytesMax = 64u << 20;

bool StartsNewGroup(const consensus::Ready& ready) {
  return ready.hard_state || ready.snapshot || ready.truncate_after;
}

}  // namespace

LogWriter::LogWriter(member::MemberStorage& storage, SendFn send, DurableFn on_durable,
                     Metrics* metrics, size_t jobs_max)
    : storage_(storage),
      send_(std::move(send)),
      on_durable_(std::move(on_durable)),
      metrics_(metrics),
      jobs_max_(jobs_max) {}

LogWriter::~LogWriter() { Stop(); }

void LogWriter::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "cairn-wal");
    Run();
  });
}

void LogWriter::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_writer_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void LogWriter::Submit(Job job) {
  std::unique_lock lock(mutex_);
  wake_submitters_.wait(lock, [&] { return queue_.size() < jobs_max_ || stopping_; });
  unfinished_jobs_.fetch_add(1, std::memory_order_relaxed);
  queue_.push_back(Item{std::move(job), {}});
  if (queue_.size() == 1) wake_writer_.notify_one();
}

Status LogWriter::RunAndWait(std::function<Status()> action) {
  std::promise<Status> done;
  auto future = done.get_future();
  {
    std::lock_guard lock(mutex_);
    // Not bounded by jobs_max: the caller waits for it, so at most one is queued per caller.
    queue_.push_back(Item{std::nullopt, [&] { done.set_value(action()); }});
    if (queue_.size() == 1) wake_writer_.notify_one();
  }
  return future.get();
}

void LogWriter::RunLater(std::function<Status()> action) {
  std::lock_guard lock(mutex_);
  // Not bounded by jobs_max: the member queues one per saved snapshot.
  queue_.push_back(Item{std::nullopt, [this, action = std::move(action)] {
                          if (Status status = action(); !status.ok()) Failed(status);
                        }});
  if (queue_.size() == 1) wake_writer_.notify_one();
}

void LogWriter::Run() {
  std::vector<Item> items;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_writer_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // Stopping, and everything submitted is written.
      while (!queue_.empty()) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    wake_submitters_.notify_all();
    // Split into groups: a group ends before an action or a job that must start a new group,
    // and at the size bounds.
    size_t begin = 0;
    while (begin < items.size()) {
      if (items[begin].action) {
        items[begin].action();
        ++begin;
        continue;
      }
      size_t end = begin + 1;
      size_t entries = items[begin].job->storage.entries.size();
      size_t bytes = 0;
      for (const auto& entry : items[begin].job->storage.entries) bytes += entry.payload.size();
      while (end < items.size() && !items[end].action &&
             !StartsNewGroup(items[end].job->storage) && entries < kGroupEntriesMax &&
             bytes < kGroupBytesMax) {
        entries += items[end].job->storage.entries.size();
        for (const auto& entry : items[end].job->storage.entries) bytes += entry.payload.size();
        ++end;
      }
      WriteGroup(items, begin, end);
      begin = end;
    }
    items.clear();
  }
}

void LogWriter::WriteGroup(std::vector<Item>& items, size_t begin, size_t end) {
  // The first job may carry a hard state, snapshot or truncation; the rest only add entries.
  consensus::Ready& group = items[begin].job->storage;
  for (size_t i = begin + 1; i < end; ++i) {
    auto& more = items[i].job->storage.entries;
    group.entries.insert(group.entries.end(), std::make_move_iterator(more.begin()),
                         std::make_move_iterator(more.end()));
  }
  const bool writes_entries = !group.entries.empty();
  std::optional<std::pair<LogIndex, Generation>> durable;
  if (writes_entries) durable.emplace(group.entries.back().index, group.entries.back().generation);
  if (group.snapshot) durable.emplace(group.snapshot->index, group.snapshot->generation);
  const auto start = std::chrono::steady_clock::now();
  if (group.hard_state || group.snapshot || group.truncate_after || writes_entries) {
    if (Status persisted = storage_.Persist(group); !persisted.ok()) Failed(persisted);
  }
  if (writes_entries) {
    metrics_->wal_fsync_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  for (size_t i = begin; i < end; ++i) {
    if (!items[i].job->messages_after.empty()) send_(std::move(items[i].job->messages_after));
  }
  if (durable) on_durable_(durable->first, durable->second);
  unfinished_jobs_.fetch_sub(end - begin, std::memory_order_release);
}

void LogWriter::Failed(const Status& status) {
  // fsync-failure-is-final: the page cache may have dropped what we wrote. Stop here and let a
  // restart recover from what is durable.
  spdlog::critical("log writer: storage failed, stopping the member: {}", status.ToString());
  spdlog::shutdown();
  std::abort();
}

}  // namespace cairn::server
