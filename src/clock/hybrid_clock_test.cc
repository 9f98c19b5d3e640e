#include "clock/hybrid_clock.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <type_traits>

namespace cairn {
namespace {

constexpr uint64_t kStartMs = 1'700'000'000'000;

HybridTimestamp Ts(uint64_t wall_time_ms, uint16_t logical) {
  return HybridTimestamp::FromParts(wall_time_ms, logical);
}

static_assert(sizeof(HybridTimestamp) == sizeof(uint64_t), "one u64 on the wire and in memory");
static_assert(std::is_trivially_copyable_v<HybridTimestamp>);

// --- HybridTimestamp -----------------------------------------------------------------------------

TEST(HybridTimestamp, PacksWallTimeHighAndLogicalLow) {
  const HybridTimestamp timestamp = Ts(kStartMs + 123, 5);
  EXPECT_EQ(((kStartMs + 123) << 16) | 5, timestamp.packed());
  EXPECT_EQ(kStartMs + 123, timestamp.wall_time_ms());
  EXPECT_EQ(5, timestamp.logical());
}

TEST(HybridTimestamp, PackingRoundTrips) {
  std::mt19937_64 random(11);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t packed = random();
    const HybridTimestamp timestamp = HybridTimestamp::FromPacked(packed);
    ASSERT_EQ(packed, timestamp.packed());
    ASSERT_EQ(timestamp, Ts(timestamp.wall_time_ms(), timestamp.logical()));
  }
  const HybridTimestamp largest = Ts(HybridTimestamp::kMaxWallTimeMs, 0xFFFF);
  EXPECT_EQ(UINT64_MAX, largest.packed());
  EXPECT_EQ(largest, HybridTimestamp::FromPacked(largest.packed()));
}

TEST(HybridTimestamp, OrdersByWallTimeThenLogical) {
  EXPECT_LT(Ts(100, 0xFFFF), Ts(101, 0));
  EXPECT_LT(Ts(100, 1), Ts(100, 2));
  EXPECT_EQ(Ts(100, 2), Ts(100, 2));
  EXPECT_LT(HybridTimestamp(), Ts(0, 1));
}

TEST(HybridTimestamp, FormatsAsWallDotLogical) {
  EXPECT_EQ("1700000000123.5", fmt::format("{}", Ts(kStartMs + 123, 5)));
  EXPECT_EQ("1700000000123.5", Ts(kStartMs + 123, 5).ToString());
  EXPECT_EQ("0.0", HybridTimestamp().ToString());
}

TEST(HybridTimestampDeathTest, WallTimeBeyond48BitsIsAnInvariantFailure) {
  EXPECT_DEATH((void)Ts(HybridTimestamp::kMaxWallTimeMs + 1, 0), "fits in 48 bits");
}

// --- Physical clocks -----------------------------------------------------------------------------

TEST(ManualPhysicalClock, SetsAdvancesAndStepsBack) {
  ManualPhysicalClock physical(kStartMs);
  EXPECT_EQ(kStartMs, physical.NowMs());
  physical.AdvanceMs(10);
  EXPECT_EQ(kStartMs + 10, physical.NowMs());
  physical.StepBackMs(25);
  EXPECT_EQ(kStartMs - 15, physical.NowMs());
  physical.SetMs(5);
  EXPECT_EQ(5u, physical.NowMs());
}

TEST(SystemPhysicalClock, ReadsAPlausibleWallTime) {
  SystemPhysicalClock physical;
  const uint64_t now_ms = physical.NowMs();
  EXPECT_GT(now_ms, uint64_t{1'577'836'800'000});  // After 2020-01-01.
  EXPECT_LE(now_ms, HybridTimestamp::kMaxWallTimeMs);
}

// --- Local and send events (Now) -----------------------------------------------------------------

TEST(HybridClockNow, PhysicalClockAheadTakesItAndResetsLogical) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  EXPECT_EQ(Ts(kStartMs, 0), clock.Now());
  physical.AdvanceMs(3);
  EXPECT_EQ(Ts(kStartMs + 3, 0), clock.Now());
  EXPECT_EQ(Ts(kStartMs + 3, 0), clock.Last());
}

TEST(HybridClockNow, SameMillisecondIncrementsLogical) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  EXPECT_EQ(Ts(kStartMs, 0), clock.Now());
  EXPECT_EQ(Ts(kStartMs, 1), clock.Now());
  EXPECT_EQ(Ts(kStartMs, 2), clock.Now());
}

TEST(HybridClockNow, PhysicalClockBehindKeepsWallAndIncrementsLogical) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  ASSERT_TRUE(clock.Update(Ts(kStartMs + 100, 7)).ok());  // l is now ahead of pt.
  EXPECT_EQ(Ts(kStartMs + 100, 9), clock.Now());
}

TEST(HybridClockNow, WallClockSteppingBackStaysMonotonic) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  EXPECT_EQ(Ts(kStartMs, 0), clock.Now());
  physical.StepBackMs(1000);  // NTP steps the wall clock back one second.
  EXPECT_EQ(Ts(kStartMs, 1), clock.Now());
  EXPECT_EQ(Ts(kStartMs, 2), clock.Now());
  physical.AdvanceMs(999);  // Still 1 ms behind the last timestamp.
  EXPECT_EQ(Ts(kStartMs, 3), clock.Now());
  physical.AdvanceMs(2);  // Real time overtakes l again.
  EXPECT_EQ(Ts(kStartMs + 1, 0), clock.Now());
}

TEST(HybridClockNow, LogicalOverflowAdvancesWallTimeByOneMs) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  HybridTimestamp last = clock.Now();
  for (uint64_t i = 0; i < HybridTimestamp::kMaxLogical; ++i) last = clock.Now();
  EXPECT_EQ(Ts(kStartMs, 0xFFFF), last);
  // The 65537th event in one millisecond borrows the next millisecond.
  EXPECT_EQ(Ts(kStartMs + 1, 0), clock.Now());
  // The physical clock is now behind l, so the counter continues from there.
  EXPECT_EQ(Ts(kStartMs + 1, 1), clock.Now());
}

// --- Receive events (Update): the Kulkarni cases
// ---------------------------------------------------

TEST(HybridClockUpdate, PhysicalClockAheadOfBothResetsLogical) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  (void)clock.Now();       // l = kStartMs.
  physical.AdvanceMs(50);  // pt > l and pt > m.l.
  auto received = clock.Update(Ts(kStartMs + 20, 9));
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_EQ(Ts(kStartMs + 50, 0), *received);
}

TEST(HybridClockUpdate, LocalAheadOfBothIncrementsLocalLogical) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  ASSERT_TRUE(clock.Update(Ts(kStartMs + 200, 3)).ok());  // l = kStartMs + 200, c = 4.
  physical.AdvanceMs(10);                                 // pt behind l.
  auto received = clock.Update(Ts(kStartMs + 100, 40));   // m.l behind l.
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_EQ(Ts(kStartMs + 200, 5), *received);
}

TEST(HybridClockUpdate, EqualWallTimesTakeMaxLogicalPlusOne) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  (void)clock.Now();
  (void)clock.Now();  // kStartMs.1
  auto with_larger_remote = clock.Update(Ts(kStartMs, 7));
  ASSERT_TRUE(with_larger_remote.ok());
  EXPECT_EQ(Ts(kStartMs, 8), *with_larger_remote);
  auto with_smaller_remote = clock.Update(Ts(kStartMs, 2));
  ASSERT_TRUE(with_smaller_remote.ok());
  EXPECT_EQ(Ts(kStartMs, 9), *with_smaller_remote);
}

TEST(HybridClockUpdate, RemoteAheadWithinBoundTakesRemoteLogicalPlusOne) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  (void)clock.Now();
  auto received = clock.Update(Ts(kStartMs + 300, 4));  // Ahead of l and pt, within 500 ms.
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_EQ(Ts(kStartMs + 300, 5), *received);
}

TEST(HybridClockUpdate, PhysicalClockBehindAfterSteppingBackStaysMonotonic) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  (void)clock.Now();
  physical.StepBackMs(5000);
  auto received = clock.Update(Ts(kStartMs - 4800, 0));  // Ahead of pt, behind l.
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_EQ(Ts(kStartMs, 1), *received);
}

TEST(HybridClockUpdate, RemoteExactlyAtMaxOffsetIsAccepted) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical, HybridClockOptions{.max_offset_ms = 500});
  auto received = clock.Update(Ts(kStartMs + 500, 3));
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_EQ(Ts(kStartMs + 500, 4), *received);
}

TEST(HybridClockUpdate, RemoteOneMsBeyondMaxOffsetIsRejectedAndClockUnchanged) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical, HybridClockOptions{.max_offset_ms = 500});
  const HybridTimestamp before = clock.Now();
  auto received = clock.Update(Ts(kStartMs + 501, 0));
  ASSERT_FALSE(received.ok());
  EXPECT_EQ(StatusCode::kOutOfRange, received.status().code());
  const std::string message = received.status().message();  // status() returns a copy.
  EXPECT_NE(std::string::npos, message.find("1700000000501.0")) << message;
  EXPECT_NE(std::string::npos, message.find("1700000000000 ms")) << message;
  EXPECT_NE(std::string::npos, message.find("501 ms ahead")) << message;
  EXPECT_NE(std::string::npos, message.find("500 ms")) << message;
  EXPECT_EQ(before, clock.Last());
  EXPECT_EQ(Ts(kStartMs, 1), clock.Now()) << "the rejected remote left no trace";
}

TEST(HybridClockUpdate, BoundIsMeasuredFromThePhysicalClockNotFromL) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical, HybridClockOptions{.max_offset_ms = 100});
  ASSERT_TRUE(clock.Update(Ts(kStartMs + 100, 0)).ok());  // l = pt + 100.
  // Within 100 ms of l but 150 ms ahead of pt: refused.
  EXPECT_EQ(StatusCode::kOutOfRange, clock.Update(Ts(kStartMs + 150, 0)).status().code());
}

TEST(HybridClockUpdate, LogicalOverflowOnEqualWallTimesAdvancesWallTime) {
  ManualPhysicalClock physical(kStartMs);
  HybridClock clock(physical);
  (void)clock.Now();
  auto received = clock.Update(Ts(kStartMs, 0xFFFF));
  ASSERT_TRUE(received.ok());
  EXPECT_EQ(Ts(kStartMs + 1, 0), *received);
  EXPECT_GT(*received, Ts(kStartMs, 0xFFFF));
}

TEST(HybridClockUpdate, ReceiveIsAlwaysAfterTheSend) {
  ManualPhysicalClock sender_physical(kStartMs + 50);
  ManualPhysicalClock receiver_physical(kStartMs);
  HybridClock sender(sender_physical);
  HybridClock receiver(receiver_physical);
  for (int i = 0; i < 100; ++i) {
    const HybridTimestamp sent = sender.Now();
    auto received = receiver.Update(sent);
    ASSERT_TRUE(received.ok());
    ASSERT_GT(*received, sent);
    receiver_physical.AdvanceMs(1);
  }
}

TEST(HybridClock, LMinusPhysicalStaysWithinMaxOffsetWhenRemotesAreWithinBounds) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::mt19937_64 random(seed);
    constexpr uint64_t kMaxOffsetMs = 40;
    ManualPhysicalClock physical(kStartMs);
    HybridClock clock(physical, HybridClockOptions{.max_offset_ms = kMaxOffsetMs});
    for (int step = 0; step < 500; ++step) {
      physical.AdvanceMs(random() % 3);  // Never steps back here: the bound is relative to pt.
      const uint64_t pt = physical.NowMs();
      HybridTimestamp next;
      if (random() % 2 == 0) {
        next = clock.Now();
      } else {
        // Any remote the bound lets through, from far behind up to exactly pt + max offset.
        const uint64_t remote_ms = pt - 200 + random() % (200 + kMaxOffsetMs + 1);
        auto received = clock.Update(Ts(remote_ms, static_cast<uint16_t>(random() % 100)));
        ASSERT_TRUE(received.ok()) << received.status().ToString();
        next = *received;
      }
      ASSERT_GE(next.wall_time_ms(), pt) << "seed " << seed << " step " << step;
      ASSERT_LE(next.wall_time_ms() - pt, kMaxOffsetMs) << "seed " << seed << " step " << step;
    }
  }
}

TEST(HybridClock, StrictlyIncreasesOverRandomEventsWithASteppingClock) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    std::mt19937_64 random(seed);
    ManualPhysicalClock physical(kStartMs);
    HybridClock clock(physical, HybridClockOptions{.max_offset_ms = 50});
    HybridTimestamp previous = clock.Last();
    for (int step = 0; step < 500; ++step) {
      if (random() % 5 == 0) {
        physical.StepBackMs(random() % 100);
      } else {
        physical.AdvanceMs(random() % 20);
      }
      HybridTimestamp next;
      if (random() % 2 == 0) {
        next = clock.Now();
      } else {
        auto received = clock.Update(Ts(physical.NowMs() - 60 + random() % 120, 0));
        if (!received.ok()) {
          ASSERT_EQ(StatusCode::kOutOfRange, received.status().code());
          ASSERT_EQ(previous, clock.Last());
          continue;
        }
        next = *received;
      }
      ASSERT_GT(next, previous) << "seed " << seed << " step " << step;
      previous = next;
    }
  }
}

TEST(HybridClockDeathTest, PhysicalTimeBeyond48BitsIsAnInvariantFailure) {
  ManualPhysicalClock physical(HybridTimestamp::kMaxWallTimeMs + 1);
  HybridClock clock(physical);
  EXPECT_DEATH((void)clock.Now(), "fits in the 48-bit wall time");
}

}  // namespace
}  // namespace cairn
