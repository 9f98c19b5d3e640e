// HybridClock: a Hybrid Logical Clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014).
//
// Design note. Pattern "Hybrid Clock" (Unmesh Joshi, Patterns of Distributed Systems). A timestamp
// is a pair (l, c): l is the largest physical time (ms) the node has heard of, c a logical counter
// that orders events sharing the same l. It keeps the Lamport rule (a happened before b implies
// ts(a) < ts(b)) while staying close to wall-clock time, so it can serve as an MVCC version that
// people can read as a date. The rules, with pt the local physical clock:
//   - local or send event:  l' = max(l, pt);        c' = (l' == l) ? c + 1 : 0.
//   - receive of (m.l, m.c): l' = max(l, m.l, pt);  c' = max(c, m.c) + 1 when l' == l == m.l,
//                            c + 1 when only l' == l, m.c + 1 when only l' == m.l, else 0.
// Rules the class keeps:
//   - Every timestamp it returns is strictly greater than the previous one (CAIRN_CHECK), even when
//     the physical clock steps back (NTP correction): l then simply stays and c counts up.
//   - A remote timestamp more than max_offset_ms ahead of the local physical clock is refused with
//     OutOfRange and leaves the clock untouched: accepting it would drag l far from real time and
//     every later timestamp of this node with it. Given that, l - pt stays within max_offset_ms
//     while pt does not step back.
//   - The physical clock is injected (PhysicalClock), so the class itself is pure, deterministic
//     state: no wall clock, threads or randomness; tests drive time with ManualPhysicalClock.
#pragma once

#include <fmt/format.h>

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "base/check.h"
#include "base/status.h"

namespace cairn {

// A hybrid timestamp packed in one u64: wall time in ms in the high 48 bits, the logical counter in
// the low 16 bits. Comparing the packed values compares (wall time, logical) lexicographically.
class HybridTimestamp {
 public:
  static constexpr int kLogicalBits = 16;
  static constexpr uint64_t kMaxLogical = (uint64_t{1} << kLogicalBits) - 1;
  // 2^48 ms is about 8900 years after 1970, so real wall times always fit.
  static constexpr uint64_t kMaxWallTimeMs = (uint64_t{1} << (64 - kLogicalBits)) - 1;

  // 0.0: earlier than any timestamp a clock hands out.
  constexpr HybridTimestamp() = default;

  [[nodiscard]] static constexpr HybridTimestamp FromParts(uint64_t wall_time_ms,
                                                           uint16_t logical) {
    CAIRN_CHECK(wall_time_ms <= kMaxWallTimeMs,
                "the wall time of a hybrid timestamp fits in 48 bits (got {} ms)", wall_time_ms);
    return HybridTimestamp((wall_time_ms << kLogicalBits) | logical);
  }
  // Every u64 is a valid packed timestamp, so this cannot fail.
  [[nodiscard]] static constexpr HybridTimestamp FromPacked(uint64_t packed) {
    return HybridTimestamp(packed);
  }

  [[nodiscard]] constexpr uint64_t packed() const { return packed_; }
  [[nodiscard]] constexpr uint64_t wall_time_ms() const { return packed_ >> kLogicalBits; }
  [[nodiscard]] constexpr uint16_t logical() const {
    return static_cast<uint16_t>(packed_ & kMaxLogical);
  }

  constexpr auto operator<=>(const HybridTimestamp&) const = default;

  // "1700000000123.5": wall time in ms, a dot, the logical counter.
  [[nodiscard]] std::string ToString() const;

 private:
  constexpr explicit HybridTimestamp(uint64_t packed) : packed_(packed) {}

  uint64_t packed_ = 0;
};

// For readable gtest failure messages.
std::ostream& operator<<(std::ostream& out, HybridTimestamp timestamp);

// The source of physical time, injected so that tests control it.
class PhysicalClock {
 public:
  virtual ~PhysicalClock() = default;
  // Milliseconds since the Unix epoch. May go backwards (a wall clock being stepped).
  [[nodiscard]] virtual uint64_t NowMs() = 0;
};

// A physical clock that moves only when told to; it may be set backwards to model a stepped clock.
class ManualPhysicalClock final : public PhysicalClock {
 public:
  explicit ManualPhysicalClock(uint64_t now_ms = 0) : now_ms_(now_ms) {}

  [[nodiscard]] uint64_t NowMs() override { return now_ms_; }
  void SetMs(uint64_t now_ms) { now_ms_ = now_ms; }
  void AdvanceMs(uint64_t delta_ms);
  void StepBackMs(uint64_t delta_ms);

 private:
  uint64_t now_ms_;
};

// CLOCK_REALTIME in milliseconds, for the real server.
class SystemPhysicalClock final : public PhysicalClock {
 public:
  [[nodiscard]] uint64_t NowMs() override;
};

struct HybridClockOptions {
  // The largest clock offset between servers that is believed; remote timestamps further ahead of
  // the local physical clock than this are refused.
  uint64_t max_offset_ms = 500;
};

class HybridClock {
 public:
  // `physical_clock` must outlive the HybridClock.
  explicit HybridClock(PhysicalClock& physical_clock, HybridClockOptions options = {});

  HybridClock(const HybridClock&) = delete;
  HybridClock& operator=(const HybridClock&) = delete;

  // A local event or a send: returns a new timestamp, strictly greater than any returned before.
  [[nodiscard]] HybridTimestamp Now();

  // A receive of a message stamped `remote`: returns a new timestamp greater than both `remote`
  // and any returned before. Fails with OutOfRange, leaving the clock unchanged, when `remote` is
  // more than max_offset_ms ahead of the local physical clock.
  [[nodiscard]] Result<HybridTimestamp> Update(HybridTimestamp remote);

  // The latest timestamp handed out (0.0 before the first), without creating a new one.
  [[nodiscard]] HybridTimestamp Last() const { return last_; }

  [[nodiscard]] const HybridClockOptions& options() const { return options_; }

 private:
  // Reads the physical clock, checking that its time fits in a timestamp.
  uint64_t ReadPhysicalMs();
  // Records `next` as the latest timestamp, checking that the clock moves strictly forward.
  HybridTimestamp AdvanceTo(HybridTimestamp next);

  PhysicalClock* const physical_clock_;
  const HybridClockOptions options_;
  HybridTimestamp last_;
};

}  // namespace cairn

template <>
struct fmt::formatter<cairn::HybridTimestamp> {
  constexpr auto parse(fmt::format_parse_context& context) { return context.begin(); }
  auto format(const cairn::HybridTimestamp& timestamp, fmt::format_context& context) const {
    return fmt::format_to(context.out(), "{}.{}", timestamp.wall_time_ms(), timestamp.logical());
  }
};
