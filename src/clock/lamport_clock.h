// LamportClock: a logical clock that orders events consistently with causality.
//
// Design note. Pattern "Lamport Clock" (Unmesh Joshi, Patterns of Distributed Systems). Servers do
// not share a wall clock they can trust, so each keeps a counter instead:
//   - a local event (including sending a message) advances the counter by one;
//   - receiving a message carrying time `remote` sets the counter to max(local, remote) + 1.
// Then "a happened before b" implies Lamport(a) < Lamport(b). The converse does not hold: two
// concurrent events may have any order of times (version_vector.h detects concurrency exactly).
// The rule the class keeps: the time it hands out never goes back and never repeats, which a
// CAIRN_CHECK enforces; overflow of the 64-bit counter is an invariant failure, not a wrap-around.
// The class is pure state: no threads, no wall clock, no randomness.
#pragma once

#include <cstdint>

#include "base/strong_types.h"

namespace cairn {

struct LamportTimeTag {
  static constexpr const char* kName = "LamportTime";
};
// A Lamport timestamp. 0 is the time before any event.
using LamportTime = StrongNumber<LamportTimeTag, uint64_t>;

class LamportClock {
 public:
  LamportClock() = default;
  // Resumes from a time recovered from storage, so a restarted server does not reuse old times.
  explicit LamportClock(LamportTime start) : now_(start) {}

  // The time of the latest event, without creating a new one.
  [[nodiscard]] LamportTime Now() const { return now_; }

  // A local event or a send: advances by one and returns the new time (stamp it on the message).
  [[nodiscard]] LamportTime Tick();

  // A receive of a message stamped `remote`: becomes max(local, remote) + 1 and returns it.
  [[nodiscard]] LamportTime Observe(LamportTime remote);

 private:
  // Moves to `next`, checking that the clock only moves forward.
  LamportTime AdvanceTo(LamportTime next);

  LamportTime now_;
};

}  // namespace cairn
