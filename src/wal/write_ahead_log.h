// WriteAheadLog: the durable, segmented log of entries every Cairn member keeps.
//
// Patterns: Write-Ahead Log (every change is appended here and made durable before it takes
// effect or is acknowledged) and Segmented Log (the log is a series of files, so old ones can be
// deleted whole; see LowWaterMark in low_water_mark.h for when).
//
// ## Layout (docs/wal-format.md; constants in log_format.h)
// A directory of segment files "<first index, 20 digits>.wal". Each holds a 32-byte header and
// records with contiguous indexes; the next segment starts where the previous one ends. The last
// segment is the *active* one, appended to; the others are *sealed*. There is always at least one
// segment: an empty log is an active segment holding only its header, whose first_index says
// which index comes next.
//
// ## Appending and durability are separate steps
//   Append(entries)  encodes them and writes them with one write(2) per segment touched (and per
//                    kWriteBytesMax); they can be read back at once but are NOT durable. Append
//                    syncs on its own before the unsynced bytes would pass kUnsyncedBytesMax.
//   Sync()           fdatasyncs every file written since the last Sync, and the directory if a
//                    segment was created, then returns the highest durable index.
//
// ## Preallocated segments (WalOptions::preallocation)
// With preallocation on, a new segment is a spare file of zeros (SegmentPreallocator), written
// and synced ahead of time and renamed into place; the log writes its header and records over the
// zeros, so an fdatasync does not have to commit a growing file's length. A segment not yet full
// ends in zero padding; when sealed it is truncated to its records. If no spare is ready at a roll
// the log creates a plain segment, and rolls early to a spare once one is ready. Before a roll the
// log syncs what it holds (the new name can become durable before the next Sync: any journal
// commit carries the rename), so only the last segment ever holds unsynced bytes.
// Nothing may be acknowledged for an index above what Sync returned. GroupCommitWriter
// (group_commit_writer.h) turns many callers' appends into one Append and one Sync.
//
// ## Crash rules (what Open does with what it finds)
//   - Every record's header checksum and record checksum are verified.
//   - A segment's records end where the rest of the file is all zeros (padding): its clean end.
//     The last segment keeps its padding and is written over; a sealed one is cut to its records.
//   - A *torn tail* is truncated with a warning. It is a bad region at the end of the last segment
//     that a crash during an append can produce, and nothing valid follows it:
//       * the file ends inside a record header, or inside the payload of a record whose header is
//         sound (a partial append);
//       * or the file reads back as zeros from inside the bad record (from its start or from a
//         sector boundary) to its end: the file's new length reached the disk before its data
//         did. Every sound record ends in a non-zero trailer byte, so a record's own content can
//         never be mistaken for this.
//       * or the file's non-zero bytes end inside the bad record (a write over zeros cut short);
//       * or, in the last segment, if its header says it was written over a spare
//         (kSegmentFlagPreallocated): a sector's share of the bad record is all zeros where a
//         record's own bytes never are (its first share, the share with its type byte or its
//         trailer, or a whole sector of payload), and everything non-zero after the bad spot lies
//         within kUnsyncedBytesMax of it, sound records included. That is a write over zeros
//         interrupted by a crash: writeback keeps no order among a file's pages, so sectors of it
//         can reach the disk on both sides of one that did not. Only the last segment ever holds
//         unsynced bytes (a roll syncs first) and never more than kUnsyncedBytesMax, so what lies
//         there was never acknowledged. (The price: a record in that span that was acknowledged
//         and then had a sector zeroed by the disk itself, or a bit flipped in a value of zeros,
//         is dropped as torn, not reported.)
//     A last segment whose own header is incomplete or all zeros is rewritten empty, also when
//     non-zero bytes follow within kUnsyncedBytesMax (its header is synced with its first records,
//     so none of them ever was).
//   - A leftover spare (kSpareSegmentName) is deleted.
//   - Everything else refuses to open with Corruption, naming the file and byte offset: a bad
//     record followed by a good one; a bad or partial record in a sealed segment; a complete,
//     non-zeroed record with a bad checksum, even at the very end (a torn append cannot produce
//     one, so it is damage to a record that may have been acknowledged); a gap or a repeat between
//     segments or records; a generation that goes back; a header naming another index than its
//     file name; unknown files in the directory. A segment of a newer format version refuses with
//     Unsupported. The rule: never silently drop a record that might have been acknowledged.
//   - A missing *last* segment cannot be told from a log that ended earlier; the layers above
//     compare the log with their snapshot and metadata.
//
// ## Failure is final
// The first failed fdatasync, or a failed attempt to undo a failed write, puts the log in a failed
// state: every later call returns Failed. An fsync is never retried (PostgreSQL's "fsyncgate": after
// a failed fsync the kernel may have dropped the dirty pages, so a retry could succeed on lost data).
// A failed write (ENOSPC, say) is undone by truncating the partial bytes, and the log stays usable.
//
// ## Ownership and threads
// Not thread-safe: one owner thread calls it (the GroupCommitWriter's thread in the server, the
// simulator's only thread in tests). The FileSystem must outlive the log.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/strong_types.h"
#include "storage/file_system.h"
#include "wal/entry.h"
#include "wal/segment_preallocator.h"

namespace cairn::wal {

// Whether segments are written over spare files of zeros made ahead of time (SegmentPreallocator).
enum class Preallocation : uint8_t {
  kOff,         // Every segment is a new file, appended to.
  kInline,      // Spares made in the log's own thread (tests and the simulator).
  kBackground,  // Spares made on a thread of their own (the server).
};

struct WalOptions {
  // A segment is sealed and a new one started once it holds at least this many bytes; also the
  // size of a preallocated segment.
  uint64_t segment_bytes_target = 64ull << 20;
  // The index of the first entry of a brand-new log.
  LogIndex first_index_of_new_log = LogIndex(1);
  Preallocation preallocation = Preallocation::kOff;
};

// What Open found and did.
struct RecoveryReport {
  uint64_t segments = 0;
  uint64_t entries = 0;
  bool created_new_log = false;
  bool torn_tail_truncated = false;
  std::string torn_tail_file;
  uint64_t torn_tail_offset = 0;
  uint64_t torn_tail_bytes_dropped = 0;
  uint64_t padding_bytes = 0;  // Zero padding after the last record (a preallocated segment).
};

struct SegmentInfo {
  std::string file_name;
  LogIndex first_index;
  LogIndex last_index;  // first_index - 1 when the segment holds no entry.
  uint64_t size_bytes = 0;
};

class WriteAheadLog {
 public:
  // Opens (recovering) or creates the log in `directory`, which is created if missing.
  static Result<std::unique_ptr<WriteAheadLog>> Open(FileSystem& fs, std::string directory,
                                                     WalOptions options = {});
  ~WriteAheadLog();
  WriteAheadLog(const WriteAheadLog&) = delete;
  WriteAheadLog& operator=(const WriteAheadLog&) = delete;

  // Appends entries after last_index(). The caller guarantees that indexes are contiguous from
  // last_index() + 1 and generations never go back (a broken promise crashes). A payload over
  // kPayloadBytesMax is InvalidArgument. All or nothing: on failure nothing was appended.
  Status Append(std::span<const Entry> entries);

  // Makes everything appended durable; returns the durable index (== last_index()).
  Result<LogIndex> Sync();

  // Removes every entry after `index` (first_index() - 1 <= index), durably, before returning.
  // A follower does this when its log conflicts with the leader's.
  Status TruncateAfter(LogIndex index);

  // Drops every entry and starts an empty log whose next entry is `next_index` (after a snapshot
  // was installed that the log does not reach). Durable before returning.
  Status Reset(LogIndex next_index);

  // Deletes sealed segments whose entries all lie at or below `index`; the active segment stays.
  // Returns how many segments were deleted. See LowWaterMark.
  Result<uint64_t> RemoveSegmentsThrough(LogIndex index);

  // Entries [from, to], first_index() <= from <= to <= last_index(), stopping early once the
  // payloads read exceed `bytes_max` (but always at least one entry). Every record's checksum is
  // verified as it is read.
  Result<std::vector<Entry>> Read(LogIndex from, LogIndex to,
                                  uint64_t bytes_max = std::numeric_limits<uint64_t>::max());
  // The generation of the entry at `index` (first_index() <= index <= last_index()), from memory.
  Generation GenerationAt(LogIndex index) const;

  // The first entry held, or the next index to be appended when the log is empty.
  LogIndex first_index() const;
  // The last entry appended; first_index() - 1 when the log is empty.
  LogIndex last_index() const { return last_index_; }
  // The highest index known durable.
  LogIndex durable_index() const { return durable_index_; }
  Generation last_generation() const;
  bool empty() const { return last_index_ < first_index(); }
  bool failed() const { return failed_; }
  const RecoveryReport& recovery() const { return recovery_; }
  std::vector<SegmentInfo> Segments() const;
  // Segments that were written over a spare of zeros, since Open (0 with preallocation off).
  uint64_t preallocated_segments() const { return preallocated_segments_; }
  const std::string& directory() const { return directory_; }

 private:
  struct Segment;
  struct RecordLocation {
    uint64_t offset;
    Generation generation;
  };
  // The first unreadable spot found by recovery in a segment.
  struct TailDamage {
    bool present = false;
    uint64_t offset = 0;     // 0 when the segment's own header is torn.
    std::string what;
    bool torn = false;       // What a crash during a write leaves (crash rules above).
    uint64_t file_bytes = 0;
  };

  WriteAheadLog(FileSystem& fs, std::string directory, WalOptions options);
  Status Recover();
  Status RecoverSegment(size_t position, bool last, TailDamage* damage);
  Status RepairTornTail(const std::vector<LogIndex>& first_indexes, size_t position,
                        const TailDamage& damage);
  Status CreateSegment(LogIndex first_index, bool sync_now);
  // Writes `bytes` at the end of the active segment's records, syncing first if the unsynced bytes
  // would pass kUnsyncedBytesMax.
  Status WriteToActive(std::string_view bytes);
  // Whether the active segment should be sealed before more records go to it.
  bool ShouldRoll() const;
  Status SyncDirectory();
  Status RemoveSegmentFile(size_t position);
  Status Fail(const Status& cause);
  Status CheckUsable() const;
  Status RollBack(size_t segments_before, uint64_t active_size_before, LogIndex last_before,
                  uint64_t syncs_before);
  Segment& SegmentFor(LogIndex index);
  std::string PathOf(LogIndex first_index) const;

  FileSystem& fs_;
  const std::string directory_;
  const WalOptions options_;
  std::vector<std::unique_ptr<Segment>> segments_;
  LogIndex last_index_;
  LogIndex durable_index_;
  bool failed_ = false;
  std::string failure_;
  bool directory_dirty_ = false;
  uint64_t unsynced_bytes_ = 0;  // Written to any segment since the last successful fdatasync.
  uint64_t preallocated_segments_ = 0;
  uint64_t syncs_ = 0;  // Successful Syncs, so a failed Append knows whether it synced part.
  RecoveryReport recovery_;
  std::unique_ptr<SegmentPreallocator> preallocator_;  // Set when preallocation is on.
};

// "00000000000000000001.wal" for index 1.
std::string SegmentFileName(LogIndex first_index);

}  // namespace cairn::wal
