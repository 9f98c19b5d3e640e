#include "sim/simulator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "base/check.h"
#include "base/coding.h"
#include "sim/simulation.h"
#include "wal/write_ahead_log.h"

namespace cairn::sim {
namespace {

constexpr struct {
  Fault fault;
  std::string_view name;
} kFaultNames[] = {
    {kFaultLoss, "loss"},           {kFaultDelay, "delay"},   {kFaultDuplicate, "duplicate"},
    {kFaultReorder, "reorder"},     {kFaultPartition, "partition"}, {kFaultCrash, "crash"},
    {kFaultPause, "pause"},         {kFaultDrift, "drift"},   {kFaultTransfer, "transfer"},
    {kFaultMembership, "membership"},
};

// Thrown by the check failure handler: a broken invariant inside the core fails the seed.
struct InvariantBroken : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void ThrowOnCheckFailure(const std::string& message) { throw InvariantBroken(message); }

}  // namespace

namespace internal {

void Simulation::StartNode(Node& node) {
  auto storage = member::MemberStorage::Open(
      *node.fs, "/node",
      {.wal = {.segment_bytes_target = segment_bytes_,
               .first_index_of_new_log = LogIndex(1),
               .preallocation = preallocation_},
       .snapshots = {.retained_snapshots = 2},
       .low_water_mark = {.retained_entries = 5}});
  if (!storage.ok()) {
    return Fail(fmt::format("node {} storage did not open after a crash: {}", node.number,
                            storage.status().ToString()));
  }
  node.storage = std::move(storage).value();
  consensus::RecoveredState recovered = node.storage->TakeRecoveredState();
  node.state_machine = KvStateMachine();
  if (recovered.snapshot_index != LogIndex(0)) {
    auto restored = KvStateMachine::Restore(recovered.snapshot_data);
    if (!restored.ok()) {
      return Fail(fmt::format("node {} snapshot data does not decode: {}", node.number,
                              restored.status().ToString()));
    }
    node.state_machine = std::move(restored).value();
  }
  const LogIndex snapshot_index = recovered.snapshot_index;
  if (recovered.hard_state.generation < node.highest_generation) {
    return Fail(fmt::format("node {} restarted in generation {} after reaching {}: the "
                            "generation went back",
                            node.number, recovered.hard_state.generation, node.highest_generation));
  }
  consensus::ReplicaOptions replica_options{
      .id = node.id,
      .voters = initial_voters_,
      .heartbeat_interval_ticks = heartbeat_interval_ticks_,
      .election_timeout_ticks = 10 * heartbeat_interval_ticks_,
      .append_entries_max = append_entries_max_,
      .appends_in_flight_max = appends_in_flight_max_,
      .snapshot_chunk_bytes = snapshot_chunk_bytes_,
      .random_seed = random_(),
      .log_durability_reported = async_durability_,
      .planted_bug = options_.bug,
  };
  node.replica = std::make_unique<Replica>(replica_options, std::move(recovered));
  node.up = true;
  node.paused_until_ms = 0;
  node.snapshot_index = snapshot_index;
  node.last_commit = snapshot_index;
  node.last_applied = snapshot_index;
  node.was_leader = false;
  ++node.tick_epoch;
  Schedule(now_ms_ + 1 + static_cast<int64_t>(Random(node.tick_period_ms)),
           Event{.type = Event::Type::kTick, .node = node.number, .epoch = node.tick_epoch});
}

void Simulation::CrashNode(Node& node, std::string_view why) {
  if (!node.up) return;
  Trace("node {} crashes ({})", node.number, why);
  ++stats_.crashes;
  node.up = false;
  node.replica.reset();
  node.storage.reset();
  node.pending_writes.clear();  // Their clients time out: outcome unknown.
  node.pending_reads.clear();
  node.pending_forwards.clear();
}

void Simulation::RestartNode(Node& node) {
  constexpr TearMode kTears[] = {TearMode::kNone, TearMode::kSectorPrefix, TearMode::kAnyByte,
                                 TearMode::kZeroFill};
  const TearMode tear = kTears[Random(4)];
  Trace("node {} restarts (tear mode {})", node.number, static_cast<int>(tear));
  node.fs->Crash(tear);
  StartNode(node);
}

void Simulation::Process(Node& node) {
  while (failure_.empty() && node.up && node.replica->HasReady()) {
    Ready ready = node.replica->TakeReady();
    // With async durability, a leader's appends leave before its own write, as in the server.
    const bool send_first =
        options_.bug == PlantedBug::kVoteBeforePersist ||
        (async_durability_ && node.replica->role() == consensus::Role::kLeader &&
         !ready.hard_state && !ready.snapshot);
    if (send_first) SendMessages(ready.messages);
    if (!Persist(node, ready)) {
      CrashNode(node, "its disk failed mid-write");
      return;
    }
    CheckPersisted(node, ready.entries);
    if (async_durability_ && (!ready.entries.empty() || ready.snapshot)) {
      // The write is durable now; the core hears so a little later (a crash in between drops
      // the report: the restarted node knows its recovered log is durable).
      Event report{.type = Event::Type::kDurable, .node = node.number, .epoch = node.tick_epoch};
      report.message.log_index =
          ready.entries.empty() ? ready.snapshot->index : ready.entries.back().index;
      report.message.log_generation =
          ready.entries.empty() ? ready.snapshot->generation : ready.entries.back().generation;
      Schedule(now_ms_ + 1 + static_cast<int64_t>(Random(durability_delay_max_ms_)),
               std::move(report));
    }
    if (!send_first) SendMessages(ready.messages);
    Apply(node, ready.committed);
    ServeReads(node, ready.reads);
    node.replica->Advance();
    CheckNode(node);
    if (failure_.empty() && node.up) MaybeTakeSnapshot(node);
  }
}

void Simulation::MaybeTakeSnapshot(Node& node) {
  // Entries a compaction dropped are freed a few per turn, as the server does, so the core's
  // log works with compacted entries still held.
  constexpr size_t kCompactedEntriesFreedPerTurn = 4;
  node.replica->FreeCompactedEntries(kCompactedEntriesFreedPerTurn);
  if (snapshot_every_entries_ == 0 ||
      node.last_applied.value() < node.snapshot_index.value() + snapshot_every_entries_) {
    return;
  }
  const LogIndex index = node.last_applied;
  const std::optional<Generation> generation = node.replica->log().GenerationAt(index);
  if (!generation) return;
  std::string data = node.state_machine.Serialize();
  // Durable (and the log behind it released) before the core forgets the entries.
  if (!node.storage->SaveSnapshot(index, *generation, node.replica->MembershipAt(index), data)
           .ok()) {
    return CrashNode(node, "its disk failed while saving a snapshot");
  }
  node.snapshot_index = index;
  CAIRN_CHECK(node.replica->CompactLog(index, std::move(data)).ok(),
              "compaction at the applied index is accepted");
  Trace("node {} snapshots at {}", node.number, index);
}

bool Simulation::Persist(Node& node, const Ready& ready) {
  if (!node.storage->Persist(ready).ok()) return false;
  if (ready.hard_state) {
    node.highest_generation = std::max(node.highest_generation, ready.hard_state->generation);
  }
  if (ready.snapshot) {
    auto restored = KvStateMachine::Restore(ready.snapshot->data);
    if (!restored.ok()) {
      Fail("a received snapshot does not decode: " + restored.status().ToString());
      return false;
    }
    node.state_machine = std::move(restored).value();
    node.last_applied = ready.snapshot->index;
    node.snapshot_index = ready.snapshot->index;
    Trace("node {} installs a snapshot at {}", node.number, ready.snapshot->index);
  }
  return true;
}

std::optional<int64_t> Simulation::ArrivalTime(int from, int to, int* copies) {
  if (!Linked(from, to) || (faults_on_ && Chance(loss_rate_))) return std::nullopt;
  if (copies != nullptr) *copies = faults_on_ && Chance(duplicate_rate_) ? 2 : 1;
  int64_t at = now_ms_ + delay_min_ms_ + static_cast<int64_t>(Random(delay_max_ms_ - delay_min_ms_ + 1));
  if (!reorder_ || !faults_on_) {
    int64_t& link_clock = link_clock_[{from, to}];
    at = std::max(at, link_clock);
    link_clock = at;
  }
  return at;
}

void Simulation::SendMessages(const std::vector<Message>& messages) {
  for (const Message& message : messages) {
    ++stats_.messages_sent;
    const int from = static_cast<int>(message.from.value());
    const int to = static_cast<int>(message.to.value());
    int copies = 1;
    std::optional<int64_t> at = ArrivalTime(from, to, &copies);
    if (!at) continue;
    Schedule(*at, Event{.type = Event::Type::kDeliver, .node = to, .message = message});
    for (int copy = 1; copy < copies; ++copy) {
      // A duplicate travels on its own (it may overtake the first copy when links reorder).
      std::optional<int64_t> again = ArrivalTime(from, to, nullptr);
      if (again) Schedule(*again, Event{.type = Event::Type::kDeliver, .node = to, .message = message});
    }
  }
}

void Simulation::Apply(Node& node, const std::vector<wal::Entry>& committed) {
  for (const wal::Entry& entry : committed) {
    if (entry.index != node.last_applied.next()) {
      return Fail(fmt::format("node {} applied index {} after {}: applies skip or repeat",
                              node.number, entry.index, node.last_applied));
    }
    node.last_applied = entry.index;
    EntryIdentity identity{entry.generation.value(), entry.payload};
    auto [slot, inserted] = applied_.emplace(entry.index.value(), identity);
    if (!inserted && slot->second != identity) {
      return Fail(fmt::format("state machine safety: node {} applied a different entry at index "
                              "{} than another node did",
                              node.number, entry.index));
    }
    if (inserted) ++stats_.entries_committed;
    bool succeeded = false;
    uint64_t operation_id = 0;
    if (entry.type == static_cast<uint8_t>(consensus::EntryType::kCommand)) {
      auto command = DecodeKvCommand(entry.payload);
      if (!command.ok()) return Fail("undecodable command applied: " + command.status().ToString());
      succeeded = node.state_machine.Apply(*command);
      operation_id = command->operation_id;
      FinishForwardedWrite(node, operation_id, succeeded);
    }
    auto pending = node.pending_writes.find(entry.index.value());
    if (pending == node.pending_writes.end()) continue;
    Client& client = clients_.at(pending->second.client - 1);
    if (client.busy && client.operation_id == pending->second.operation_id) {
      if (operation_id == pending->second.operation_id) {
        history_[client.history_slot].succeeded = succeeded;
        FinishOperation(client, /*known=*/!Chance(reply_loss_rate_));
      } else {
        FinishOperation(client, /*known=*/false);  // Replaced by another leader's entry.
      }
    }
    node.pending_writes.erase(pending);
  }
}

void Simulation::ServeReads(Node& node, const std::vector<consensus::ReadState>& reads) {
  for (const consensus::ReadState& read : reads) {
    auto pending = node.pending_reads.find(read.read_id);
    if (pending == node.pending_reads.end()) continue;
    Client& client = clients_.at(pending->second - 1);
    node.pending_reads.erase(pending);
    if (!client.busy || !client.is_read || client.read_id != read.read_id) continue;
    if (!read.status.ok()) {
      discarded_[client.history_slot] = true;  // A failed read had no effect.
      FinishOperation(client, /*known=*/false);
      continue;
    }
    if (read.index > node.last_applied) {
      return Fail(fmt::format("node {} served a read at index {} before applying it (applied {})",
                              node.number, read.index, node.last_applied));
    }
    history_[client.history_slot].read_value =
        node.state_machine.Get(history_[client.history_slot].key);
    FinishOperation(client, /*known=*/true);
  }
}

void Simulation::HandleTick(const Event& event) {
  Node& node = nodes_.at(event.node - 1);
  if (event.epoch != node.tick_epoch || !node.up) return;
  Schedule(now_ms_ + node.tick_period_ms,
           Event{.type = Event::Type::kTick, .node = node.number, .epoch = node.tick_epoch});
  if (node.paused_until_ms > now_ms_) return;
  node.replica->Tick();
  Process(node);
}

void Simulation::HandleDurable(const Event& event) {
  Node& node = nodes_.at(event.node - 1);
  if (event.epoch != node.tick_epoch || !node.up) return;
  if (node.paused_until_ms > now_ms_) {
    Schedule(node.paused_until_ms, event);
    return;
  }
  node.replica->LogDurable(event.message.log_index, event.message.log_generation);
  Process(node);
}

void Simulation::HandleDeliver(const Event& event) {
  Node& node = nodes_.at(event.node - 1);
  if (!node.up) return;
  if (node.paused_until_ms > now_ms_) {
    // A paused process reads its socket when it wakes up.
    Schedule(node.paused_until_ms, event);
    return;
  }
  node.replica->Step(event.message);
  Process(node);
}

void Simulation::HandleEvent(const Event& event) {
  switch (event.type) {
    case Event::Type::kTick: return HandleTick(event);
    case Event::Type::kDeliver: return HandleDeliver(event);
    case Event::Type::kClientStart: return HandleClientStart(event.client);
    case Event::Type::kClientTimeout: return HandleClientTimeout(event.client, event.operation_id);
    case Event::Type::kFault: return HandleFault();
    case Event::Type::kDurable: return HandleDurable(event);
    case Event::Type::kForward: return HandleForward(event);
    case Event::Type::kForwardRejected: return HandleForwardRejected(event);
  }
}

SimResult Simulation::Run() {
  CAIRN_CHECK(options_.nodes >= 1 && options_.nodes <= 7, "a simulated cluster has 1 to 7 nodes");
  CAIRN_CHECK(options_.clients >= 1 && options_.keys >= 1, "there are clients and keys");
  SetCheckFailureHandler(&ThrowOnCheckFailure);
  try {
    nodes_.resize(options_.nodes);
    for (int n = 1; n <= options_.nodes; ++n) {
      Node& node = nodes_[n - 1];
      node.number = n;
      node.id = NodeId(n);
      node.fs = std::make_unique<SimFileSystem>(random_());
      CAIRN_CHECK(node.fs->CreateDirectory("/node").ok(), "the simulated disk has /node");
    }
    ChooseFaultRates();
    // With membership changes on, some nodes may start outside the cluster, to be added later.
    int spares = 0;
    if (options_.faults & kFaultMembership) {
      spares = static_cast<int>(Random(std::min(3, options_.nodes)));
    }
    for (int n = 1; n <= options_.nodes - spares; ++n) initial_voters_.insert(NodeId(n));
    for (Node& node : nodes_) StartNode(node);
    clients_.resize(options_.clients);
    for (int c = 1; c <= options_.clients; ++c) {
      clients_[c - 1].number = c;
      ScheduleClient(clients_[c - 1], 1 + static_cast<int64_t>(Random(100)));
    }
    Schedule(kFaultIntervalMinMs, Event{.type = Event::Type::kFault});

    const int64_t heal_at = options_.fault_phase_ms;
    const int64_t end_at = heal_at + options_.liveness_bound_ms;
    bool healed = false;
    while (failure_.empty() && !events_.empty() && stats_.events < kEventsMax) {
      auto next = events_.begin();
      if (!healed && next->first >= heal_at) {
        now_ms_ = heal_at;
        clients_on_ = false;
        Heal();
        healed = true;
        continue;
      }
      if (next->first > end_at) break;
      now_ms_ = next->first;
      Event event = std::move(next->second);
      events_.erase(next);
      ++stats_.events;
      for (uint64_t value :
           {static_cast<uint64_t>(now_ms_), static_cast<uint64_t>(event.type),
            static_cast<uint64_t>(event.node), static_cast<uint64_t>(event.client),
            static_cast<uint64_t>(event.message.type), event.message.from.value(),
            event.message.generation.value(), event.message.log_index.value()}) {
        // FNV-1a over the event's fields.
        for (int byte = 0; byte < 8; ++byte) {
          stats_.trace_hash = (stats_.trace_hash ^ ((value >> (8 * byte)) & 0xFF)) *
                              0x100000001B3ull;
        }
      }
      HandleEvent(event);
    }
    if (stats_.events >= kEventsMax) Fail("the run exceeded its event bound");
    if (failure_.empty()) {
      now_ms_ = end_at;
      for (Client& client : clients_) {
        if (client.busy) FinishOperation(client, /*known=*/false);
      }
      CheckConvergence();
    }
    if (failure_.empty()) CheckLinearizable();
  } catch (const InvariantBroken& broken) {
    Fail(std::string("a core invariant broke: ") + broken.what());
  }
  SetCheckFailureHandler(nullptr);
  SimResult result;
  result.passed = failure_.empty();
  result.failure = failure_;
  result.stats = stats_;
  return result;
}

}  // namespace internal

std::optional<uint32_t> ParseFaults(std::string_view list) {
  if (list == "all") return kAllFaults;
  if (list == "none" || list.empty()) return 0u;
  uint32_t faults = 0;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    bool known = false;
    for (const auto& entry : kFaultNames) {
      if (entry.name == name) {
        faults |= entry.fault;
        known = true;
      }
    }
    if (!known) return std::nullopt;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return faults;
}

std::string FaultNames(uint32_t faults) {
  if (faults == kAllFaults) return "all";
  std::string names;
  for (const auto& entry : kFaultNames) {
    if (faults & entry.fault) names += (names.empty() ? "" : ",") + std::string(entry.name);
  }
  return names.empty() ? "none" : names;
}

std::string ReplayCommand(const SimOptions& options) {
  std::string command = fmt::format("build/bin/cairn-sim --seed {} --nodes {} --faults {}",
                                    options.seed, options.nodes, FaultNames(options.faults));
  if (options.bug != consensus::PlantedBug::kNone) {
    command += fmt::format(" --bug {}", consensus::PlantedBugName(options.bug));
  }
  return command + " --trace";
}

bool IntendedCatch::Matches(std::string_view failure) const {
  return std::any_of(checks.begin(), checks.end(), [&](std::string_view check) {
    return failure.find(check) != std::string_view::npos;
  });
}

IntendedCatch IntendedCatchOf(consensus::PlantedBug bug) {
  using consensus::PlantedBug;
  switch (bug) {
    case PlantedBug::kCommitOnMinority:
      return {kAllFaults, {"leader completeness", "state machine safety"}};
    case PlantedBug::kCommitOldGeneration:
      return {kAllFaults, {"leader completeness", "not linearizable"}};
    case PlantedBug::kDoubleVote:
      return {kAllFaults, {"two leaders", "a vote cast in generation"}};
    case PlantedBug::kSkipLogMatching:
      return {kAllFaults, {"log matching"}};
    case PlantedBug::kApplyAboveHighWaterMark:
      return {kAllFaults, {"above its high-water mark"}};
    case PlantedBug::kVoteBeforePersist:
      return {kAllFaults, {"two leaders", "leader completeness"}};
    case PlantedBug::kReadWithoutHeartbeat:
      return {kAllFaults, {"not linearizable"}};
    case PlantedBug::kCommitNoticeWaitsForHeartbeat:
      return {0, {"latency: "}};  // Only fault-free seeds bound latency.
    case PlantedBug::kNone:
      break;
  }
  return {kAllFaults, {}};
}

SimResult RunSimulation(const SimOptions& options) {
  // Storage warnings (torn tails after simulated crashes) are expected by the thousand here.
  const spdlog::level::level_enum level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  internal::Simulation simulation(options);
  SimResult result = simulation.Run();
  spdlog::set_level(level);
  return result;
}

}  // namespace cairn::sim