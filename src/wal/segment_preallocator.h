// SegmentPreallocator: spare log segments, zero-filled and synced before the log needs them.
//
// Part of the Segmented Log pattern. An fdatasync after appending to a file must also commit the
// file's new length to the filesystem's journal; after overwriting blocks that already hold data
// it need not. On the project's benchmark machine (ext4) a 9 KB write+fdatasync takes 115-134 us
// over zeros written earlier against 170-204 us appending, and a 1-member put run's mean sync went
// from 0.39 to 0.19 ms. (fallocate alone does not help: its blocks are "unwritten", and the first
// write to them is a metadata change again.) So the write-ahead log writes each segment over a file
// of zeros made ahead of time. This class keeps one such spare, `<log dir>/spare.segment`
// (kSpareSegmentName) of `bytes` bytes, written and fdatasynced, and hands it over by renaming it
// to the next segment's name (TakeAs); the log writes the segment header and records over it.
//
// Modes:
//   - kBackground (the server): a thread of its own makes the spare, in 1 MiB writes each written
//     back before the next (sync_file_range) and one fdatasync at the end, so the zeros never sit
//     in front of the log's own syncs as one large flush. The writes are also paced: spread over
//     half the time the last segment took to fill, at no less than kPaceBytesPerSecondMin, and
//     at full speed once the log wanted a spare that was not ready. Made at full speed, three
//     members' spares on one disk (they roll at the same index) took ~200 MB of writes and the
//     CPU in ~0.3 s, and the puts meanwhile waited: 3 members, put p99 14.5-15.2 ms unpaced
//     against 10.3-11.8 ms paced (docs/benchmarks.md).
//     After a spare is taken the next one is made. When none is ready at a roll, the log creates a
//     plain segment and appends to it (and rolls early once a spare is ready).
//   - kInline (tests, the simulator): TakeAs makes the spare in the caller's thread when none is
//     ready, and the next one right after handing it over, so a spare lies in the directory most
//     of the time, as in the server, and crashes hit it.
//
// Crash rules: the spare's name is never part of the log; WriteAheadLog::Open deletes it. The
// spare's directory entry is never synced here: only the log's own Sync makes the renamed
// segment's name durable, after its data. A spare renamed into place holds zeros that were
// durable before the rename, so until written a segment reads as its header (or zeros) followed
// by zero padding, which the log reads as its clean end.
//
// Failure: a failed preparation (a full disk, say) is logged and tried again at the next TakeAs;
// the log meanwhile goes on with plain segments: slower syncs, nothing lost.
//
// Threads: TakeAs and ready() are called by the log's owner thread; in kBackground mode the
// spare is written on the preallocator's own thread (the FileSystem must be safe to share, as
// PosixFileSystem is). The destructor stops the thread, leaving at most a partial spare behind.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "storage/file_system.h"

namespace cairn::wal {

class SegmentPreallocator {
 public:
  enum class Mode : uint8_t { kInline, kBackground };
  // The slowest a background spare is written (a first spare, or a log that fills slowly).
  static constexpr uint64_t kPaceBytesPerSecondMin = 32u << 20;
  // How fast a spare of `bytes` is written after a segment took `fill_time` to fill (zero: not
  // known yet): within half that time, and no slower than kPaceBytesPerSecondMin.
  static uint64_t PaceBytesPerSecond(uint64_t bytes, std::chrono::nanoseconds fill_time);

  // Spares of `bytes` bytes in `directory`, which exists (the log created it).
  SegmentPreallocator(FileSystem& fs, std::string directory, uint64_t bytes, Mode mode);
  ~SegmentPreallocator();
  SegmentPreallocator(const SegmentPreallocator&) = delete;
  SegmentPreallocator& operator=(const SegmentPreallocator&) = delete;

  // True when TakeAs would hand over a spare without writing one first.
  bool ready() const;
  // Renames a ready spare to `path` and returns true (its zeros durable, its new name not yet);
  // false when none is ready (kBackground) or one could not be made. A failed rename is returned.
  Result<bool> TakeAs(const std::string& path);

  const std::string& spare_path() const { return spare_path_; }
  // Spares handed over so far.
  uint64_t spares_taken() const { return spares_taken_.load(std::memory_order_relaxed); }

 private:
  // Writes the spare (zeros in slices, each written back in kBackground mode, fdatasynced at the
  // end) at spare_path_, at most `bytes_per_second` fast (0: unpaced) until the log wants it.
  Status MakeSpare(uint64_t bytes_per_second = 0);
  void Run();

  FileSystem& fs_;
  const std::string spare_path_;
  const uint64_t bytes_;
  const Mode mode_;

  mutable std::mutex mutex_;
  std::condition_variable wanted_;  // The thread waits here for a spare to be taken.
  bool ready_ = false;              // Guarded by mutex_.
  uint64_t take_calls_ = 0;         // Guarded by mutex_.
  bool inline_failed_ = false;      // Guarded by mutex_ (kInline): the last attempt failed.
  // Guarded by mutex_: a TakeAs found no spare ready since the last one was taken, so the spare
  // being made is written unpaced.
  bool spare_wanted_ = false;
  // When the last spare was taken, and how long the segment before took to fill (its spare
  // taken until this one was): guarded by mutex_.
  std::chrono::steady_clock::time_point last_taken_{};
  std::chrono::steady_clock::duration segment_fill_time_{};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> spares_taken_{0};
  std::thread thread_;
};

}  // namespace cairn::wal
