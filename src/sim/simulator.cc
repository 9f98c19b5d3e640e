#include "sim/simulator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "base/check.h"
#include "base/coding.h"
#include "consensus/replica.h"
#include "linearizability/kv_model.h"
#include "sim/kv_state_machine.h"
#include "member/member_storage.h"
#include "storage/sim_file_system.h"
#include "wal/write_ahead_log.h"

namespace cairn::sim {

using consensus::Message;
using consensus::PlantedBug;
using consensus::Ready;
using consensus::Replica;
using consensus::Role;

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

constexpr int64_t kTickMs = 10;               // A node's nominal tick.
constexpr int64_t kClientTimeoutMs = 1'500;   // A client gives up and records "unknown".
constexpr int64_t kFaultIntervalMinMs = 100;  // Time between fault actions.
constexpr int64_t kFaultIntervalMaxMs = 400;
constexpr uint64_t kEventsMax = 5'000'000;    // Bound on one run.

// Thrown by the check failure handler: a broken invariant inside the core fails the seed.
struct InvariantBroken : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void ThrowOnCheckFailure(const std::string& message) { throw InvariantBroken(message); }

struct PendingWrite {
  int client;
  uint64_t operation_id;
};

struct Node {
  int number = 0;  // 1-based.
  NodeId id;
  std::unique_ptr<SimFileSystem> fs;
  std::unique_ptr<member::MemberStorage> storage;  // Metadata, log, snapshots (shared shell code).
  LogIndex snapshot_index;  // The newest durable snapshot of this lifetime.
  std::unique_ptr<Replica> replica;
  KvStateMachine state_machine;
  bool up = true;
  int64_t paused_until_ms = 0;
  int64_t tick_period_ms = kTickMs;
  uint64_t tick_epoch = 0;  // Ticks scheduled before a restart are ignored after it.
  // Invariant bookkeeping for the current lifetime.
  LogIndex last_commit;
  LogIndex last_applied;
  Generation highest_generation;  // Across lifetimes: the persisted generation never goes back.
  bool was_leader = false;
  std::map<uint64_t, PendingWrite> pending_writes;  // By log index.
  std::map<uint64_t, int> pending_reads;            // Read id -> client.
};

struct Client {
  int number = 0;
  bool busy = false;
  uint64_t operation_id = 0;
  size_t history_slot = 0;
  bool is_read = false;
  uint64_t read_id = 0;
  int node = 0;
  int preferred_node = 0;  // A leader hint, or 0.
  uint64_t sequence = 0;
};

struct Event {
  enum class Type : uint8_t { kTick, kDeliver, kClientStart, kClientTimeout, kFault, kDurable };
  Type type;
  int node = 0;
  uint64_t epoch = 0;
  Message message{};
  int client = 0;
  uint64_t operation_id = 0;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options) : options_(options), random_(options.seed) {}

  SimResult Run();

 private:
  // Setup and node lifecycle.
  void ChooseFaultRates();
  void StartNode(Node& node);
  void CrashNode(Node& node, std::string_view why);
  void RestartNode(Node& node);

  // Events.
  void Schedule(int64_t at_ms, Event event) { events_.emplace(at_ms, std::move(event)); }
  void HandleEvent(const Event& event);
  void HandleTick(const Event& event);
  void HandleDurable(const Event& event);
  void HandleDeliver(const Event& event);
  void HandleClientStart(int client_number);
  void HandleClientTimeout(int client_number, uint64_t operation_id);
  void HandleFault();
  void Heal();

  // Ready processing: the shell's job, in the order Ready prescribes.
  void Process(Node& node);
  bool Persist(Node& node, const Ready& ready);
  void MaybeTakeSnapshot(Node& node);
  void SendMessages(const std::vector<Message>& messages);
  void Apply(Node& node, const std::vector<wal::Entry>& committed);
  void ServeReads(Node& node, const std::vector<consensus::ReadState>& reads);

  // Clients.
  void FinishOperation(Client& client, bool known);
  void ScheduleClient(Client& client, int64_t delay_ms);

  // Invariants.
  void Fail(std::string what);
  void CheckNode(Node& node);
  void CheckPersisted(Node& node, const std::vector<wal::Entry>& entries);
  void CheckConvergence();
  void CheckLinearizable();

  bool Linked(int from, int to) const { return blocked_.count({from, to}) == 0; }
  Node& NodeById(NodeId id) { return nodes_.at(id.value() - 1); }
  uint64_t Random(uint64_t bound) { return bound == 0 ? 0 : random_() % bound; }
  bool Chance(double probability) {
    return std::uniform_real_distribution<double>(0, 1)(random_) < probability;
  }
  template <typename... Args>
  void Trace(fmt::format_string<Args...> format, Args&&... args) {
    if (options_.trace) {
      fmt::print("{:>7} ms  {}\n", now_ms_, fmt::format(format, std::forward<Args>(args)...));
    }
  }

  SimOptions options_;
  std::mt19937_64 random_;
  int64_t now_ms_ = 0;
  bool faults_on_ = true;
  bool clients_on_ = true;
  std::multimap<int64_t, Event> events_;
  std::vector<Node> nodes_;
  std::set<NodeId> initial_voters_;  // The rest of the nodes start outside the cluster.
  std::vector<Client> clients_;
  SimStats stats_{.trace_hash = 0xCBF29CE484222325ull};
  std::string failure_;

  // Replication shape, chosen per seed: small batches and windows expose bugs that large
  // ones hide (a follower holding an old entry without the new leader's own).
  uint64_t append_entries_max_ = 256;
  uint32_t appends_in_flight_max_ = 8;
  // Snapshots: every how many applied entries (0: never), chunk size, and the log's segment size,
  // small enough that the Low-Water Mark really deletes segments.
  uint64_t snapshot_every_entries_ = 0;
  uint64_t snapshot_chunk_bytes_ = 64;
  // Drawn per seed: nodes report log durability separately (as the server's LogWriter does), a
  // few milliseconds after each write, instead of Advance implying it.
  bool async_durability_ = false;
  uint64_t segment_bytes_ = 4096;
  wal::Preallocation preallocation_ = wal::Preallocation::kOff;
  // Fault rates, chosen per seed.
  double loss_rate_ = 0;
  double duplicate_rate_ = 0;
  double reply_loss_rate_ = 0;
  int64_t delay_max_ms_ = 1;
  bool reorder_ = false;
  std::vector<Fault> fault_actions_;
  std::set<std::pair<int, int>> blocked_;           // Directed links that drop everything.
  std::map<std::pair<int, int>, int64_t> link_clock_;  // FIFO delivery per link without reorder.

  // Invariant state.
  std::map<uint64_t, NodeId> leader_of_generation_;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<std::string, uint64_t>> seen_entries_;
  std::map<uint64_t, std::string> applied_;  // Index -> payload applied by any node.
  // Index -> the generation of the leader that first committed it, and the entry's payload.
  std::map<uint64_t, std::pair<uint64_t, std::string>> committed_;
  std::vector<linearizability::KvOperation> history_;
  std::vector<bool> discarded_;  // History slots of reads that failed (no effect, no answer).
  uint64_t next_read_id_ = 1;
};

void Simulation::Fail(std::string what) {
  if (failure_.empty()) failure_ = fmt::format("at {} ms: {}", now_ms_, what);
}

void Simulation::ChooseFaultRates() {
  const uint32_t faults = options_.faults;
  // Swarm testing: each enabled fault gets its own random intensity, sometimes none at all.
  if (faults & kFaultLoss) {
    loss_rate_ = Chance(0.8) ? Random(150) / 1000.0 : 0;
    reply_loss_rate_ = Random(100) / 1000.0;
  }
  if (faults & kFaultDuplicate) duplicate_rate_ = Chance(0.7) ? Random(100) / 1000.0 : 0;
  if (faults & kFaultDelay) delay_max_ms_ = 1 + static_cast<int64_t>(Random(40));
  reorder_ = (faults & kFaultReorder) && Chance(0.7);
  for (Fault fault : {kFaultPartition, kFaultCrash, kFaultPause, kFaultTransfer,
                      kFaultMembership}) {
    if ((faults & fault) && Chance(0.85)) fault_actions_.push_back(fault);
  }
  constexpr uint64_t kBatchSizes[] = {1, 2, 4, 64, 256};
  constexpr uint32_t kWindows[] = {1, 2, 8};
  append_entries_max_ = kBatchSizes[Random(5)];
  appends_in_flight_max_ = kWindows[Random(3)];
  constexpr uint64_t kSnapshotIntervals[] = {0, 5, 20, 100};
  constexpr uint64_t kChunkSizes[] = {16, 64, 4096};
  snapshot_every_entries_ = kSnapshotIntervals[Random(4)];
  snapshot_chunk_bytes_ = kChunkSizes[Random(3)];
  async_durability_ = Random(2) == 1;
  segment_bytes_ = 512u << Random(4);
  // Half the seeds write their logs over preallocated segments. Taken from the seed itself, not
  // drawn from the run's random stream, so every other choice of an existing seed stays as it was.
  preallocation_ = (options_.seed * 0x9E3779B97F4A7C15ull) >> 63 ? wal::Preallocation::kInline
                                                                  : wal::Preallocation::kOff;
  for (Node& node : nodes_) {
    if (faults & kFaultDrift) {
      node.tick_period_ms = kTickMs - 2 + static_cast<int64_t>(Random(5));  // 8..12 ms.
    }
  }
}

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
      .heartbeat_interval_ticks = 1,
      .election_timeout_ticks = 10,
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
      Schedule(now_ms_ + 1 + static_cast<int64_t>(Random(4)), std::move(report));
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

void Simulation::SendMessages(const std::vector<Message>& messages) {
  for (const Message& message : messages) {
    ++stats_.messages_sent;
    const int from = static_cast<int>(message.from.value());
    const int to = static_cast<int>(message.to.value());
    if (!Linked(from, to) || (faults_on_ && Chance(loss_rate_))) continue;
    const int copies = faults_on_ && Chance(duplicate_rate_) ? 2 : 1;
    for (int copy = 0; copy < copies; ++copy) {
      int64_t at = now_ms_ + 1 + static_cast<int64_t>(Random(delay_max_ms_));
      if (!reorder_ || !faults_on_) {
        int64_t& link_clock = link_clock_[{from, to}];
        at = std::max(at, link_clock);
        link_clock = at;
      }
      Schedule(at, Event{.type = Event::Type::kDeliver, .node = to, .message = message});
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
    auto [slot, inserted] = applied_.emplace(entry.index.value(), entry.payload);
    if (!inserted && slot->second != entry.payload) {
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

void Simulation::FinishOperation(Client& client, bool known) {
  linearizability::KvOperation& operation = history_[client.history_slot];
  if (known) {
    operation.return_time = now_ms_;
  } else {
    ++stats_.operations_unknown;
    if (client.is_read) discarded_[client.history_slot] = true;
  }
  client.busy = false;
  Trace("client {} op {} done ({})", client.number, client.operation_id,
        known ? linearizability::DescribeOperation(operation) : std::string("unknown outcome"));
  ScheduleClient(client, 1 + static_cast<int64_t>(Random(20)));
}

void Simulation::ScheduleClient(Client& client, int64_t delay_ms) {
  if (!clients_on_) return;
  Schedule(now_ms_ + delay_ms, Event{.type = Event::Type::kClientStart, .client = client.number});
}

void Simulation::HandleClientStart(int client_number) {
  Client& client = clients_.at(client_number - 1);
  if (client.busy || !clients_on_) return;
  // Pick a node: the leader hint if it is up, otherwise any node that is up and not paused.
  std::vector<int> candidates;
  for (const Node& node : nodes_) {
    if (node.up && node.paused_until_ms <= now_ms_) candidates.push_back(node.number);
  }
  if (candidates.empty()) return ScheduleClient(client, 50);
  int target = candidates[Random(candidates.size())];
  if (client.preferred_node != 0 && Chance(0.8)) {
    const Node& preferred = nodes_.at(client.preferred_node - 1);
    if (preferred.up && preferred.paused_until_ms <= now_ms_) target = preferred.number;
  }
  Node& node = nodes_.at(target - 1);
  const std::string key = fmt::format("k{}", Random(options_.keys));
  const uint64_t operation_id = (static_cast<uint64_t>(client.number) << 32) | ++client.sequence;
  linearizability::KvOperation operation;
  operation.client_id = static_cast<uint64_t>(client.number);
  operation.key = key;
  operation.call_time = now_ms_;
  const uint64_t choice = Random(10);
  if (choice < 4) {
    const uint64_t read_id = next_read_id_++;
    Status status = node.replica->ReadIndex(read_id);
    if (!status.ok()) {
      client.preferred_node = node.replica->leader() == NodeId(0)
                                  ? 0
                                  : static_cast<int>(node.replica->leader().value());
      return ScheduleClient(client, 10 + static_cast<int64_t>(Random(30)));
    }
    operation.kind = linearizability::KvOperationKind::kGet;
    client.is_read = true;
    client.read_id = read_id;
    node.pending_reads[read_id] = client.number;
  } else {
    KvCommand command{.operation_id = operation_id,
                      .key = key,
                      .value = fmt::format("c{}.{}", client.number, client.sequence)};
    if (choice >= 8) {
      command.kind = KvCommand::Kind::kCompareAndSet;
      // Expect the value the client last saw, or absent, or some other client's value.
      const uint64_t expectation = Random(3);
      if (expectation == 1) {
        command.expected = fmt::format("c{}.{}", 1 + Random(options_.clients), 1 + Random(client.sequence));
      } else if (expectation == 2) {
        for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
          if (it->key == key && it->return_time && it->value) {
            command.expected = *it->value;
            break;
          }
        }
      }
    }
    auto index = node.replica->Propose(EncodeKvCommand(command));
    if (!index.ok()) {
      client.preferred_node = node.replica->leader() == NodeId(0)
                                  ? 0
                                  : static_cast<int>(node.replica->leader().value());
      return ScheduleClient(client, 10 + static_cast<int64_t>(Random(30)));
    }
    operation.kind = command.kind == KvCommand::Kind::kPut
                         ? linearizability::KvOperationKind::kPut
                         : linearizability::KvOperationKind::kCompareAndSet;
    operation.value = command.value;
    if (command.kind == KvCommand::Kind::kCompareAndSet) operation.expected = command.expected;
    client.is_read = false;
    node.pending_writes[index->value()] = PendingWrite{client.number, operation_id};
  }
  client.busy = true;
  client.operation_id = operation_id;
  client.node = node.number;
  client.history_slot = history_.size();
  history_.push_back(std::move(operation));
  discarded_.push_back(false);
  ++stats_.operations;
  Trace("client {} starts op {} at node {}: {}", client.number, operation_id, node.number,
        linearizability::DescribeOperation(history_.back()));
  Schedule(now_ms_ + kClientTimeoutMs, Event{.type = Event::Type::kClientTimeout,
                                             .client = client.number,
                                             .operation_id = operation_id});
  Process(node);
}

void Simulation::HandleClientTimeout(int client_number, uint64_t operation_id) {
  Client& client = clients_.at(client_number - 1);
  if (!client.busy || client.operation_id != operation_id) return;
  Node& node = nodes_.at(client.node - 1);
  if (client.is_read) {
    node.pending_reads.erase(client.read_id);
  } else {
    for (auto it = node.pending_writes.begin(); it != node.pending_writes.end(); ++it) {
      if (it->second.operation_id == operation_id) {
        node.pending_writes.erase(it);
        break;
      }
    }
  }
  FinishOperation(client, /*known=*/false);
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

void Simulation::HandleFault() {
  if (!faults_on_) return;
  Schedule(now_ms_ + kFaultIntervalMinMs +
               static_cast<int64_t>(Random(kFaultIntervalMaxMs - kFaultIntervalMinMs)),
           Event{.type = Event::Type::kFault});
  if (fault_actions_.empty()) return;
  const int count = static_cast<int>(nodes_.size());
  Node& victim = nodes_.at(Random(count));
  switch (fault_actions_[Random(fault_actions_.size())]) {
    case kFaultPartition: {
      if (!blocked_.empty() && Chance(0.5)) {
        Trace("partition heals");
        blocked_.clear();
        break;
      }
      blocked_.clear();
      const uint64_t kind = Random(4);
      if (kind == 0) {
        // Symmetric: a random minority or majority is cut off from the rest.
        std::set<int> side;
        for (int n = 1; n <= count; ++n) {
          if (Chance(0.5)) side.insert(n);
        }
        for (int a = 1; a <= count; ++a) {
          for (int b = 1; b <= count; ++b) {
            if (side.count(a) != side.count(b)) blocked_.insert({a, b});
          }
        }
        Trace("partition: {} nodes cut off from the rest", side.size());
      } else if (kind == 1) {
        // One way: the victim can send but not receive (or the reverse).
        const bool inbound = Chance(0.5);
        for (int n = 1; n <= count; ++n) {
          if (n != victim.number) {
            blocked_.insert(inbound ? std::make_pair(n, victim.number)
                                    : std::make_pair(victim.number, n));
          }
        }
        Trace("partition: node {} one way ({})", victim.number, inbound ? "deaf" : "mute");
      } else if (kind == 2) {
        // A bridge: two groups that only the victim connects.
        for (int a = 1; a <= count; ++a) {
          for (int b = 1; b <= count; ++b) {
            if (a != victim.number && b != victim.number && (a % 2) != (b % 2)) {
              blocked_.insert({a, b});
            }
          }
        }
        Trace("partition: node {} bridges two halves", victim.number);
      } else {
        for (int n = 1; n <= count; ++n) {
          if (n != victim.number) {
            blocked_.insert({n, victim.number});
            blocked_.insert({victim.number, n});
          }
        }
        Trace("partition: node {} isolated", victim.number);
      }
      break;
    }
    case kFaultCrash:
      if (!victim.up) {
        RestartNode(victim);
      } else if (Chance(0.5)) {
        CrashNode(victim, "killed");
      } else {
        // Die in the middle of a later write: a torn Ready.
        Trace("node {} will crash within its next writes", victim.number);
        victim.fs->SetCrashPoint(1 + Random(8));
      }
      break;
    case kFaultPause:
      if (victim.up) {
        victim.paused_until_ms = now_ms_ + 50 + static_cast<int64_t>(Random(400));
        Trace("node {} paused until {} ms", victim.number, victim.paused_until_ms);
      }
      break;
    case kFaultMembership:
      for (Node& node : nodes_) {
        if (!node.up || node.paused_until_ms > now_ms_ || node.replica->role() != Role::kLeader) {
          continue;
        }
        const consensus::Membership& membership = node.replica->membership();
        std::optional<consensus::MembershipChange> change;
        std::vector<NodeId> outsiders;
        for (const Node& other : nodes_) {
          if (!membership.Contains(other.id)) outsiders.push_back(other.id);
        }
        if (!membership.learners.empty()) {
          change = {consensus::MembershipChange::Kind::kPromoteLearner,
                    *membership.learners.begin()};
        } else if (!outsiders.empty() && Chance(0.6)) {
          change = {consensus::MembershipChange::Kind::kAddLearner,
                    outsiders[Random(outsiders.size())]};
        } else if (membership.voters.size() > 1) {
          auto voter = membership.voters.begin();
          std::advance(voter, Random(membership.voters.size()));
          change = {consensus::MembershipChange::Kind::kRemoveMember, *voter};
        }
        if (change) {
          auto proposed = node.replica->ProposeMembershipChange(*change);
          Trace("leader {} proposes membership change {} of node {}: {}", node.number,
                static_cast<int>(change->kind), change->node,
                proposed.ok() ? std::string("appended") : proposed.status().ToString());
          Process(node);
        }
        break;
      }
      break;
    case kFaultTransfer:
      for (Node& node : nodes_) {
        if (node.up && node.paused_until_ms <= now_ms_ && node.replica->role() == Role::kLeader &&
            count > 1) {
          NodeId target(1 + Random(count));
          if (target == node.id) target = NodeId(target.value() % count + 1);
          Trace("leader {} transfers leadership to {}", node.number, target);
          (void)node.replica->TransferLeadership(target);
          Process(node);
          break;
        }
      }
      break;
    default:
      break;
  }
}

void Simulation::Heal() {
  Trace("faults heal");
  faults_on_ = false;
  blocked_.clear();
  for (Node& node : nodes_) {
    node.paused_until_ms = 0;
    node.fs->ClearCrashPoint();
    if (node.up && node.fs->dead()) CrashNode(node, "its disk had died");
    if (!node.up) RestartNode(node);
  }
}

void Simulation::HandleEvent(const Event& event) {
  switch (event.type) {
    case Event::Type::kTick: return HandleTick(event);
    case Event::Type::kDeliver: return HandleDeliver(event);
    case Event::Type::kClientStart: return HandleClientStart(event.client);
    case Event::Type::kClientTimeout: return HandleClientTimeout(event.client, event.operation_id);
    case Event::Type::kFault: return HandleFault();
    case Event::Type::kDurable: return HandleDurable(event);
  }
}

void Simulation::CheckPersisted(Node& node, const std::vector<wal::Entry>& entries) {
  for (const wal::Entry& entry : entries) {
    const LogIndex previous = entry.index.prev();
    const uint64_t previous_generation =
        previous == LogIndex(0) ? 0 : node.replica->log().GenerationAt(previous)->value();
    auto [slot, inserted] = seen_entries_.emplace(
        std::make_pair(entry.index.value(), entry.generation.value()),
        std::make_pair(entry.payload, previous_generation));
    if (!inserted && (slot->second.first != entry.payload ||
                      slot->second.second != previous_generation)) {
      return Fail(fmt::format("log matching: node {} holds a different entry at index {} "
                              "generation {} than another node",
                              node.number, entry.index, entry.generation));
    }
  }
}

void Simulation::CheckNode(Node& node) {
  const Replica& replica = *node.replica;
  const LogIndex commit = replica.log().commit_index();
  if (commit < node.last_commit) {
    return Fail(fmt::format("node {} commit index went back from {} to {}", node.number,
                            node.last_commit, commit));
  }
  if (replica.role() == Role::kLeader) {
    // A leader's commit index moves only by counting replicas: these entries are committed in
    // its generation (unless an earlier leader already committed them).
    for (LogIndex index = std::max(node.last_commit.next(), replica.log().first_index());
         index <= commit; index = index.next()) {
      committed_.emplace(index.value(), std::make_pair(replica.generation().value(),
                                                       replica.log().At(index).payload));
    }
  }
  node.last_commit = commit;
  if (replica.log().applied_index() > commit) {
    return Fail(fmt::format("node {} applied up to {} above its high-water mark {}", node.number,
                            replica.log().applied_index(), commit));
  }
  if (replica.generation() < node.highest_generation) {
    return Fail(fmt::format("node {} generation went back", node.number));
  }
  const bool is_leader = replica.role() == Role::kLeader;
  if (is_leader) {
    auto [slot, inserted] = leader_of_generation_.emplace(replica.generation().value(), node.id);
    if (!inserted && slot->second != node.id) {
      return Fail(fmt::format("two leaders in generation {}: nodes {} and {}",
                              replica.generation(), slot->second, node.id));
    }
    if (!node.was_leader) {
      ++stats_.leader_elections;
      Trace("node {} leads generation {}", node.number, replica.generation());
      // Leader completeness: a leader holds every entry committed in an earlier generation.
      // (A stale leader of an older generation, elected late, need not hold later commits.)
      for (const auto& [index, commit_record] : committed_) {
        const auto& [commit_generation, payload] = commit_record;
        if (commit_generation >= replica.generation().value()) continue;
        if (LogIndex(index) <= replica.log().snapshot_index()) continue;  // Covered by a snapshot.
        if (LogIndex(index) > replica.log().last_index() ||
            replica.log().At(LogIndex(index)).payload != payload) {
          return Fail(fmt::format("leader completeness: new leader {} of generation {} lacks "
                                  "entry {} committed in generation {}",
                                  node.number, replica.generation(), index, commit_generation));
        }
      }
    }
  }
  node.was_leader = is_leader;
}

void Simulation::CheckConvergence() {
  const Node* leader = nullptr;
  for (const Node& node : nodes_) {
    if (!node.up) return Fail(fmt::format("liveness: node {} is still down", node.number));
    if (node.replica->role() == Role::kLeader &&
        (leader == nullptr || node.replica->generation() > leader->replica->generation())) {
      leader = &node;
    }
  }
  if (leader == nullptr) {
    std::string states;
    for (const Node& node : nodes_) {
      states += fmt::format("; node {} {} in generation {}, leader {}, log [{}, {}], commit {}, {}",
                            node.number, consensus::RoleName(node.replica->role()),
                            node.replica->generation(), node.replica->leader(),
                            node.replica->log().first_index(), node.replica->log().last_index(),
                            node.replica->log().commit_index(),
                            node.replica->membership().ToString());
    }
    return Fail(fmt::format("liveness: no leader {} ms after the faults healed{}",
                            options_.liveness_bound_ms, states));
  }
  const LogIndex last = leader->replica->log().last_index();
  const consensus::Membership& membership = leader->replica->membership();
  if (leader->replica->log().commit_index() != last) {
    return Fail(fmt::format("liveness: leader {} has not committed its log ({} of {})",
                            leader->number, leader->replica->log().commit_index(), last));
  }
  for (const Node& node : nodes_) {
    if (!membership.Contains(node.id)) continue;  // Removed, or never added: not expected to follow.
    if (node.replica->log().applied_index() != last) {
      return Fail(fmt::format("liveness: node {} applied {} of the leader's {} entries {} ms "
                              "after the faults healed",
                              node.number, node.replica->log().applied_index(), last,
                              options_.liveness_bound_ms));
    }
  }
}

void Simulation::CheckLinearizable() {
  std::vector<linearizability::KvOperation> history;
  for (size_t slot = 0; slot < history_.size(); ++slot) {
    if (!discarded_[slot]) history.push_back(history_[slot]);
  }
  const linearizability::CheckResult result = linearizability::CheckKvHistory(history);
  stats_.linearizability_steps = result.steps;
  if (result.verdict == linearizability::Verdict::kNotLinearizable) {
    Fail("the client history is not linearizable: " + result.explanation);
  } else if (result.verdict != linearizability::Verdict::kLinearizable) {
    Fail("the linearizability check did not finish: " + result.explanation);
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

}  // namespace

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
  if (options.bug != PlantedBug::kNone) {
    command += fmt::format(" --bug {}", consensus::PlantedBugName(options.bug));
  }
  return command + " --trace";
}

SimResult RunSimulation(const SimOptions& options) {
  // Storage warnings (torn tails after simulated crashes) are expected by the thousand here.
  const spdlog::level::level_enum level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);
  Simulation simulation(options);
  SimResult result = simulation.Run();
  spdlog::set_level(level);
  return result;
}

}  // namespace cairn::sim
