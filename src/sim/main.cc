// cairn-sim: runs the deterministic cluster simulator over many seeds.
//
//   cairn-sim --seeds 1000                     seeds 1..1000, cluster sizes mixed
//   cairn-sim --seed 4711 --nodes 5 --trace    replay one seed, printing every event
//   cairn-sim --list-bugs / --bug NAME         planted bugs the checkers must catch
//   cairn-sim --bug-table                      each bug over --seeds seeds (default 1000): the
//                                              table in docs/simulator.md
//   cairn-sim --seeds 0                        run without end (make soak)
//
// Prints one line per failing seed with the command that replays it, then "N passed, M failed";
// exits non-zero when any seed failed.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>

#include "sim/simulator.h"

namespace {

// Cluster sizes used when --nodes is not given: mostly 3 and 5, some 1 and 7.
int MixedClusterSize(uint64_t seed) {
  constexpr int kSizes[] = {3, 5, 3, 7, 5, 1, 3, 5};
  return kSizes[seed % 8];
}

// One markdown row per planted bug: over `seeds` seeds (mixed cluster sizes, the faults that can
// show the bug), how many fail, the first that fails, and how many fail by the intended check.
void PrintBugTable(uint64_t seeds) {
  fmt::print("| bug | layer | faults | first failing seed | seeds failing of {} | of them by the "
             "intended check | intended check |\n|---|---|---|--:|--:|--:|---|\n",
             seeds);
  for (const auto& info : cairn::consensus::AllPlantedBugs()) {
    const cairn::sim::IntendedCatch intended = cairn::sim::IntendedCatchOf(info.bug);
    uint64_t failed = 0, by_intended = 0, first = 0;
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
      cairn::sim::SimOptions options;
      options.seed = seed;
      options.nodes = MixedClusterSize(seed);
      options.faults = intended.faults;
      options.bug = info.bug;
      const cairn::sim::SimResult result = cairn::sim::RunSimulation(options);
      if (result.passed) continue;
      ++failed;
      if (first == 0) first = seed;
      if (intended.Matches(result.failure)) ++by_intended;
    }
    std::string checks;
    for (std::string_view check : intended.checks) {
      checks += fmt::format("{}\"{}\"", checks.empty() ? "" : " or ", check);
    }
    fmt::print("| {} | {} | {} | {} | {} | {} | {} |\n", info.name, info.layer,
               cairn::sim::FaultNames(intended.faults), first == 0 ? std::string("–")
                                                                  : std::to_string(first),
               failed, by_intended, checks);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cairn's deterministic cluster simulator"};
  uint64_t seeds = 1;
  uint64_t seed_start = 1;
  std::optional<uint64_t> seed;
  int nodes = 0;
  std::string faults = "all";
  std::string bug_name;
  bool list_bugs = false;
  bool bug_table = false;
  bool trace = false;
  bool quiet = false;
  cairn::sim::SimOptions defaults;
  int64_t fault_phase_ms = defaults.fault_phase_ms;
  int64_t liveness_bound_ms = defaults.liveness_bound_ms;
  int clients = defaults.clients;
  int keys = defaults.keys;
  app.add_option("--seeds", seeds, "How many seeds to run (0: without end)")->capture_default_str();
  app.add_option("--seed-start", seed_start, "The first seed")->capture_default_str();
  app.add_option("--seed", seed, "Run exactly this seed");
  app.add_option("--nodes", nodes, "Cluster size, 1 to 7 (default: mixed by seed)")
      ->check(CLI::Range(0, 7));
  app.add_option("--faults", faults,
                 "Faults: all, none, or a list of loss,delay,duplicate,reorder,partition,crash,"
                 "pause,drift,transfer,membership; fault-free seeds (none) also bound every "
                 "request's latency")
      ->capture_default_str();
  app.add_option("--bug", bug_name, "Turn on a planted bug (see --list-bugs)");
  app.add_flag("--list-bugs", list_bugs, "List the planted bugs (NAME LAYER description) and exit");
  app.add_flag("--bug-table", bug_table,
               "Run every planted bug over --seeds seeds (default 1000) and print the markdown "
               "table of docs/simulator.md");
  app.add_flag("--trace", trace, "Print every event of the run");
  app.add_flag("--quiet", quiet, "Print only failures and the closing line");
  app.add_option("--fault-phase-ms", fault_phase_ms, "Virtual time under faults and load")
      ->capture_default_str();
  app.add_option("--liveness-ms", liveness_bound_ms,
                 "Bound on convergence after the faults heal (virtual ms)")
      ->capture_default_str();
  app.add_option("--clients", clients, "Concurrent clients")->capture_default_str();
  app.add_option("--keys", keys, "Keys the clients use")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (list_bugs) {
    for (const auto& info : cairn::consensus::AllPlantedBugs()) {
      fmt::print("{:<34} {:<10} {}\n", info.name, info.layer, info.description);
    }
    return EXIT_SUCCESS;
  }
  if (bug_table) {
    PrintBugTable(app.count("--seeds") != 0 ? seeds : 1000);
    return EXIT_SUCCESS;
  }
  const std::optional<uint32_t> fault_set = cairn::sim::ParseFaults(faults);
  if (!fault_set) {
    fmt::print(stderr, "cairn-sim: unknown fault in '{}'\n", faults);
    return 2;
  }
  cairn::consensus::PlantedBug bug = cairn::consensus::PlantedBug::kNone;
  if (!bug_name.empty()) {
    auto found = cairn::consensus::PlantedBugByName(bug_name);
    if (!found) {
      fmt::print(stderr, "cairn-sim: unknown bug '{}' (see --list-bugs)\n", bug_name);
      return 2;
    }
    bug = *found;
  }
  if (seed) {
    seed_start = *seed;
    seeds = 1;
  }

  uint64_t passed = 0;
  uint64_t failed = 0;
  const auto started = std::chrono::steady_clock::now();
  for (uint64_t n = 0; seeds == 0 || n < seeds; ++n) {
    cairn::sim::SimOptions options;
    options.seed = seed_start + n;
    options.nodes = nodes != 0 ? nodes : MixedClusterSize(options.seed);
    options.faults = *fault_set;
    options.bug = bug;
    options.trace = trace;
    options.fault_phase_ms = fault_phase_ms;
    options.liveness_bound_ms = liveness_bound_ms;
    options.clients = clients;
    options.keys = keys;
    const cairn::sim::SimResult result = cairn::sim::RunSimulation(options);
    if (result.passed) {
      ++passed;
      if (!quiet && (seeds == 1 || trace)) {
        fmt::print("seed {} passed: {} events, {} entries committed, {} operations ({} unknown), "
                   "{} elections, {} crashes\n",
                   options.seed, result.stats.events, result.stats.entries_committed,
                   result.stats.operations, result.stats.operations_unknown,
                   result.stats.leader_elections, result.stats.crashes);
        fmt::print("  {} writes forwarded by followers; slowest operation {} ms", 
                   result.stats.operations_forwarded, result.stats.latency_max_ms);
        if (result.stats.latency_bound_ms > 0) {
          fmt::print(" (bound {} ms)", result.stats.latency_bound_ms);
        }
        fmt::print("\n");
      }
    } else {
      ++failed;
      fmt::print("seed {} FAILED: {}\n  replay: {}\n", options.seed, result.failure,
                 cairn::sim::ReplayCommand(options));
      std::fflush(stdout);
    }
    if (seeds == 0 && (n + 1) % 1000 == 0) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      fmt::print("soak: {} seeds, {} failed, {:.0f} seeds/s\n", n + 1, failed, (n + 1) / seconds);
      std::fflush(stdout);
    }
  }
  fmt::print("{} passed, {} failed\n", passed, failed);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
