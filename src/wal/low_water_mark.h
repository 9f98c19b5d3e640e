// LowWaterMark: which part of the log may be thrown away.
//
// Pattern: Low-Water Mark. Once a snapshot at index i is durable, the entries at or below i are no
// longer needed to rebuild the state machine. They are still useful to followers that lag a little
// (sending them entries is much cheaper than sending a whole snapshot), so a tail of
// `retained_entries` below the snapshot is kept. The mark is i - retained_entries; whole segments
// whose entries all lie at or below it are deleted (Segmented Log: cleaning deletes files, it never
// rewrites them). The mark only moves forward.
//
// Pure policy plus one call into the log; the caller (the member's storage shell) invokes
// OnSnapshotDurable after SnapshotStore::Save returned OK, never before.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "base/strong_types.h"
#include "wal/write_ahead_log.h"

namespace cairn::wal {

struct LowWaterMarkOptions {
  // Entries kept below the newest snapshot for followers that catch up from the log.
  uint64_t retained_entries = 5000;
};

class LowWaterMark {
 public:
  explicit LowWaterMark(LowWaterMarkOptions options = {}) : options_(options) {}

  // The highest index that may be released when the newest durable snapshot is at
  // `snapshot_index` (0 when nothing may be).
  LogIndex ReleasableThrough(LogIndex snapshot_index) const;

  // Moves the mark for a newly durable snapshot and deletes the segments below it. Returns how
  // many segments were deleted.
  Result<uint64_t> OnSnapshotDurable(WriteAheadLog& log, LogIndex snapshot_index);

  // The highest index released so far.
  LogIndex mark() const { return mark_; }

 private:
  LowWaterMarkOptions options_;
  LogIndex mark_{0};
};

}  // namespace cairn::wal
