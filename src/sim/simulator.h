// The deterministic cluster simulator: whole Cairn clusters in one thread on virtual time.
//
// Design note. The simulator is Cairn's main test. A run is a pure function of its options and
// seed: every random choice comes from one generator seeded by the seed, time is virtual, and
// nodes are the real consensus core (consensus::Replica) over the real write-ahead log and
// metadata store (wal::WriteAheadLog, MetadataStore) on a SimFileSystem per node. Faults are chosen
// per seed with random rates (swarm testing): message loss, delay, duplication and reordering;
// partitions (symmetric, one-way, minority/majority, a bridge node); crashes that lose everything
// not fsynced and may tear the last write, including in the middle of persisting a Ready; paused
// nodes; clock drift (each node ticks at its own rate); leadership transfers and membership
// changes (add a learner, promote it, remove a member, the leader included) under load.
//
// Checked after every step (an event and the Ready processing it causes): at most one leader per
// generation; log matching (the same index and generation imply the same entry and the same
// previous generation); leader completeness (a new leader holds every entry any node applied);
// state machine safety (no two nodes apply different entries at one index); per node, the commit
// and applied indexes never move back, the applied index never passes the commit index, and the
// persisted generation never goes back. In fault-free seeds, every request completes within a
// latency bound derived from the seed's network delay and write latency (a few round trips, never
// a heartbeat). Then a liveness phase: faults heal and within a stated bound a leader is elected
// and every node converges. Finally the clients' history (puts, gets and compare-and-sets on a few
// keys, sent to any node: followers forward writes to the leader as the server does; some
// outcomes unknown) is checked for linearizability. The parts: simulation.h.
//
// A broken CAIRN_CHECK inside the core also fails the seed (the simulator installs a check failure
// handler for the duration of a run). Not thread-safe; one run at a time per process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/planted_bugs.h"

namespace cairn::sim {

enum Fault : uint32_t {
  kFaultLoss = 1u << 0,       // Messages and client replies are lost.
  kFaultDelay = 1u << 1,      // Messages take a random time to arrive.
  kFaultDuplicate = 1u << 2,  // Messages arrive twice.
  kFaultReorder = 1u << 3,    // Messages on one link overtake each other.
  kFaultPartition = 1u << 4,  // Links are cut, symmetrically or one way.
  kFaultCrash = 1u << 5,      // Nodes crash (possibly mid-write) and restart from disk.
  kFaultPause = 1u << 6,      // Nodes stop for a while (a long GC pause).
  kFaultDrift = 1u << 7,      // Nodes' clocks tick at different rates.
  kFaultTransfer = 1u << 8,   // Leadership transfers under load.
  kFaultMembership = 1u << 9, // Members added (as learners, then promoted) and removed under load.
  kAllFaults = (1u << 10) - 1,
};

// "loss,delay,..." | "all" | "none" -> a fault set; nullopt for an unknown name.
std::optional<uint32_t> ParseFaults(std::string_view list);
std::string FaultNames(uint32_t faults);

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;  // 1 to 7.
  uint32_t faults = kAllFaults;
  consensus::PlantedBug bug = consensus::PlantedBug::kNone;
  int clients = 3;
  int keys = 3;
  int64_t fault_phase_ms = 6'000;     // Virtual time with faults and client load.
  int64_t liveness_bound_ms = 8'000;  // After healing, convergence must happen within this.
  bool trace = false;                 // Print every event (for replaying one seed).
};

struct SimStats {
  uint64_t events = 0;
  uint64_t messages_sent = 0;
  uint64_t entries_committed = 0;
  uint64_t operations = 0;
  uint64_t operations_unknown = 0;
  uint64_t operations_forwarded = 0;  // Writes a follower forwarded to the leader.
  int64_t latency_max_ms = 0;         // The slowest operation with a known outcome.
  int64_t latency_bound_ms = 0;       // Fault-free seeds: the bound every operation must meet.
  uint64_t leader_elections = 0;
  uint64_t crashes = 0;
  uint64_t linearizability_steps = 0;
  // A hash of every event in order (time, kind, node, client, message): equal for two runs of
  // the same options, bit for bit.
  uint64_t trace_hash = 0;
};

struct SimResult {
  bool passed = true;
  std::string failure;  // What broke, when it did not pass.
  SimStats stats;
};

SimResult RunSimulation(const SimOptions& options);

// How the simulator is meant to catch a planted bug: the seeds that can show it, and the checks
// whose failure is the intended catch (a failure of another kind proves nothing about them).
struct IntendedCatch {
  uint32_t faults = kAllFaults;
  std::vector<std::string_view> checks;  // Words of the failure message of each such check.
  bool Matches(std::string_view failure) const;
};
IntendedCatch IntendedCatchOf(consensus::PlantedBug bug);

// The exact command line that replays `options` (cairn-sim --seed ...).
std::string ReplayCommand(const SimOptions& options);

}  // namespace cairn::sim
