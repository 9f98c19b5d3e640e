// Replica: the rules common to every role (see replica.h for the design note).
#include "consensus/replica.h"

#include <fmt/format.h>

#include "base/check.h"
#include "consensus/quorum.h"

namespace cairn::consensus {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

// Role behaviour is swapped in through this table rather than tested with `if (role == ...)`
// throughout: each role names its tick and message handlers.
struct RoleBehaviour {
  void (Replica::*tick)();
  void (Replica::*step)(const Message&);

  static const RoleBehaviour& Of(Role role);
};

const RoleBehaviour& RoleBehaviour::Of(Role role) {
  static const RoleBehaviour kFollower{&Replica::TickFollower, &Replica::StepFollower};
  static const RoleBehaviour kCandidate{&Replica::TickFollower, &Replica::StepCandidate};
  static const RoleBehaviour kLeader{&Replica::TickLeader, &Replica::StepLeader};
  switch (role) {
    case Role::kFollower: return kFollower;
    case Role::kPreCandidate:
    case Role::kCandidate: return kCandidate;
    case Role::kLeader: return kLeader;
  }
  return kFollower;
}

Replica::Replica(ReplicaOptions options, RecoveredState recovered)
    : options_(std::move(options)),
      random_(options_.random_seed),
      generation_(recovered.hard_state.generation),
      voted_for_(recovered.hard_state.voted_for),
      log_(recovered.snapshot_index, recovered.snapshot_generation, std::move(recovered.entries)),
      snapshot_data_(recovered.snapshot_source != nullptr
                         ? std::move(recovered.snapshot_source)
                         : InMemorySnapshot(std::move(recovered.snapshot_data))),
      last_persisted_hard_state_(recovered.hard_state),
      durable_index_(log_.last_index()) {
  CAIRN_CHECK(options_.id != NodeId(0), "a replica has a non-zero id");
  CAIRN_CHECK(options_.election_timeout_ticks > options_.heartbeat_interval_ticks,
              "the election timeout ({} ticks) exceeds the heartbeat interval ({} ticks)",
              options_.election_timeout_ticks, options_.heartbeat_interval_ticks);
  CAIRN_CHECK(options_.appends_in_flight_max > 0 && options_.append_entries_max > 0,
              "pipeline bounds are positive");
  snapshot_membership_ = recovered.snapshot_membership.value_or(
      Membership{options_.voters, options_.learners});
  SyncMembershipFromLog(log_.first_index());
  ResetElectionTimer();
}

void Replica::CheckNoReadyOutstanding() const {
  CAIRN_CHECK(!ready_outstanding_,
              "replica {}: a Ready was taken but not advanced; carry it out and call Advance "
              "before the next input",
              options_.id);
}

std::vector<NodeId> Replica::Peers() const {
  std::vector<NodeId> peers;
  for (const std::set<NodeId>* members : {&membership_.voters, &membership_.learners}) {
    for (NodeId member : *members) {
      if (member != options_.id) peers.push_back(member);
    }
  }
  return peers;
}

std::vector<NodeId> Replica::VotingPeers() const {
  std::vector<NodeId> peers;
  for (NodeId voter : membership_.voters) {
    if (voter != options_.id) peers.push_back(voter);
  }
  return peers;
}

Membership Replica::MembershipAt(LogIndex index) const {
  CAIRN_CHECK(index >= log_.snapshot_index(), "membership is known from the snapshot on ({} < {})",
              index, log_.snapshot_index());
  auto after = membership_entries_.upper_bound(index);
  if (after == membership_entries_.begin()) return snapshot_membership_;
  return std::prev(after)->second;
}

void Replica::SyncMembershipFromLog(LogIndex from) {
  membership_entries_.erase(membership_entries_.lower_bound(from), membership_entries_.end());
  for (LogIndex index = std::max(from, log_.first_index()); index <= log_.last_index();
       index = index.next()) {
    const wal::Entry& entry = log_.At(index);
    if (entry.type != static_cast<uint8_t>(EntryType::kMembership)) continue;
    // A leader validated the membership it proposed; one that does not decode came from a broken
    // peer and is treated as carrying no change.
    if (auto membership = DecodeMembership(entry.payload); membership.ok()) {
      membership_entries_[index] = *membership;
    }
  }
  const Membership next =
      membership_entries_.empty() ? snapshot_membership_ : membership_entries_.rbegin()->second;
  if (next != membership_) {
    membership_ = next;
    OnMembershipChanged();
  }
}

void Replica::OnMembershipChanged() {
  if (role_ != Role::kLeader) return;
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = membership_.Contains(it->first) ? std::next(it) : progress_.erase(it);
  }
  for (NodeId peer : Peers()) {
    if (progress_.count(peer) == 0) {
      Progress progress;
      progress.BecomeProbe(log_.last_index().next());
      progress_[peer] = progress;
    }
  }
}

void Replica::Send(Message message) {
  message.from = options_.id;
  if (message.generation == Generation(0)) message.generation = generation_;
  ready_.messages.push_back(std::move(message));
}

void Replica::SetHardState(Generation generation, NodeId voted_for) {
  CAIRN_CHECK(generation >= generation_, "the generation never goes back ({} < {})", generation,
              generation_);
  CAIRN_CHECK(generation > generation_ || voted_for_ == NodeId(0) || voted_for_ == voted_for,
              "one vote per generation: replica {} voted for {} in {}, not {}", options_.id,
              voted_for_, generation_, voted_for);
  generation_ = generation;
  voted_for_ = voted_for;
}

void Replica::ResetElectionTimer() {
  election_elapsed_ = 0;
  const uint32_t base = options_.election_timeout_ticks;
  randomized_election_timeout_ = base + static_cast<uint32_t>(random_() % base);
}

bool Replica::HeardFromLeaderRecently() const {
  return leader_ != NodeId(0) && election_elapsed_ < options_.election_timeout_ticks;
}

void Replica::BecomeFollower(Generation generation, NodeId leader) {
  const bool was_leader = role_ == Role::kLeader;
  if (generation > generation_) SetHardState(generation, NodeId(0));
  role_ = Role::kFollower;
  leader_ = leader;
  votes_.clear();
  progress_.clear();
  recently_active_.clear();
  transfer_target_ = NodeId(0);
  heartbeat_elapsed_ = 0;
  ResetElectionTimer();
  if (was_leader) {
    FailPendingReads(Status::NotLeader(fmt::format(
        "replica {} lost leadership in generation {} before confirming the read", options_.id,
        generation_)));
  }
  if (leader != forwarded_reads_leader_) FailForwardedReads();
}

bool Replica::HasPlausibleNumbers(const Message& message) {
  // Generations and indexes grow by one at a time and never come near 2^62 in practice; a larger
  // value comes from a broken or hostile peer, and adopting it would make `next()` overflow later
  // (a maximal generation would be persisted and crash every member at its next election).
  constexpr uint64_t kPlausibleMax = uint64_t{1} << 62;
  for (uint64_t value : {message.generation.value(), message.log_index.value(),
                         message.log_generation.value(), message.commit_index.value(),
                         message.match_index.value(), message.hint_index.value(),
                         message.hint_generation.value()}) {
    if (value >= kPlausibleMax) return false;
  }
  return message.entries.size() < kPlausibleMax;
}

StaleReadBound Replica::StaleRead() const {
  StaleReadBound bound;
  bound.applied_index = log_.applied_index();
  bound.leader_known = leader_ != NodeId(0);
  if (role_ == Role::kLeader) {
    bound.leader_commit_index = log_.commit_index();
    bound.ticks_since_leader_contact = 0;
  } else {
    bound.leader_commit_index = std::max(leader_commit_seen_, log_.commit_index());
    bound.ticks_since_leader_contact = ticks_since_leader_contact_;
  }
  bound.entries_behind_at_last_contact =
      bound.leader_commit_index.value() - std::min(bound.leader_commit_index, bound.applied_index).value();
  return bound;
}

void Replica::Tick() {
  CheckNoReadyOutstanding();
  ++ticks_since_leader_contact_;
  (this->*RoleBehaviour::Of(role_).tick)();
}

void Replica::Step(const Message& message) {
  CheckNoReadyOutstanding();
  // What a peer sends is input, not an invariant: anything misaddressed, from ourselves, or with
  // implausible numbers is dropped. Messages from outside our membership are processed: our view
  // of the membership may be stale (a leader we have not yet heard added, a removal that will be
  // truncated), as the Raft dissertation (4.1) requires; a removed server cannot disrupt the
  // cluster because pre-vote and leader stickiness refuse it while a leader is alive.
  if (message.to != options_.id || message.from == options_.id || message.from == NodeId(0) ||
      !HasPlausibleNumbers(message)) {
    return;
  }
  if (message.generation > generation_) {
    const bool pre_vote_traffic =
        message.type == MessageType::kPreVote ||
        (message.type == MessageType::kPreVoteResponse && message.granted);
    if (pre_vote_traffic) {
      // Pre-vote never changes anyone's generation: that is its whole point.
    } else if (message.type == MessageType::kVote && options_.check_quorum && !message.transfer &&
               HeardFromLeaderRecently()) {
      // A leader is alive and well: a candidate that could not hear it must not depose it.
      return;
    } else {
      const bool from_leader = message.type == MessageType::kAppend ||
                               message.type == MessageType::kHeartbeat ||
                               message.type == MessageType::kSnapshot;
      BecomeFollower(message.generation, from_leader ? message.from : NodeId(0));
    }
  } else if (message.generation < generation_) {
    if (message.type == MessageType::kAppend || message.type == MessageType::kHeartbeat ||
        message.type == MessageType::kSnapshot) {
      // A leader of an older generation: answer so that it learns the newer generation and
      // steps down (with check-quorum it would otherwise hold on to its followers' silence).
      Send(Message{.type = MessageType::kAppendResponse, .to = message.from, .rejected = true});
    } else if (message.type == MessageType::kPreVote) {
      Send(Message{.type = MessageType::kPreVoteResponse, .to = message.from, .granted = false});
    }
    return;
  }
  if (message.type == MessageType::kPreVote || message.type == MessageType::kVote) {
    HandleVoteRequest(message);
    return;
  }
  (this->*RoleBehaviour::Of(role_).step)(message);
}

bool Replica::HasReady() const {
  return !ready_.messages.empty() || snapshot_to_install_.has_value() ||
         !last_persisted_hard_state_ ||
         *last_persisted_hard_state_ != HardState{generation_, voted_for_} ||
         log_.HasUnpersisted() || log_.commit_index() > log_.applied_index() ||
         CommitAnnouncementOwed() ||
         (options_.planted_bug == PlantedBug::kApplyAboveHighWaterMark &&
          log_.last_index() > log_.applied_index()) ||
         !reads_ready_.empty() ||
         std::any_of(reads_awaiting_apply_.begin(), reads_awaiting_apply_.end(),
                     [&](const ReadState& read) { return read.index <= log_.applied_index(); });
}

Ready Replica::TakeReady() {
  CheckNoReadyOutstanding();
  if (role_ == Role::kLeader) AnnounceCommit();
  Ready ready = std::move(ready_);
  ready_ = Ready();
  const HardState hard_state{generation_, voted_for_};
  if (!last_persisted_hard_state_ || *last_persisted_hard_state_ != hard_state) {
    ready.hard_state = hard_state;
  }
  ready.snapshot = std::move(snapshot_to_install_);
  snapshot_to_install_.reset();
  ReplicatedLog::Unpersisted unpersisted = log_.TakeUnpersisted();
  if (options_.log_durability_reported && unpersisted.truncate_after) {
    durable_index_ = std::min(durable_index_, *unpersisted.truncate_after);
  }
  ready.truncate_after = unpersisted.truncate_after;
  ready.entries = std::move(unpersisted.entries);
  // Nothing above the High-Water Mark is applied (unless the simulator planted that bug).
  const LogIndex apply_through = options_.planted_bug == PlantedBug::kApplyAboveHighWaterMark
                                     ? log_.last_index()
                                     : log_.commit_index();
  ready.committed = log_.TakeToApply(apply_through);
  ReleaseAppliedReads();
  ready.reads = std::move(reads_ready_);
  reads_ready_.clear();
  ready_outstanding_ = true;
  return ready;
}

void Replica::Advance() {
  CAIRN_CHECK(ready_outstanding_, "Advance follows TakeReady");
  ready_outstanding_ = false;
  last_persisted_hard_state_ = HardState{generation_, voted_for_};
  // Everything the Ready asked to persist is durable now, including a truncation (unless the
  // shell reports log durability on its own).
  if (!options_.log_durability_reported) durable_index_ = log_.last_index();
  if (role_ == Role::kLeader) MaybeCommit();
}

void Replica::LogDurable(LogIndex index, Generation generation) {
  CheckNoReadyOutstanding();
  CAIRN_CHECK(options_.log_durability_reported,
              "LogDurable is only for replicas whose shell reports durability");
  // Below the snapshot: covered by it already. Not matching: truncated since the write began.
  if (index < log_.snapshot_index() || !log_.Matches(index, generation)) return;
  if (index <= durable_index_) return;
  durable_index_ = index;
  if (role_ == Role::kLeader) MaybeCommit();
}

}  // namespace cairn::consensus
