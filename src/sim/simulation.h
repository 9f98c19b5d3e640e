// Simulation: the simulator's internals, shared by its parts (the design note is in simulator.h).
//
//   simulator.cc   the run loop, node lifecycle, and the shell that carries out each Ready
//   faults.cc      fault rates drawn per seed, fault actions, healing
//   workload.cc    clients: operations, writes forwarded by followers, timeouts
//   invariants.cc  the checks after every step and at the end of a run
#pragma once

#include <fmt/format.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "consensus/replica.h"
#include "linearizability/kv_model.h"
#include "member/member_storage.h"
#include "sim/kv_state_machine.h"
#include "sim/simulator.h"
#include "storage/sim_file_system.h"

namespace cairn::sim::internal {

using consensus::Message;
using consensus::PlantedBug;
using consensus::Ready;
using consensus::Replica;
using consensus::Role;

constexpr int64_t kTickMs = 10;               // A node's nominal tick.
constexpr int64_t kClientTimeoutMs = 1'500;   // A client gives up and records "unknown".
constexpr int64_t kFaultIntervalMinMs = 100;  // Time between fault actions.
constexpr int64_t kFaultIntervalMaxMs = 400;
constexpr uint64_t kEventsMax = 5'000'000;  // Bound on one run.

struct PendingWrite {
  int client;
  uint64_t operation_id;
};

struct Node {
  int number = 0;  // 1-based.
  NodeId id;
  std::unique_ptr<SimFileSystem> fs;
  std::unique_ptr<member::MemberStorage> storage;  // Metadata, log, snapshots (shared shell code).
  LogIndex snapshot_index;                         // The newest durable snapshot of this lifetime.
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
  // Writes this node forwarded to the leader, by operation id -> client: answered when this
  // node applies them, as the server answers a write a follower forwarded.
  std::map<uint64_t, int> pending_forwards;
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
  bool forwarded = false;  // The current write went through a follower.
  uint64_t sequence = 0;
};

struct Event {
  enum class Type : uint8_t {
    kTick,
    kDeliver,
    kClientStart,
    kClientTimeout,
    kFault,
    kDurable,
    kForward,          // A follower's forwarded write reaches `node` (message.from forwarded it).
    kForwardRejected,  // `node` hears that the write it forwarded was not proposed.
  };
  Type type;
  int node = 0;
  uint64_t epoch = 0;
  Message message{};
  int client = 0;
  uint64_t operation_id = 0;
  std::string payload{};  // kForward: the command.
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options) : options_(options), random_(options.seed) {}

  SimResult Run();

 private:
  // Setup and node lifecycle.
  void ChooseFaultRates();
  void ChooseTiming();
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
  void HandleForward(const Event& event);
  void HandleForwardRejected(const Event& event);
  // `node` applied the write `operation_id`: if it forwarded it, its client has the answer.
  void FinishForwardedWrite(Node& node, uint64_t operation_id, bool succeeded);
  void HandleFault();
  void Heal();

  // Ready processing: the shell's job, in the order Ready prescribes.
  void Process(Node& node);
  bool Persist(Node& node, const Ready& ready);
  void MaybeTakeSnapshot(Node& node);
  void SendMessages(const std::vector<Message>& messages);
  // When a message sent now from `from` to `to` arrives (nullopt: lost); `copies` is set to 2
  // when the network duplicates it.
  std::optional<int64_t> ArrivalTime(int from, int to, int* copies);
  void Apply(Node& node, const std::vector<wal::Entry>& committed);
  void ServeReads(Node& node, const std::vector<consensus::ReadState>& reads);

  // Clients.
  void FinishOperation(Client& client, bool known);
  bool StartWrite(Client& client, Node& node, const KvCommand& command);
  void ScheduleClient(Client& client, int64_t delay_ms);

  // Invariants.
  void Fail(std::string what);
  void CheckNode(Node& node);
  void CheckPersisted(Node& node, const std::vector<wal::Entry>& entries);
  void CheckConvergence();
  void CheckLinearizable();
  void CheckLatency(const Client& client, const linearizability::KvOperation& operation);

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
  // Timing, drawn per seed from a generator of its own (so the other draws stay as they were):
  // the network's delay when it is not a fault, how long the log writer takes to report a write
  // durable, and the heartbeat interval in ticks. Fault-free seeds get the server's proportions
  // (a heartbeat is many round trips), so that a request that waits for one stands out.
  int64_t delay_min_ms_ = 1;
  int64_t durability_delay_max_ms_ = 4;
  uint32_t heartbeat_interval_ticks_ = 1;
  // Fault-free seeds: every operation completes within this many ms (0: not checked). A few
  // round trips and writes (invariants.cc says which); never a heartbeat or an election timeout.
  int64_t latency_bound_ms_ = 0;
  // Fault rates, chosen per seed.
  double loss_rate_ = 0;
  double duplicate_rate_ = 0;
  double reply_loss_rate_ = 0;
  int64_t delay_max_ms_ = 1;  // Messages take delay_min_ms_ to delay_max_ms_.
  bool reorder_ = false;
  std::vector<Fault> fault_actions_;
  std::set<std::pair<int, int>> blocked_;              // Directed links that drop everything.
  std::map<std::pair<int, int>, int64_t> link_clock_;  // FIFO delivery per link without reorder.

  // Invariant state.
  std::map<uint64_t, NodeId> leader_of_generation_;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<std::string, uint64_t>> seen_entries_;
  // An entry as the safety checks compare them: by generation and payload, so that two no-ops (or
  // two equal commands) of different generations are told apart.
  struct EntryIdentity {
    uint64_t generation = 0;
    std::string payload;
    bool operator==(const EntryIdentity&) const = default;
  };
  std::map<uint64_t, EntryIdentity> applied_;  // Index -> the entry applied there by any node.
  // Index -> the generation of the leader that first committed it, and the entry.
  std::map<uint64_t, std::pair<uint64_t, EntryIdentity>> committed_;
  std::vector<linearizability::KvOperation> history_;
  std::vector<bool> discarded_;  // History slots of reads that failed (no effect, no answer).
  uint64_t next_read_id_ = 1;
};

}  // namespace cairn::sim::internal
