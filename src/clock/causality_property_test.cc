// Property test over random message-passing histories: the three clocks against the true
// happens-before relation, which is computed independently by graph reachability.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "clock/hybrid_clock.h"
#include "clock/lamport_clock.h"
#include "clock/version_vector.h"

namespace cairn {
namespace {

constexpr uint64_t kStartMs = 1'700'000'000'000;
constexpr int kSeeds = 20;
constexpr int kEventsPerHistory = 300;

struct Process {
  Process(NodeId node_id, uint64_t max_offset_ms)
      : id(node_id), hybrid(physical, HybridClockOptions{.max_offset_ms = max_offset_ms}) {}

  NodeId id;
  // Declared before `hybrid`, which keeps a reference to it.
  ManualPhysicalClock physical;
  LamportClock lamport;
  HybridClock hybrid;
  VersionVector versions;
  uint64_t offset_ms = 0;  // This process's clock error relative to the simulation's true time.
  std::optional<size_t> last_event;
};

struct Message {
  size_t to = 0;
  size_t send_event = 0;
  LamportTime lamport;
  HybridTimestamp hybrid;
  VersionVector versions;
};

struct Event {
  size_t process = 0;
  LamportTime lamport;
  HybridTimestamp hybrid;
  VersionVector versions;
};

// A row of bits per event: reach[i] has bit j set when event i happened before event j.
using Bits = std::vector<uint64_t>;
bool TestBit(const Bits& bits, size_t i) {
  return (bits[i / 64] >> (i % 64)) & 1;
}
void SetBit(Bits& bits, size_t i) {
  bits[i / 64] |= uint64_t{1} << (i % 64);
}

// Happens-before as the transitive closure of program order and send -> receive edges. Every edge
// goes from an earlier-recorded event to a later one, so one backward pass closes the relation.
std::vector<Bits> HappensBefore(const std::vector<std::vector<size_t>>& successors) {
  const size_t count = successors.size();
  std::vector<Bits> reach(count, Bits((count + 63) / 64, 0));
  for (size_t i = count; i-- > 0;) {
    for (size_t next : successors[i]) {
      EXPECT_GT(next, i) << "edges point forward in recording order";
      SetBit(reach[i], next);
      for (size_t word = 0; word < reach[i].size(); ++word) reach[i][word] |= reach[next][word];
    }
  }
  return reach;
}

TEST(CausalityProperty, ClocksAgreeWithHappensBeforeOverRandomHistories) {
  for (int seed = 0; seed < kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 random(static_cast<uint64_t>(seed));
    const size_t process_count = 3 + static_cast<size_t>(seed % 3);
    // Small offsets make many events share a millisecond, exercising the logical counters.
    const uint64_t max_offset_ms = std::vector<uint64_t>{2, 10, 100}[static_cast<size_t>(seed) % 3];

    std::vector<std::unique_ptr<Process>> processes;
    for (size_t p = 0; p < process_count; ++p) {
      processes.push_back(std::make_unique<Process>(NodeId(p + 1), max_offset_ms));
      processes.back()->offset_ms = random() % (max_offset_ms + 1);
    }

    // Every physical clock reads true time plus an offset in [0, max_offset_ms], and true time
    // never goes back. So any l ever handed out is at most (true time now + max offset) and every
    // receiver's physical clock is at least true time now: no remote is ever out of bounds.
    uint64_t true_ms = kStartMs;
    std::vector<Event> events;
    std::vector<std::vector<size_t>> successors;
    std::vector<Message> in_flight;
    int receives = 0;
    int clock_steps_back = 0;

    for (int step = 0; step < kEventsPerHistory; ++step) {
      true_ms += random() % 3;
      const size_t p = random() % process_count;
      Process& process = *processes[p];
      if (random() % 8 == 0) {
        // The clock drifts to a new offset; when the new one is smaller, it steps back.
        const uint64_t new_offset_ms = random() % (max_offset_ms + 1);
        if (new_offset_ms < process.offset_ms) ++clock_steps_back;
        process.offset_ms = new_offset_ms;
      }
      process.physical.SetMs(true_ms + process.offset_ms);

      // Messages to this process that are still in flight; one of them may be received.
      std::vector<size_t> deliverable;
      for (size_t m = 0; m < in_flight.size(); ++m) {
        if (in_flight[m].to == p) deliverable.push_back(m);
      }
      const uint64_t action = random() % 3;

      const size_t event_index = events.size();
      successors.emplace_back();
      if (process.last_event) successors[*process.last_event].push_back(event_index);
      process.last_event = event_index;

      Event event;
      event.process = p;
      if (action == 2 && !deliverable.empty()) {
        const size_t m = deliverable[random() % deliverable.size()];
        const Message message = in_flight[m];
        in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(m));
        successors[message.send_event].push_back(event_index);
        event.lamport = process.lamport.Observe(message.lamport);
        auto received = process.hybrid.Update(message.hybrid);
        ASSERT_TRUE(received.ok()) << received.status().ToString();
        event.hybrid = *received;
        process.versions.Merge(message.versions);
        process.versions.Increment(process.id);
        ++receives;
      } else {
        // A local event or a send; both tick every clock once.
        event.lamport = process.lamport.Tick();
        event.hybrid = process.hybrid.Now();
        process.versions.Increment(process.id);
        if (action == 1) {
          size_t to = random() % (process_count - 1);
          if (to >= p) ++to;  // Any other process.
          in_flight.push_back(Message{.to = to,
                                      .send_event = event_index,
                                      .lamport = event.lamport,
                                      .hybrid = event.hybrid,
                                      .versions = process.versions});
        }
      }
      event.versions = process.versions;
      events.push_back(std::move(event));
    }
    // The history is only interesting if it has both messages and a stepping clock.
    ASSERT_GT(receives, 10);
    if (max_offset_ms >= 10) {
      ASSERT_GT(clock_steps_back, 0);
    }

    const std::vector<Bits> reach = HappensBefore(successors);
    int ordered_pairs = 0;
    int concurrent_pairs = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(CausalOrder::kEqual, Compare(events[i].versions, events[i].versions));
      for (size_t j = 0; j < events.size(); ++j) {
        if (i == j) continue;
        const Event& a = events[i];
        const Event& b = events[j];
        const bool a_before_b = TestBit(reach[i], j);
        const bool b_before_a = TestBit(reach[j], i);
        ASSERT_FALSE(a_before_b && b_before_a) << "happens-before is acyclic";
        const CausalOrder order = Compare(a.versions, b.versions);
        if (a_before_b) {
          ++ordered_pairs;
          // Plain ifs first: this runs for every pair, and gtest assertions are slow under ASan.
          if (!(a.lamport < b.lamport) || !(a.hybrid < b.hybrid) || order != CausalOrder::kBefore) {
            FAIL() << "event " << i << " happened before event " << j << " but Lamport "
                   << a.lamport.value() << " vs " << b.lamport.value() << ", hybrid " << a.hybrid
                   << " vs " << b.hybrid << ", version vectors " << a.versions.ToString() << " vs "
                   << b.versions.ToString() << " compare " << order;
          }
        } else if (!b_before_a) {
          ++concurrent_pairs;
          if (order != CausalOrder::kConcurrent) {
            FAIL() << "events " << i << " and " << j << " are concurrent but their version "
                   << "vectors " << a.versions.ToString() << " and " << b.versions.ToString()
                   << " compare " << order;
          }
        }
      }
    }
    // Both kinds of pair occur, so neither half of the property holds vacuously.
    EXPECT_GT(ordered_pairs, 0);
    EXPECT_GT(concurrent_pairs, 0);
  }
}

}  // namespace
}  // namespace cairn
