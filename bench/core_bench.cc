// cairn-bench-core: the consensus core's own cost, and the simulator's speed.
//
//   entries_per_cpu_second   a 3-replica cluster of the pure core (no disk, no network: Readys
//                            are carried out in memory) commits and applies 256-byte entries,
//                            proposed in batches; CPU time of the whole process
//   sim_seeds_per_second     cairn-sim seeds (all faults, mixed cluster sizes) per wall second
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>

#include "consensus/replica.h"
#include "sim/simulator.h"

namespace {

using cairn::LogIndex;
using cairn::NodeId;
using namespace cairn::consensus;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct CoreResult {
  uint64_t entries = 0;
  double cpu_seconds = 0;
};

CoreResult MeasureCore(uint64_t entries_target, uint64_t batch) {
  std::map<NodeId, std::unique_ptr<Replica>> replicas;
  std::set<NodeId> voters = {NodeId(1), NodeId(2), NodeId(3)};
  for (NodeId id : voters) {
    replicas[id] = std::make_unique<Replica>(
        ReplicaOptions{.id = id, .voters = voters, .random_seed = id.value()}, RecoveredState{});
  }
  std::deque<Message> network;
  uint64_t applied_on_all = 0;
  std::map<NodeId, uint64_t> applied;
  auto process = [&](NodeId id) {
    Replica& replica = *replicas[id];
    while (replica.HasReady()) {
      Ready ready = replica.TakeReady();
      for (Message& message : ready.messages) network.push_back(std::move(message));
      applied[id] += ready.committed.size();
      replica.Advance();
    }
  };
  auto deliver = [&] {
    while (!network.empty()) {
      Message message = std::move(network.front());
      network.pop_front();
      replicas[message.to]->Step(message);
      process(message.to);
    }
  };
  for (int i = 0; i < 100 && replicas[NodeId(1)]->role() != Role::kLeader; ++i) {
    replicas[NodeId(1)]->Tick();
    process(NodeId(1));
    deliver();
  }
  const std::string payload(256, 'p');
  const double cpu_start = CpuSeconds();
  uint64_t proposed = 0;
  while (applied_on_all < entries_target) {
    for (uint64_t i = 0; i < batch && proposed < entries_target; ++i, ++proposed) {
      if (!replicas[NodeId(1)]->Propose(payload).ok()) break;
    }
    process(NodeId(1));
    deliver();
    replicas[NodeId(1)]->Tick();  // Heartbeats carry the commit index to the followers.
    process(NodeId(1));
    deliver();
    applied_on_all = std::min({applied[NodeId(1)], applied[NodeId(2)], applied[NodeId(3)]});
  }
  return CoreResult{applied_on_all, CpuSeconds() - cpu_start};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The consensus core's own cost and the simulator's speed"};
  uint64_t entries = 200'000;
  uint64_t batch = 64;
  uint64_t seeds = 200;
  bool json = false;
  app.add_option("--entries", entries, "Entries the core commits")->capture_default_str();
  app.add_option("--batch", batch, "Proposals per round")->capture_default_str();
  app.add_option("--seeds", seeds, "Simulator seeds to time")->capture_default_str();
  app.add_flag("--json", json, "Print one JSON object");
  CLI11_PARSE(app, argc, argv);

  const CoreResult core = MeasureCore(entries, batch);
  const double entries_per_cpu_second = core.entries / core.cpu_seconds;

  const auto wall_start = std::chrono::steady_clock::now();
  uint64_t failed = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    cairn::sim::SimOptions options;
    options.seed = seed;
    constexpr int kSizes[] = {3, 5, 3, 7, 5, 1, 3, 5};
    options.nodes = kSizes[seed % 8];
    failed += cairn::sim::RunSimulation(options).passed ? 0 : 1;
  }
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const double seeds_per_second = seeds / wall_seconds;

  if (json) {
    fmt::print("{{\"entries_per_cpu_second\": {:.0f}, \"core_entries\": {}, \"batch\": {}, "
               "\"sim_seeds_per_second\": {:.1f}, \"sim_seeds\": {}, \"sim_failed\": {}}}\n",
               entries_per_cpu_second, core.entries, batch, seeds_per_second, seeds, failed);
  } else {
    fmt::print("| measurement | value |\n|---|---:|\n");
    fmt::print("| core: entries committed per CPU-second (3 replicas, batch {}) | {:.0f} |\n",
               batch, entries_per_cpu_second);
    fmt::print("| simulator: seeds per second (all faults, {} seeds, {} failed) | {:.1f} |\n",
               seeds, failed, seeds_per_second);
  }
  return failed == 0 ? 0 : 1;
}
