#include "clock/lamport_clock.h"

#include <algorithm>

#include "base/check.h"

namespace cairn {

LamportTime LamportClock::Tick() {
  return AdvanceTo(now_.next());
}

LamportTime LamportClock::Observe(LamportTime remote) {
  // next() turns an overflow of the counter into an invariant failure rather than a wrap to 0.
  return AdvanceTo(std::max(now_, remote).next());
}

LamportTime LamportClock::AdvanceTo(LamportTime next) {
  CAIRN_CHECK(next > now_, "a Lamport clock never goes back nor repeats a time (now {}, next {})",
              now_, next);
  now_ = next;
  return now_;
}

}  // namespace cairn
