#include "wal/low_water_mark.h"

namespace cairn::wal {

LogIndex LowWaterMark::ReleasableThrough(LogIndex snapshot_index) const {
  if (snapshot_index.value() <= options_.retained_entries) return LogIndex(0);
  return LogIndex(snapshot_index.value() - options_.retained_entries);
}

Result<uint64_t> LowWaterMark::OnSnapshotDurable(WriteAheadLog& log, LogIndex snapshot_index) {
  CAIRN_CHECK(snapshot_index <= log.last_index(),
              "a snapshot covers only entries the log has held (snapshot {} > last {})",
              snapshot_index, log.last_index());
  const LogIndex releasable = ReleasableThrough(snapshot_index);
  if (releasable <= mark_) return uint64_t{0};  // The mark only moves forward.
  CAIRN_ASSIGN_OR_RETURN(uint64_t removed, log.RemoveSegmentsThrough(releasable));
  mark_ = releasable;
  CAIRN_CHECK(log.first_index() <= snapshot_index.next(),
              "the log still reaches the snapshot after cleaning (first {} > snapshot {} + 1)",
              log.first_index(), snapshot_index);
  return removed;
}

}  // namespace cairn::wal
