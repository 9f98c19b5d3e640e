#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string_view>
#include <vector>

namespace cairn::sim {
namespace {

TEST(Simulator, SameSeedSameRun) {
  SimOptions options;
  options.seed = 42;
  const SimResult first = RunSimulation(options);
  const SimResult second = RunSimulation(options);
  EXPECT_EQ(first.passed, second.passed);
  EXPECT_EQ(first.stats.events, second.stats.events);
  EXPECT_EQ(first.stats.messages_sent, second.stats.messages_sent);
  EXPECT_EQ(first.stats.entries_committed, second.stats.entries_committed);
  EXPECT_EQ(first.stats.operations, second.stats.operations);
  EXPECT_EQ(first.stats.trace_hash, second.stats.trace_hash) << "bit for bit the same run";
  options.seed = 43;
  EXPECT_NE(first.stats.trace_hash, RunSimulation(options).stats.trace_hash);
}

TEST(Simulator, FaultFreeRunMakesProgress) {
  SimOptions options;
  options.seed = 1;
  options.faults = 0;
  const SimResult result = RunSimulation(options);
  ASSERT_TRUE(result.passed) << result.failure << "\n" << ReplayCommand(options);
  EXPECT_GT(result.stats.entries_committed, 100u);
  EXPECT_GT(result.stats.operations, 100u);
  EXPECT_EQ(0u, result.stats.operations_unknown);
  EXPECT_GT(result.stats.operations_forwarded, 10u) << "clients write through followers too";
  EXPECT_GT(result.stats.latency_bound_ms, 0) << "fault-free seeds bound every request";
  EXPECT_LE(result.stats.latency_max_ms, result.stats.latency_bound_ms);
}

// Issue 20: without faults, every request (writes through the leader or forwarded by a
// follower, linearizable reads on either) completes within a few round trips and writes,
// never waiting for a heartbeat. Hundreds of seeds across cluster sizes and drawn timings.
TEST(Simulator, FaultFreeSeedsMeetTheLatencyBound) {
  constexpr uint64_t kSeeds = 300;
  uint64_t forwarded = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SimOptions options;
    options.seed = 5000 + seed;
    options.nodes = 1 + 2 * static_cast<int>(seed % 3);  // 1, 3 and 5 members.
    options.faults = 0;
    const SimResult result = RunSimulation(options);
    ASSERT_TRUE(result.passed) << result.failure << "\n  replay: " << ReplayCommand(options);
    forwarded += result.stats.operations_forwarded;
  }
  EXPECT_GT(forwarded, kSeeds * 10);
}

TEST(Simulator, ParsesFaultLists) {
  EXPECT_EQ(kAllFaults, ParseFaults("all"));
  EXPECT_EQ(0u, ParseFaults("none"));
  EXPECT_EQ(kFaultLoss | kFaultCrash, ParseFaults("loss,crash"));
  EXPECT_FALSE(ParseFaults("loss,meteor").has_value());
  EXPECT_EQ("loss,crash", FaultNames(kFaultLoss | kFaultCrash));
}

TEST(Simulator, ReplayCommandNamesEverything) {
  SimOptions options;
  options.seed = 9;
  options.nodes = 5;
  options.faults = kFaultLoss;
  options.bug = consensus::PlantedBug::kDoubleVote;
  EXPECT_EQ("build/bin/cairn-sim --seed 9 --nodes 5 --faults loss --bug double-vote --trace",
            ReplayCommand(options));
}

}  // namespace
}  // namespace cairn::sim

namespace cairn::consensus {
// Readable test names in gtest output.
void PrintTo(PlantedBug bug, std::ostream* out) { *out << PlantedBugName(bug); }
}  // namespace cairn::consensus

namespace cairn::sim {
namespace {

// Thousands of seeds with every fault on, across cluster sizes (make test runs 4 x 500).
class SimulatorSeeds : public ::testing::TestWithParam<int> {};

TEST_P(SimulatorSeeds, AllFaultsManySeedsPass) {
  constexpr uint64_t kSeeds = 500;
  uint64_t failed = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.nodes = GetParam();
    const SimResult result = RunSimulation(options);
    if (!result.passed) {
      ++failed;
      ADD_FAILURE() << "seed " << seed << ": " << result.failure << "\n  replay: "
                    << ReplayCommand(options);
      if (failed >= 3) break;  // The first few are enough to start debugging.
    }
  }
  EXPECT_EQ(0u, failed);
}

INSTANTIATE_TEST_SUITE_P(ClusterSizes, SimulatorSeeds, ::testing::Values(1, 3, 5, 7),
                         [](const ::testing::TestParamInfo<int>& param_info) {
                           return std::to_string(param_info.param) + "Nodes";
                         });

// A checker that cannot fail proves nothing: every planted bug must make some seed fail, by the
// check meant for it (a failure of another kind, or a seed that fails without the bug too,
// proves nothing about that check).
class PlantedBugIsCaught : public ::testing::TestWithParam<consensus::PlantedBug> {};

TEST_P(PlantedBugIsCaught, WithinAThousandSeedsByItsCheck) {
  constexpr uint64_t kSeedsMax = 1000;
  const IntendedCatch expected = IntendedCatchOf(GetParam());
  ASSERT_FALSE(expected.checks.empty()) << "every planted bug names the check that catches it";
  for (uint64_t seed = 1; seed <= kSeedsMax; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.nodes = seed % 2 == 0 ? 3 : 5;
    options.faults = expected.faults;
    options.bug = GetParam();
    const SimResult result = RunSimulation(options);
    if (result.passed || !expected.Matches(result.failure)) continue;
    options.bug = consensus::PlantedBug::kNone;
    const SimResult clean = RunSimulation(options);
    EXPECT_TRUE(clean.passed) << "seed " << seed << " fails without the bug too: "
                              << clean.failure;
    SUCCEED() << "caught at seed " << seed << ": " << result.failure;
    return;
  }
  ADD_FAILURE() << "planted bug " << consensus::PlantedBugName(GetParam()) << " survived "
                << kSeedsMax << " seeds (or failed them by other checks only)";
}

std::vector<consensus::PlantedBug> AllBugs() {
  std::vector<consensus::PlantedBug> bugs;
  for (const auto& info : consensus::AllPlantedBugs()) bugs.push_back(info.bug);
  return bugs;
}

INSTANTIATE_TEST_SUITE_P(Bugs, PlantedBugIsCaught, ::testing::ValuesIn(AllBugs()),
                         [](const ::testing::TestParamInfo<consensus::PlantedBug>& param_info) {
                           std::string name(consensus::PlantedBugName(param_info.param));
                           std::erase(name, '-');
                           return name;
                         });

}  // namespace
}  // namespace cairn::sim
