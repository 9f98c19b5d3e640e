#include "clock/lamport_clock.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace cairn {
namespace {

TEST(LamportClock, StartsAtZero) {
  LamportClock clock;
  EXPECT_EQ(LamportTime(0), clock.Now());
}

TEST(LamportClock, TickAdvancesByOne) {
  LamportClock clock;
  EXPECT_EQ(LamportTime(1), clock.Tick());
  EXPECT_EQ(LamportTime(2), clock.Tick());
  EXPECT_EQ(LamportTime(2), clock.Now());
}

TEST(LamportClock, ResumesFromARecoveredTime) {
  LamportClock clock(LamportTime(41));
  EXPECT_EQ(LamportTime(41), clock.Now());
  EXPECT_EQ(LamportTime(42), clock.Tick());
}

TEST(LamportClock, ObserveOfSmallerRemoteAdvancesLocalByOne) {
  LamportClock clock(LamportTime(10));
  EXPECT_EQ(LamportTime(11), clock.Observe(LamportTime(3)));
}

TEST(LamportClock, ObserveOfEqualRemoteAdvancesByOne) {
  LamportClock clock(LamportTime(10));
  EXPECT_EQ(LamportTime(11), clock.Observe(LamportTime(10)));
}

TEST(LamportClock, ObserveOfLargerRemoteJumpsPastIt) {
  LamportClock clock(LamportTime(2));
  EXPECT_EQ(LamportTime(101), clock.Observe(LamportTime(100)));
  EXPECT_EQ(LamportTime(102), clock.Tick());
}

TEST(LamportClock, NeverGoesBackOverRandomTicksAndObserves) {
  std::mt19937_64 random(7);
  LamportClock clock;
  LamportTime previous = clock.Now();
  for (int i = 0; i < 2000; ++i) {
    LamportTime next;
    if (random() % 2 == 0) {
      next = clock.Tick();
    } else {
      // Remotes both far behind and ahead of the local time.
      next = clock.Observe(LamportTime(random() % (previous.value() + 50)));
    }
    ASSERT_GT(next, previous) << "step " << i;
    ASSERT_EQ(next, clock.Now());
    previous = next;
  }
}

TEST(LamportClock, FormatsAsItsNumber) {
  LamportClock clock(LamportTime(6));
  EXPECT_EQ("t=7", fmt::format("t={}", clock.Tick()));
}

TEST(LamportClockDeathTest, OverflowIsAnInvariantFailure) {
  LamportClock at_max(LamportTime(UINT64_MAX));
  EXPECT_DEATH((void)at_max.Tick(), "LamportTime does not overflow");
  LamportClock small;
  EXPECT_DEATH((void)small.Observe(LamportTime(UINT64_MAX)), "LamportTime does not overflow");
}

}  // namespace
}  // namespace cairn
