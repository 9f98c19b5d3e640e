#include "consensus/replicated_log.h"

#include "base/check.h"

namespace cairn::consensus {

ReplicatedLog::ReplicatedLog(LogIndex snapshot_index, Generation snapshot_generation,
                             std::vector<wal::Entry> entries)
    : snapshot_index_(snapshot_index),
      snapshot_generation_(snapshot_generation),
      entries_(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end())),
      commit_index_(snapshot_index),
      applied_index_(snapshot_index) {
  LogIndex expected = first_index();
  Generation previous = snapshot_generation;
  for (const wal::Entry& entry : entries_) {
    CAIRN_CHECK(entry.index == expected, "recovered entries are contiguous ({} where {} expected)",
                entry.index, expected);
    CAIRN_CHECK(entry.generation >= previous, "recovered generations never go back at {}",
                entry.index);
    previous = entry.generation;
    expected = expected.next();
  }
  unpersisted_from_ = last_index().next();
}

Generation ReplicatedLog::last_generation() const {
  return last_index() == snapshot_index_ ? snapshot_generation_ : entries_.back().generation;
}

std::optional<Generation> ReplicatedLog::GenerationAt(LogIndex index) const {
  if (index == snapshot_index_) return snapshot_generation_;
  if (index < snapshot_index_ || index > last_index()) return std::nullopt;
  return At(index).generation;
}

bool ReplicatedLog::Matches(LogIndex index, Generation generation) const {
  const std::optional<Generation> held = GenerationAt(index);
  return held.has_value() && *held == generation;
}

bool ReplicatedLog::IsUpToDate(LogIndex index, Generation generation) const {
  return generation > last_generation() ||
         (generation == last_generation() && index >= last_index());
}

LogIndex ReplicatedLog::FirstIndexOfGenerationAt(LogIndex index) const {
  const std::optional<Generation> generation = GenerationAt(index);
  CAIRN_CHECK(generation.has_value(), "index {} is in the log", index);
  LogIndex first = index;
  while (first > first_index() && At(first.prev()).generation == *generation) first = first.prev();
  return first;
}

std::optional<LogIndex> ReplicatedLog::LastIndexOfGeneration(Generation generation,
                                                             LogIndex index) const {
  LogIndex probe = std::min(index, last_index());
  while (probe >= first_index()) {
    const Generation held = At(probe).generation;
    if (held == generation) return probe;
    if (held < generation) return std::nullopt;  // Generations only grow along the log.
    probe = probe.prev();
  }
  return std::nullopt;
}

const wal::Entry& ReplicatedLog::At(LogIndex index) const {
  CAIRN_CHECK(index >= first_index() && index <= last_index(), "index {} lies in [{}, {}]",
              index, first_index(), last_index());
  return entries_[compacted_held_ + (index.value() - first_index().value())];
}

void ReplicatedLog::Append(wal::Entry entry) {
  CAIRN_CHECK(entry.index == last_index().next(), "appends continue the log ({} after {})",
              entry.index, last_index());
  CAIRN_CHECK(entry.generation >= last_generation(), "generations never go back in the log");
  entries_.push_back(std::move(entry));
}

LogIndex ReplicatedLog::AppendAfter(std::span<const wal::Entry> entries) {
  if (entries.empty()) return last_index();
  for (const wal::Entry& entry : entries) {
    if (entry.index <= snapshot_index_) continue;  // Already covered by the snapshot.
    if (entry.index <= last_index()) {
      if (At(entry.index).generation == entry.generation) continue;  // Already held.
      // A conflict: drop this entry and everything after it.
      CAIRN_CHECK(entry.index > commit_index_,
                  "committed entries are never truncated (conflict at {}, commit {})",
                  entry.index, commit_index_);
      const LogIndex keep = entry.index.prev();
      while (last_index() > keep) entries_.pop_back();
      if (keep.next() < unpersisted_from_) {
        unpersisted_from_ = keep.next();
        truncate_after_ = truncate_after_ ? std::min(*truncate_after_, keep) : keep;
      }
    }
    Append(entry);
  }
  return entries.back().index;
}

std::vector<wal::Entry> ReplicatedLog::Slice(LogIndex from, LogIndex to, uint64_t bytes_max) const {
  std::vector<wal::Entry> slice;
  uint64_t bytes = 0;
  for (LogIndex index = from; index <= to; index = index.next()) {
    const wal::Entry& entry = At(index);
    if (!slice.empty() && bytes + entry.payload.size() > bytes_max) break;
    bytes += entry.payload.size();
    slice.push_back(entry);
  }
  return slice;
}

ReplicatedLog::Unpersisted ReplicatedLog::TakeUnpersisted() {
  Unpersisted unpersisted;
  unpersisted.truncate_after = truncate_after_;
  for (LogIndex index = unpersisted_from_; index <= last_index(); index = index.next()) {
    unpersisted.entries.push_back(At(index));
  }
  truncate_after_.reset();
  unpersisted_from_ = last_index().next();
  return unpersisted;
}

void ReplicatedLog::CompactTo(LogIndex index) {
  CAIRN_CHECK(index <= applied_index_, "only applied entries are compacted ({} > applied {})",
              index, applied_index_);
  if (index <= snapshot_index_) return;
  const Generation generation = At(index).generation;
  compacted_held_ += index.value() - snapshot_index_.value();
  snapshot_index_ = index;
  snapshot_generation_ = generation;
}

size_t ReplicatedLog::FreeCompacted(size_t count) {
  for (size_t freed = 0; freed < count && compacted_held_ > 0; ++freed, --compacted_held_) {
    entries_.pop_front();
  }
  return compacted_held_;
}

void ReplicatedLog::RestoreSnapshot(LogIndex index, Generation generation) {
  CAIRN_CHECK(index > commit_index_, "a restored snapshot is newer than the commit index");
  entries_.clear();
  compacted_held_ = 0;
  snapshot_index_ = index;
  snapshot_generation_ = generation;
  commit_index_ = index;
  applied_index_ = index;
  unpersisted_from_ = index.next();
  truncate_after_.reset();
}

void ReplicatedLog::CommitTo(LogIndex index) {
  if (index <= commit_index_) return;  // The mark only moves forward; stale news is ignored.
  CAIRN_CHECK(index <= last_index(), "the commit index {} never passes the last index {}", index,
              last_index());
  commit_index_ = index;
}

std::vector<wal::Entry> ReplicatedLog::TakeToApply(LogIndex through) {
  std::vector<wal::Entry> entries;
  for (LogIndex index = applied_index_.next(); index <= through; index = index.next()) {
    entries.push_back(At(index));
  }
  applied_index_ = std::max(applied_index_, through);
  return entries;
}

}  // namespace cairn::consensus
