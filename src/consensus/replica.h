// Replica: one member's consensus core, a pure deterministic state machine.
//
// Patterns, each with its home in this module:
//   - Leader and Followers (this class; role behaviour in follower.cc, candidate.cc, leader.cc):
//     one leader per generation replicates its log to followers; a follower that misses the
//     leader's heartbeats for a randomized election timeout becomes a (pre-)candidate.
//   - Generation Clock (generation_ / voted_for_): persisted before a vote is granted or a message
//     of the generation is sent; every message carries it; older generations are rejected; a
//     leader that sees a newer one steps down at once.
//   - HeartBeat (leader.cc, Tick): the leader heartbeats every heartbeat_interval_ticks.
//   - Quorum (quorum.h) and High-Water Mark (replicated_log.h): the commit index advances when a
//     majority holds an entry of the leader's own generation.
//   - Request Pipeline (progress.h): several appends in flight per follower, bounded.
//   - Follower Reads and linearizable reads by read index (read_index.cc).
// Plus pre-vote and check-quorum (a partitioned node cannot depose a healthy leader when it returns;
// a leader that cannot reach a majority steps down) and leadership transfer.
//
// ## Inputs and output
// Inputs: Tick(), Step(message), Propose(payload), ReadIndex(read_id), TransferLeadership(target).
// Output: TakeReady() returns one Ready batch. The shell carries a Ready out completely, in the
// order its fields are listed, then calls Advance(); no other input may arrive in between (a
// broken promise crashes). The core never touches a socket, file, thread or clock, and its only
// randomness (election timeouts) comes from a generator seeded through ReplicaOptions.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/strong_types.h"
#include "consensus/membership.h"
#include "consensus/message.h"
#include "consensus/planted_bugs.h"
#include "consensus/progress.h"
#include "consensus/replicated_log.h"

namespace cairn::consensus {

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view RoleName(Role role);

struct ReplicaOptions {
  NodeId id{};
  // The membership to start from when neither a snapshot nor the log says otherwise. A replica
  // that is not in it waits to be added (it never campaigns).
  std::set<NodeId> voters{};
  std::set<NodeId> learners{};
  // Ticks between leader heartbeats, and the base election timeout: a follower waits a random
  // number of ticks in [election_timeout_ticks, 2 * election_timeout_ticks) before campaigning.
  uint32_t heartbeat_interval_ticks = 1;
  uint32_t election_timeout_ticks = 10;
  bool pre_vote = true;
  bool check_quorum = true;
  // Request Pipeline bounds: entries and payload bytes per append message, appends in flight.
  uint64_t append_entries_max = 256;
  uint64_t append_bytes_max = 1ull << 20;
  uint32_t appends_in_flight_max = 8;
  // Reads waiting for confirmation or for the apply index; ReadIndex beyond it returns Busy.
  uint32_t reads_pending_max = 10'000;
  // Snapshots travel in chunks of this size; a follower refuses one larger than the maximum.
  uint64_t snapshot_chunk_bytes = 64u << 10;
  uint64_t snapshot_bytes_max = 8ull << 30;
  uint64_t random_seed = 1;
  // When set, Advance no longer implies that the Ready's log entries are durable: the shell
  // reports that separately with LogDurable, once its log writer has synced them. The leader
  // counts its own copy towards a quorum only from then on, so it can keep stepping messages
  // (and send further appends) while its write is in flight. Everything else in a Ready (hard
  // state, snapshot) must still be durable before the messages that depend on it are sent.
  bool log_durability_reported = false;
  // Simulator only: a deliberate bug (planted_bugs.h).
  PlantedBug planted_bug = PlantedBug::kNone;
};

// The durable part of the Generation Clock, persisted before anything that depends on it.
struct HardState {
  Generation generation;
  NodeId voted_for;
  bool operator==(const HardState&) const = default;
};

// A read that may now be served: once the entries up to `index` are applied, a read of the state
// machine is linearizable. `status` is not OK when the read could not be confirmed (no leader,
// leadership lost): the client should retry.
struct ReadState {
  uint64_t read_id = 0;
  LogIndex index;
  Status status;
};

// The bytes of the newest snapshot, which a leader sends in chunks to a follower that needs
// entries it no longer holds. Where they live is the shell's choice: a member reads them back from
// its snapshot file (so the core keeps no copy of the whole state in memory), the simulator and
// tests hold them in memory. Read is called on the core's thread.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  virtual uint64_t size() const = 0;
  // Bytes [offset, offset + length) of the snapshot; the range lies within size(). An
  // implementation that cannot read them (a failing disk) crashes rather than send other bytes.
  virtual std::string Read(uint64_t offset, uint64_t length) const = 0;
};

// A snapshot held in memory.
std::shared_ptr<const SnapshotSource> InMemorySnapshot(std::string data);

// A snapshot of the state machine: its data covers the log up to `index` (of `generation`).
struct Snapshot {
  LogIndex index;
  Generation generation;
  std::string data;
  Membership membership;  // The membership as of `index`: persist it with the data.
};

// One output batch. Carry it out in this order:
struct Ready {
  // 1. Persist the generation and vote, if set.
  std::optional<HardState> hard_state;
  // 1b. Install a snapshot received from the leader, if set: persist it, restart the log right
  //     after it (the log held nothing the snapshot needs), and load it into the state machine.
  std::optional<Snapshot> snapshot;
  // 2. Persist the log: truncate after `truncate_after` if set, then append `entries`; make both
  //    durable (fdatasync) before step 3.
  std::optional<LogIndex> truncate_after;
  std::vector<wal::Entry> entries;
  // 3. Send the messages (they may depend on 1 and 2: a vote, an append acknowledgement).
  std::vector<Message> messages;
  // 4. Apply the committed entries, in order.
  std::vector<wal::Entry> committed;
  // 5. Serve these reads (their indexes are at or below what step 4 applied).
  std::vector<ReadState> reads;

  bool empty() const {
    return !hard_state && !snapshot && !truncate_after && entries.empty() && messages.empty() &&
           committed.empty() && reads.empty();
  }
};

// What a replica can say about a local (serializable) read that skips the read-index round:
// it reflects `applied_index`, and the leader's commit index was at least `leader_commit_index`
// when this replica last heard from a leader, `ticks_since_leader_contact` ticks ago. So the read
// may miss at most leader_commit_index - applied_index entries as of then, plus whatever committed
// since (bounded staleness, for Follower Reads that accept it).
struct StaleReadBound {
  LogIndex applied_index;
  LogIndex leader_commit_index;
  uint64_t entries_behind_at_last_contact = 0;
  uint64_t ticks_since_leader_contact = 0;
  bool leader_known = false;
};

// What a recovering replica starts from (read by the shell from its data directory).
struct RecoveredState {
  HardState hard_state;
  LogIndex snapshot_index;
  Generation snapshot_generation;
  // Sent to followers that need what the snapshot covers: `snapshot_source` if set, else the
  // bytes of `snapshot_data` (which the shell may have moved out after loading its state).
  std::string snapshot_data;
  std::optional<Membership> snapshot_membership;  // As stored with the snapshot.
  std::vector<wal::Entry> entries;  // The durable log after the snapshot.
  std::shared_ptr<const SnapshotSource> snapshot_source;
};

class Replica {
 public:
  Replica(ReplicaOptions options, RecoveredState recovered);

  void Tick();
  void Step(const Message& message);
  // Appends a command (leader only). Returns its index, or an error naming the known leader.
  Result<LogIndex> Propose(std::string payload);
  // Appends several commands at consecutive indexes and sends them in one round of appends.
  // Returns the first one's index. All or nothing: refused as Propose is.
  Result<LogIndex> ProposeBatch(std::vector<std::string> payloads);
  // Asks for a linearizable read; its ReadState comes in a later Ready.
  Status ReadIndex(uint64_t read_id);
  // Hands leadership to `target` (leader only); proposals are refused while it is under way.
  Status TransferLeadership(NodeId target);
  // Low-Water Mark: the shell took a snapshot of the state machine at `index` (at or below the
  // applied index) and made it durable; entries up to `index` leave the log (and memory once
  // FreeCompactedEntries frees them). `data` is read to send the snapshot to followers that fall
  // behind the compacted log.
  Status CompactLog(LogIndex index, std::shared_ptr<const SnapshotSource> data);
  // Frees up to `count` log entries compacted away (ReplicatedLog::FreeCompacted); returns how
  // many are still held. The shell calls it a slice per turn.
  size_t FreeCompactedEntries(size_t count) { return log_.FreeCompacted(count); }
  Status CompactLog(LogIndex index, std::string data) {
    return CompactLog(index, InMemorySnapshot(std::move(data)));
  }
  // Proposes a single-member change (leader only): add a learner, promote a learner that has
  // caught up, or remove a member. Busy while the previous change is uncommitted.
  Result<LogIndex> ProposeMembershipChange(MembershipChange change);

  bool HasReady() const;
  Ready TakeReady();
  void Advance();
  // With options.log_durability_reported: the shell's log now durably holds the entries up to
  // (index, generation). A report for entries that were truncated since is ignored (a later
  // report covers their replacements).
  void LogDurable(LogIndex index, Generation generation);

  // Observers (for the shell, tests and the simulator's invariant checker).
  NodeId id() const { return options_.id; }
  Role role() const { return role_; }
  Generation generation() const { return generation_; }
  NodeId voted_for() const { return voted_for_; }
  NodeId leader() const { return leader_; }
  const ReplicatedLog& log() const { return log_; }
  const std::set<NodeId>& voters() const { return membership_.voters; }
  const Membership& membership() const { return membership_; }
  // The membership in force at `index` (at or above the snapshot index): store it with a
  // snapshot taken there.
  Membership MembershipAt(LogIndex index) const;
  bool IsVoter() const { return membership_.voters.count(options_.id) != 0; }
  StaleReadBound StaleRead() const;
  const std::map<NodeId, Progress>& progress() const { return progress_; }

 private:
  friend struct RoleBehaviour;

  // replica.cc: common rules.
  static bool HasPlausibleNumbers(const Message& message);
  void CheckNoReadyOutstanding() const;
  void Send(Message message);
  void BecomeFollower(Generation generation, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate(bool transfer);
  void BecomeLeader();
  void ResetElectionTimer();
  bool ElectionTimedOut() const { return election_elapsed_ >= randomized_election_timeout_; }
  bool HeardFromLeaderRecently() const;
  void SetHardState(Generation generation, NodeId voted_for);
  // Every other member (leaders replicate to learners too), and the other voters.
  std::vector<NodeId> Peers() const;
  std::vector<NodeId> VotingPeers() const;
  // Membership bookkeeping: recompute from the log's membership entries from `from` on.
  void SyncMembershipFromLog(LogIndex from);
  void OnMembershipChanged();

  // follower.cc / candidate.cc / leader.cc: role behaviour, swapped in through `behaviour_`.
  void TickFollower();
  void TickLeader();
  void StepFollower(const Message& message);
  void StepCandidate(const Message& message);
  void StepLeader(const Message& message);

  // candidate.cc: elections.
  void Campaign(bool pre_vote, bool transfer);
  void HandleVoteRequest(const Message& message);

  // follower.cc: replication as a follower.
  void HeardFromLeader(const Message& message);
  void HandleAppend(const Message& message);
  void HandleHeartbeat(const Message& message);

  // leader.cc: replication as a leader.
  void SendAppend(NodeId peer, bool send_empty_if_nothing_new);
  void BroadcastAppend();
  void BroadcastHeartbeat(uint64_t read_round);
  void AnnounceCommit();
  bool CommitAnnouncementOwed() const;
  LogIndex CommitKnownBy(const Progress& progress) const;
  void HandleAppendResponse(const Message& message);
  void MaybeCommit();

  // snapshot.cc: sending and receiving snapshots.
  void SendSnapshotChunk(NodeId peer);
  void HandleSnapshotResponse(const Message& message);
  void HandleSnapshotChunk(const Message& message);

  // read_index.cc: reads.
  void HandleReadIndexRequest(NodeId requester, uint64_t read_id);
  void StartPendingReadRounds();
  void HandleReadAcknowledgement(NodeId from, uint64_t read_round);
  void ReleaseAppliedReads();
  void FailPendingReads(const Status& status);
  void FailForwardedReads();
  void RejectReadIndex(const Message& request);

  ReplicaOptions options_;
  std::mt19937_64 random_;
  Role role_ = Role::kFollower;
  Generation generation_;
  NodeId voted_for_;
  NodeId leader_;
  ReplicatedLog log_;
  Membership snapshot_membership_;                // In force at the snapshot index.
  std::map<LogIndex, Membership> membership_entries_;  // Membership entries in the log.
  Membership membership_;                         // In force now: the newest of the above.
  std::map<NodeId, bool> votes_;
  std::map<NodeId, Progress> progress_;  // Leader only: one per peer.
  std::set<NodeId> recently_active_;     // Leader only: peers heard from since the last check.
  uint32_t election_elapsed_ = 0;
  uint64_t ticks_since_leader_contact_ = 0;  // For StaleRead.
  LogIndex leader_commit_seen_;              // The highest commit index a leader told us.
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_election_timeout_ = 0;
  NodeId transfer_target_;               // Leader only: a leadership transfer under way.
  uint32_t transfer_elapsed_ = 0;

  // Reads (read_index.cc).
  struct PendingRead {
    uint64_t read_id;
    NodeId requester;       // Ourselves, or the follower that asked.
    LogIndex index;         // The commit index when the read arrived.
    uint64_t read_round;    // The heartbeat round that must be acknowledged by a majority.
  };
  uint64_t read_round_ = 0;
  std::vector<PendingRead> reads_awaiting_round_;     // Leader: before a round confirms them.
  std::map<NodeId, uint64_t> read_round_acknowledged_;  // Leader: highest round each peer acked.
  std::vector<ReadState> reads_awaiting_apply_;       // Confirmed; served once applied.
  std::set<uint64_t> forwarded_reads_;                // Follower: sent to the leader below.
  NodeId forwarded_reads_leader_;
  std::vector<ReadState> reads_ready_;

  // Low-Water Mark: the newest snapshot's data (for lagging followers), and one being received.
  std::shared_ptr<const SnapshotSource> snapshot_data_;
  struct IncomingSnapshot {
    NodeId from;
    LogIndex index;
    Generation generation;
    std::string data;
  };
  std::optional<IncomingSnapshot> incoming_snapshot_;

  // The output being accumulated.
  Ready ready_;
  std::optional<Snapshot> snapshot_to_install_;
  std::optional<HardState> last_persisted_hard_state_;
  bool ready_outstanding_ = false;
  LogIndex durable_index_;  // The highest index of this replica's own log known durable.
};

}  // namespace cairn::consensus
