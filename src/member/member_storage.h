// MemberStorage: one member's durable state, and how the consensus core's Readys reach it.
//
// Design note. The consensus core (consensus::Replica) is pure: it says what to persist, in what
// order, through Ready. This class is the storage half of the shell that carries that out, shared
// by the server and the deterministic simulator so both persist and recover the same way:
//   - the metadata record (generation and vote, MetadataStore) in `<directory>/meta`;
//   - the write-ahead log (WriteAheadLog) in `<directory>/wal`;
//   - snapshots (SnapshotStore) in `<directory>/snap`; each stored snapshot is the membership it
//     was taken under followed by the state machine's data (EncodeSnapshotBlob);
//   - the Low-Water Mark: after a snapshot is durable, segments behind it are released.
//
// Recovery (Open) rebuilds consensus::RecoveredState: the hard state, the newest valid snapshot
// and the log entries after it. If the log predates the snapshot (a crash while installing one
// from the leader, between saving it and restarting the log), the log is restarted right after
// the snapshot. A log that starts beyond the snapshot is refused: entries in between are missing.
//
// Failure: any storage error during Persist or SaveSnapshot is returned; the caller must treat the
// member as failed (stop it), because the log and metadata enforce fsync-failure-is-final.
// Not thread-safe: the member's single owner thread calls it.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "base/status.h"
#include "consensus/membership.h"
#include "consensus/replica.h"
#include "storage/file_system.h"
#include "storage/metadata_store.h"
#include "storage/snapshot_store.h"
#include "wal/low_water_mark.h"
#include "wal/write_ahead_log.h"

namespace cairn::member {

struct MemberStorageOptions {
  wal::WalOptions wal;
  SnapshotOptions snapshots;
  wal::LowWaterMarkOptions low_water_mark;
};

// A stored snapshot: the membership it was taken under, then the state machine's data.
std::string EncodeSnapshotBlob(const consensus::Membership& membership, std::string_view data);
Result<std::pair<consensus::Membership, std::string>> DecodeSnapshotBlob(std::string_view blob);

class MemberStorage {
 public:
  // Opens (creating what is missing) and recovers the state in `directory`, which must exist.
  static Result<std::unique_ptr<MemberStorage>> Open(FileSystem& fs, const std::string& directory,
                                                     MemberStorageOptions options = {});

  // What the core starts from. Taken once (it moves the recovered entries out).
  consensus::RecoveredState TakeRecoveredState();

  // Carries out the storage part of `ready`, in its order: the hard state, a snapshot to install
  // (saved, then the log restarted after it), a truncation, the entries and their fdatasync.
  Status Persist(const consensus::Ready& ready);

  // Saves a snapshot the member took at `index` (of `generation`) and releases the log behind
  // it. Call Replica::CompactLog only after this returned OK. The same as WriteSnapshot, then
  // ReleaseLogThrough.
  Status SaveSnapshot(LogIndex index, Generation generation,
                      const consensus::Membership& membership, std::string_view data);
  // Writes a snapshot file durably and opens its data for reading (as OpenSnapshotData). Unlike
  // the rest of this class, callable from another thread than the log's owner (the member writes
  // large snapshots in the background): the file is written outside any lock, and only the
  // rename into the snapshot directory takes the snapshot files' mutex, so a leader's snapshot
  // being installed meanwhile waits for no long write.
  Result<std::shared_ptr<const consensus::SnapshotSource>> WriteSnapshot(
      LogIndex index, Generation generation, const consensus::Membership& membership,
      std::string_view data);
  // After WriteSnapshot returned OK, on the owner's thread: the Low-Water Mark releases the log
  // segments behind `index`. Nothing happens when a newer snapshot (a leader's, installed in the
  // meantime) already restarted the log beyond it.
  Status ReleaseLogThrough(LogIndex index);

  // The state-machine data of the stored snapshot at `index` (of `generation`), read from its
  // file when a follower needs it: the core's SnapshotSource, so no copy of the whole state
  // stays in memory. The source may be read from another thread than this object's owner; it
  // keeps its file open (readable after the snapshot is pruned). A failed read is a storage
  // failure: it crashes with the file's name. Reads from the start to the end in order are
  // checked against the file's data checksum before the last chunk is returned, so damaged
  // bytes on disk crash the sender instead of reaching followers.
  Result<std::shared_ptr<const consensus::SnapshotSource>> OpenSnapshotData(
      LogIndex index, Generation generation);

  // The newest durable snapshot's index (0 when none).
  LogIndex snapshot_index() const { return snapshot_index_; }
  const wal::WriteAheadLog& log() const { return *log_; }

 private:
  MemberStorage() = default;

  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<wal::WriteAheadLog> log_;
  Result<std::shared_ptr<const consensus::SnapshotSource>> OpenSnapshotDataLocked(
      LogIndex index, Generation generation);

  std::mutex snapshots_mutex_;  // Guards snapshots_ (WriteSnapshot may run on another thread).
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<wal::LowWaterMark> low_water_mark_;
  LogIndex snapshot_index_;
  std::optional<consensus::RecoveredState> recovered_;
};

}  // namespace cairn::member
