#include "clock/hybrid_clock.h"

#include <time.h>

#include <algorithm>
#include <limits>
#include <ostream>

namespace cairn {
namespace {

// The timestamp that follows (wall_time_ms, logical) when the wall time stays the same.
//
// The logical counter has 16 bits, so at most 65536 timestamps share one millisecond. When a
// 65537th is needed we borrow the next millisecond: the wall part moves one ms ahead of the
// physical clock and the counter restarts at 0. The result is still greater than everything it
// must follow (it has a larger wall time), at the cost of running up to 1 ms ahead of real time per
// 65536 events in a millisecond, which the physical clock soon catches up with.
HybridTimestamp NextLogical(uint64_t wall_time_ms, uint16_t logical) {
  if (logical == HybridTimestamp::kMaxLogical) {
    return HybridTimestamp::FromParts(wall_time_ms + 1, 0);
  }
  return HybridTimestamp::FromParts(wall_time_ms, static_cast<uint16_t>(logical + 1));
}

}  // namespace

std::string HybridTimestamp::ToString() const {
  return fmt::format("{}", *this);
}

std::ostream& operator<<(std::ostream& out, HybridTimestamp timestamp) {
  return out << timestamp.ToString();
}

void ManualPhysicalClock::AdvanceMs(uint64_t delta_ms) {
  CAIRN_CHECK(delta_ms <= std::numeric_limits<uint64_t>::max() - now_ms_,
              "a manual clock does not overflow (now {} ms, advance {} ms)", now_ms_, delta_ms);
  now_ms_ += delta_ms;
}

void ManualPhysicalClock::StepBackMs(uint64_t delta_ms) {
  CAIRN_CHECK(delta_ms <= now_ms_,
              "a manual clock does not step back before the epoch "
              "(now {} ms, step back {} ms)",
              now_ms_, delta_ms);
  now_ms_ -= delta_ms;
}

uint64_t SystemPhysicalClock::NowMs() {
  timespec now{};
  const int result = clock_gettime(CLOCK_REALTIME, &now);
  CAIRN_CHECK(result == 0, "CLOCK_REALTIME is always readable (clock_gettime returned {})", result);
  CAIRN_CHECK(now.tv_sec >= 0, "the wall clock is after 1970 (got {} s)", now.tv_sec);
  return static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1'000'000;
}

HybridClock::HybridClock(PhysicalClock& physical_clock, HybridClockOptions options)
    : physical_clock_(&physical_clock), options_(options) {}

HybridTimestamp HybridClock::Now() {
  const uint64_t physical_ms = ReadPhysicalMs();
  const uint64_t last_wall_ms = last_.wall_time_ms();
  // A physical clock behind l (it stepped back, or a remote pushed l ahead) leaves l where it is.
  if (physical_ms > last_wall_ms) return AdvanceTo(HybridTimestamp::FromParts(physical_ms, 0));
  return AdvanceTo(NextLogical(last_wall_ms, last_.logical()));
}

Result<HybridTimestamp> HybridClock::Update(HybridTimestamp remote) {
  const uint64_t physical_ms = ReadPhysicalMs();
  const uint64_t remote_wall_ms = remote.wall_time_ms();
  // Compared by subtraction so that a huge max_offset_ms cannot overflow.
  if (remote_wall_ms > physical_ms && remote_wall_ms - physical_ms > options_.max_offset_ms) {
    return Status::OutOfRange(
        fmt::format("remote hybrid timestamp {} is {} ms ahead of the local physical clock {} ms, "
                    "more than the "
                    "maximum clock offset of {} ms",
                    remote, remote_wall_ms - physical_ms, physical_ms, options_.max_offset_ms));
  }

  const uint64_t last_wall_ms = last_.wall_time_ms();
  const uint64_t wall_ms = std::max({last_wall_ms, remote_wall_ms, physical_ms});
  HybridTimestamp next;
  if (wall_ms == last_wall_ms && wall_ms == remote_wall_ms) {
    next = NextLogical(wall_ms, std::max(last_.logical(), remote.logical()));
  } else if (wall_ms == last_wall_ms) {
    next = NextLogical(wall_ms, last_.logical());
  } else if (wall_ms == remote_wall_ms) {
    next = NextLogical(wall_ms, remote.logical());
  } else {
    // The physical clock is ahead of both: it alone orders the event.
    next = HybridTimestamp::FromParts(wall_ms, 0);
  }
  CAIRN_CHECK(next > remote, "a receive is stamped after the send it receives (remote {}, next {})",
              remote, next);
  return AdvanceTo(next);
}

uint64_t HybridClock::ReadPhysicalMs() {
  const uint64_t physical_ms = physical_clock_->NowMs();
  CAIRN_CHECK(physical_ms <= HybridTimestamp::kMaxWallTimeMs,
              "the physical clock fits in the 48-bit wall time of a hybrid timestamp (got {} ms)",
              physical_ms);
  return physical_ms;
}

HybridTimestamp HybridClock::AdvanceTo(HybridTimestamp next) {
  CAIRN_CHECK(next > last_,
              "a hybrid clock's timestamps strictly increase, even when the physical clock steps "
              "back (last {}, next {})",
              last_, next);
  last_ = next;
  return last_;
}

}  // namespace cairn
