#include "wal/segment_preallocator.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "wal/log_format.h"

namespace cairn::wal {

namespace {

// Each slice of zeros is written and written back (WritableFile::WriteBack, no cache flush) before
// the next: the device never holds more than this much of the spare in its queue in front of the
// log's syncs, and the one fdatasync at the end has little left to flush. (Same-hour A/B on the
// benchmark machine, 1-member put: a slice per fdatasync, per write-back, or one fdatasync at the
// end were within run-to-run noise of each other: 77-89k, 85-89k, 78-87k req/s.)
constexpr uint64_t kSliceBytes = 1u << 20;

}  // namespace

SegmentPreallocator::SegmentPreallocator(FileSystem& fs, std::string directory, uint64_t bytes,
                                         Mode mode)
    : fs_(fs), spare_path_(JoinPath(directory, kSpareSegmentName)), bytes_(bytes), mode_(mode) {
  CAIRN_CHECK(bytes_ >= kSegmentHeaderBytes, "a spare segment holds at least a header ({} bytes)",
              bytes_);
  if (mode_ == Mode::kBackground) thread_ = std::thread([this] { Run(); });
}

SegmentPreallocator::~SegmentPreallocator() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
  }
  wanted_.notify_all();
  thread_.join();
}

bool SegmentPreallocator::ready() const {
  std::lock_guard lock(mutex_);
  // Inline, one can be made on demand, unless the last attempt failed (then the log waits for
  // its next ordinary roll to try again, instead of rolling at every append).
  return mode_ == Mode::kInline ? !inline_failed_ : ready_;
}

Status SegmentPreallocator::MakeSpare(uint64_t bytes_per_second) {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                         fs_.OpenWritable(spare_path_, OpenMode::kCreateOrTruncate));
  static const std::string kZeros(kSliceBytes, '\0');
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t written = 0; written < bytes_;) {
    if (stopping_.load(std::memory_order_relaxed)) {
      return Status::Unavailable("stopping before the spare segment was complete");
    }
    const uint64_t slice = std::min(kSliceBytes, bytes_ - written);
    CAIRN_TRY(file->Append(std::string_view(kZeros).substr(0, slice)));
    if (mode_ == Mode::kBackground) CAIRN_TRY(file->WriteBack());
    written += slice;
    if (bytes_per_second != 0 && written < bytes_) {
      // Wait until the pace allows the next slice; once the log has wanted this spare (it
      // appends to a plain segment until the spare is ready) the rest goes at full speed.
      const auto next_slice_at =
          start + std::chrono::nanoseconds(written * 1'000'000'000 / bytes_per_second);
      std::unique_lock lock(mutex_);
      wanted_.wait_until(lock, next_slice_at, [&] { return stopping_.load() || spare_wanted_; });
      if (spare_wanted_) bytes_per_second = 0;
    }
  }
  CAIRN_TRY(file->Sync());
  return file->Close();
}

uint64_t SegmentPreallocator::PaceBytesPerSecond(uint64_t bytes,
                                                 std::chrono::nanoseconds fill_time) {
  if (fill_time.count() <= 0) return kPaceBytesPerSecondMin;
  const double within_s = static_cast<double>(fill_time.count()) / 2e9;
  return std::max<uint64_t>(kPaceBytesPerSecondMin,
                            static_cast<uint64_t>(static_cast<double>(bytes) / within_s));
}

Result<bool> SegmentPreallocator::TakeAs(const std::string& path) {
  std::unique_lock lock(mutex_);
  ++take_calls_;
  if (!ready_ && mode_ == Mode::kInline) {
    Status made = MakeSpare();
    inline_failed_ = !made.ok();
    if (!made.ok()) {
      spdlog::warn("{}: could not make a spare log segment, the log appends to a plain one: {}",
                   spare_path_, made.ToString());
      return false;
    }
    ready_ = true;
  }
  if (!ready_) {
    spare_wanted_ = true;  // The spare being made (or the next) goes at full speed.
    lock.unlock();
    wanted_.notify_all();  // After a failed attempt the thread tries again now.
    return false;
  }
  CAIRN_TRY(fs_.Rename(spare_path_, path));
  ready_ = false;
  spare_wanted_ = false;
  spares_taken_.fetch_add(1, std::memory_order_relaxed);
  if (mode_ == Mode::kBackground) {
    const auto now = std::chrono::steady_clock::now();
    if (last_taken_ != std::chrono::steady_clock::time_point{}) {
      segment_fill_time_ = now - last_taken_;
    }
    last_taken_ = now;
  }
  lock.unlock();
  if (mode_ == Mode::kBackground) {
    wanted_.notify_all();
  } else {
    // The next one now, as the background thread would, so crashes find a spare in place. A
    // failure here is tried again at the next TakeAs.
    lock.lock();
    ready_ = MakeSpare().ok();
    inline_failed_ = !ready_;
  }
  return true;
}

void SegmentPreallocator::Run() {
  pthread_setname_np(pthread_self(), "cairn-wal-spare");
  std::unique_lock lock(mutex_);
  bool failed_last_time = false;
  while (!stopping_.load()) {
    if (ready_ || failed_last_time) {
      // Wait for the spare to be taken; after a failure, for the next roll (or a minute) to try
      // again.
      const uint64_t seen = take_calls_;
      wanted_.wait_for(lock, std::chrono::seconds(60),
                       [&] { return stopping_.load() || take_calls_ != seen; });
      failed_last_time = false;
      continue;
    }
    const uint64_t pace = PaceBytesPerSecond(
        bytes_, std::chrono::duration_cast<std::chrono::nanoseconds>(segment_fill_time_));
    lock.unlock();
    Status made = MakeSpare(pace);
    lock.lock();
    if (made.ok()) {
      ready_ = true;
    } else if (!stopping_.load()) {
      spdlog::warn("{}: could not make a spare log segment, the log appends to plain ones: {}",
                   spare_path_, made.ToString());
      failed_last_time = true;
    }
  }
}

}  // namespace cairn::wal
