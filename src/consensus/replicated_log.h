// ReplicatedLog: the consensus core's in-memory view of its log, and the High-Water Mark.
//
// The core keeps every entry since its last snapshot in memory (the write-ahead log holds the
// same entries durably; on restart the shell rebuilds this view from it). That keeps the core pure:
// it never reads storage. Snapshots bound the memory (Low-Water Mark).
//
// Pattern: High-Water Mark. `commit_index` is the highest index known to be held by a majority;
// nothing above it is ever handed out to be applied, and it never moves back (CAIRN_CHECK). Entries
// at or below it are never truncated.
//
// Persistence bookkeeping: entries appended or replaced since the last TakeUnpersisted are handed
// to the shell to persist, together with the index to truncate after when a conflicting suffix was
// replaced.
#pragma once

#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "base/strong_types.h"
#include "wal/entry.h"

namespace cairn::consensus {

class ReplicatedLog {
 public:
  // A log that follows a snapshot at (snapshot_index, snapshot_generation) (both 0 for none) and
  // holds `entries`, contiguous from snapshot_index + 1 and already durable.
  ReplicatedLog(LogIndex snapshot_index, Generation snapshot_generation,
                std::vector<wal::Entry> entries);

  LogIndex snapshot_index() const { return snapshot_index_; }
  LogIndex first_index() const { return snapshot_index_.next(); }
  LogIndex last_index() const {
    return LogIndex(snapshot_index_.value() + entries_.size() - compacted_held_);
  }
  Generation last_generation() const;
  // The generation of the entry at `index`: the snapshot's at snapshot_index, nullopt when the
  // index is compacted away or beyond the end.
  std::optional<Generation> GenerationAt(LogIndex index) const;
  bool Matches(LogIndex index, Generation generation) const;
  // True when a log ending at (index, generation) is at least as up-to-date as this one.
  bool IsUpToDate(LogIndex index, Generation generation) const;
  // The first index of the run of entries of `generation` that contains `index`.
  LogIndex FirstIndexOfGenerationAt(LogIndex index) const;
  // The last index holding `generation` at or below `index`, if any entry has it.
  std::optional<LogIndex> LastIndexOfGeneration(Generation generation, LogIndex index) const;

  // Appends one entry at last_index() + 1.
  void Append(wal::Entry entry);
  // Appends `entries` that follow a matching position, replacing a conflicting suffix. Entries
  // already present with the same generation are kept (a duplicated or reordered message must
  // not truncate anything). Returns the index of the last entry of `entries`.
  LogIndex AppendAfter(std::span<const wal::Entry> entries);
  // Entries [from, to] (within the log), stopping once `bytes_max` payload bytes are reached but
  // always at least one.
  std::vector<wal::Entry> Slice(LogIndex from, LogIndex to, uint64_t bytes_max) const;
  const wal::Entry& At(LogIndex index) const;

  // What to persist since the last call: truncate after `truncate_after` (if set), then append.
  struct Unpersisted {
    std::optional<LogIndex> truncate_after;
    std::vector<wal::Entry> entries;
  };
  Unpersisted TakeUnpersisted();
  // A truncation made since the last TakeUnpersisted: entries after it are not durable, whatever
  // was synced before.
  std::optional<LogIndex> pending_truncate_after() const { return truncate_after_; }
  bool HasUnpersisted() const {
    return truncate_after_.has_value() || unpersisted_from_ <= last_index();
  }

  // Low-Water Mark: drops the entries up to `index` (at or below the applied index), which a
  // snapshot now covers. They leave the log at once but stay in memory until FreeCompacted frees
  // them: 100k entries took 6-19 ms to free, a stall the caller spreads over its turns instead.
  void CompactTo(LogIndex index);
  // Frees up to `count` of the entries compacted away; returns how many are still held.
  size_t FreeCompacted(size_t count);
  size_t compacted_held() const { return compacted_held_; }
  // Replaces the whole log by a snapshot at (index, generation): committed and applied there.
  void RestoreSnapshot(LogIndex index, Generation generation);

  // High-Water Mark.
  LogIndex commit_index() const { return commit_index_; }
  void CommitTo(LogIndex index);
  LogIndex applied_index() const { return applied_index_; }
  // Entries up to `through` (normally the commit index) not yet handed out for applying; marks
  // them handed out.
  std::vector<wal::Entry> TakeToApply(LogIndex through);

 private:
  LogIndex snapshot_index_;
  Generation snapshot_generation_;
  // The first compacted_held_ entries lie at or below snapshot_index_, waiting to be freed; the
  // log's entries follow them.
  std::deque<wal::Entry> entries_;
  size_t compacted_held_ = 0;
  LogIndex commit_index_;
  LogIndex applied_index_;
  LogIndex unpersisted_from_;                 // Entries from here on are not handed to persist.
  std::optional<LogIndex> truncate_after_;    // Lowest truncation point not yet handed out.
};

}  // namespace cairn::consensus
