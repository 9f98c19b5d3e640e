// The leader role: replication, the Request Pipeline, HeartBeat, Quorum commit, check-quorum and
// leadership transfer.
#include <fmt/format.h>

#include "base/check.h"
#include "consensus/quorum.h"
#include "consensus/replica.h"

namespace cairn::consensus {

void Replica::BecomeLeader() {
  CAIRN_CHECK(role_ == Role::kCandidate, "only a candidate becomes leader (was {})",
              RoleName(role_));
  role_ = Role::kLeader;
  leader_ = options_.id;
  votes_.clear();
  recently_active_.clear();
  read_round_acknowledged_.clear();
  heartbeat_elapsed_ = 0;
  election_elapsed_ = 0;
  progress_.clear();
  for (NodeId peer : Peers()) {
    Progress progress;
    progress.BecomeProbe(log_.last_index().next());
    progress_[peer] = progress;
  }
  // An entry of our own generation: until it commits, entries of earlier generations cannot be
  // counted as committed (only the leader's own generation commits by quorum).
  log_.Append(wal::Entry{log_.last_index().next(), generation_,
                         static_cast<uint8_t>(EntryType::kNoOp), std::string()});
  BroadcastAppend();
}

void Replica::TickLeader() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (heartbeat_elapsed_ >= options_.heartbeat_interval_ticks) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat(read_round_);
  }
  if (transfer_target_ != NodeId(0) && ++transfer_elapsed_ >= options_.election_timeout_ticks) {
    transfer_target_ = NodeId(0);  // The target did not take over in time: carry on leading.
  }
  if (election_elapsed_ >= options_.election_timeout_ticks) {
    election_elapsed_ = 0;
    if (options_.check_quorum) {
      size_t active = IsVoter() ? 1 : 0;  // Ourselves.
      for (NodeId peer : VotingPeers()) active += recently_active_.count(peer);
      recently_active_.clear();
      if (active < MajorityOf(membership_.voters.size())) {
        // We cannot reach a majority: another leader may already exist. Stop serving.
        BecomeFollower(generation_, NodeId(0));
      }
    }
  }
}

void Replica::StepLeader(const Message& message) {
  switch (message.type) {
    case MessageType::kAppendResponse:
      recently_active_.insert(message.from);
      HandleAppendResponse(message);
      return;
    case MessageType::kHeartbeatResponse: {
      recently_active_.insert(message.from);
      auto found = progress_.find(message.from);
      if (found != progress_.end()) {
        Progress& progress = found->second;
        // The follower is reachable. Appends or their answers may have been lost: let one more
        // message go (a lost probe is resent; a full pipeline frees its oldest slot), so that
        // replication never stalls on a message that will never be answered.
        progress.probe_sent = false;
        progress.snapshot_chunk_sent = false;
        if (progress.state == Progress::State::kReplicate &&
            progress.in_flight.size() >= options_.appends_in_flight_max) {
          progress.in_flight.pop_front();
        }
        if (progress.match < log_.last_index()) SendAppend(message.from, true);
      }
      HandleReadAcknowledgement(message.from, message.read_round);
      return;
    }
    case MessageType::kReadIndex:
      HandleReadIndexRequest(message.from, message.read_id);
      return;
    case MessageType::kSnapshotResponse:
      recently_active_.insert(message.from);
      HandleSnapshotResponse(message);
      return;
    default:
      return;
  }
}

Result<LogIndex> Replica::Propose(std::string payload) {
  std::vector<std::string> payloads;
  payloads.push_back(std::move(payload));
  return ProposeBatch(std::move(payloads));
}

Result<LogIndex> Replica::ProposeBatch(std::vector<std::string> payloads) {
  CheckNoReadyOutstanding();
  if (role_ != Role::kLeader) {
    return Status::NotLeader(leader_ == NodeId(0)
                                 ? fmt::format("replica {} knows no leader", options_.id)
                                 : fmt::format("replica {} is not the leader; the leader is {}",
                                               options_.id, leader_));
  }
  if (transfer_target_ != NodeId(0)) {
    return Status::Busy(fmt::format("leadership is being transferred to {}", transfer_target_));
  }
  CAIRN_CHECK(!payloads.empty(), "a proposal batch holds at least one command");
  const LogIndex first = log_.last_index().next();
  for (std::string& payload : payloads) {
    log_.Append(wal::Entry{log_.last_index().next(), generation_,
                           static_cast<uint8_t>(EntryType::kCommand), std::move(payload)});
  }
  // One round of appends for the whole batch (Request Pipeline: the batch travels together).
  BroadcastAppend();
  return first;
}

Status Replica::TransferLeadership(NodeId target) {
  CheckNoReadyOutstanding();
  if (role_ != Role::kLeader) return Status::NotLeader("only the leader transfers leadership");
  if (target == options_.id || membership_.voters.count(target) == 0) {
    return Status::InvalidArgument(fmt::format("{} is not another voting member", target));
  }
  transfer_target_ = target;
  transfer_elapsed_ = 0;
  const Progress& progress = progress_.at(target);
  if (progress.match == log_.last_index()) {
    Send(Message{.type = MessageType::kTimeoutNow, .to = target});
  } else {
    SendAppend(target, true);
  }
  return Status::Ok();
}

void Replica::SendAppend(NodeId peer, bool send_empty_if_nothing_new) {
  Progress& progress = progress_.at(peer);
  const LogIndex previous = progress.next.prev();
  if (progress.state == Progress::State::kSnapshot || previous < log_.snapshot_index()) {
    // The follower needs entries that the log no longer holds: send the snapshot instead.
    SendSnapshotChunk(peer);
    return;
  }
  if (!progress.CanSend(options_.appends_in_flight_max)) return;
  const std::optional<Generation> previous_generation = log_.GenerationAt(previous);
  CAIRN_CHECK(previous_generation.has_value(),
              "the leader holds the entry before {} for follower {} (snapshot at {})",
              progress.next, peer, log_.snapshot_index());
  std::vector<wal::Entry> entries;
  if (progress.next <= log_.last_index()) {
    const LogIndex last =
        std::min(log_.last_index(),
                 LogIndex(progress.next.value() + options_.append_entries_max - 1));
    entries = log_.Slice(progress.next, last, options_.append_bytes_max);
  }
  if (entries.empty() && !send_empty_if_nothing_new) return;
  if (progress.state == Progress::State::kProbe) {
    progress.probe_sent = true;
  } else if (!entries.empty()) {
    progress.next = entries.back().index.next();
    progress.in_flight.push_back(entries.back().index);
  }
  // The follower commits no further than the last entry this append gives it.
  progress.commit_sent = std::max(
      progress.commit_sent,
      std::min(log_.commit_index(), entries.empty() ? previous : entries.back().index));
  Send(Message{.type = MessageType::kAppend,
               .to = peer,
               .log_index = previous,
               .log_generation = *previous_generation,
               .entries = std::move(entries),
               .commit_index = log_.commit_index()});
}

LogIndex Replica::CommitKnownBy(const Progress& progress) const {
  // A follower may be told to commit only entries it is known to hold.
  return std::min(progress.match, log_.commit_index());
}

bool Replica::CommitAnnouncementOwed() const {
  if (role_ != Role::kLeader || options_.planted_bug == PlantedBug::kCommitNoticeWaitsForHeartbeat) {
    return false;
  }
  for (const auto& [peer, progress] : progress_) {
    if (CommitKnownBy(progress) > progress.commit_sent) return true;
  }
  return false;
}

void Replica::AnnounceCommit() {
  // A follower learns that the commit index moved past an entry it holds with the next message
  // the leader sends it. Waiting for the next heartbeat would hold a write forwarded by that
  // follower (which answers its client once it has applied the entry) for up to a heartbeat
  // interval. So every Ready tells each follower what it may now commit: the commit advancing,
  // or the follower's own acknowledgement arriving after the quorum's (the slower follower is
  // often the one that forwarded the write). HasReady counts an owed announcement as work.
  // Under load the appends of the same Ready carry the commit index and nothing extra is sent.
  if (options_.planted_bug == PlantedBug::kCommitNoticeWaitsForHeartbeat) return;
  for (NodeId peer : Peers()) {
    Progress& progress = progress_.at(peer);
    const LogIndex known = CommitKnownBy(progress);
    if (known <= progress.commit_sent) continue;
    progress.commit_sent = known;
    Send(Message{.type = MessageType::kHeartbeat, .to = peer, .commit_index = known});
  }
}

void Replica::BroadcastAppend() {
  for (NodeId peer : Peers()) {
    Progress& progress = progress_.at(peer);
    if (progress.state != Progress::State::kReplicate) {
      SendAppend(peer, true);
      continue;
    }
    // Fill the pipeline window; each message advances `next`, so this ends within the bound.
    for (uint32_t sent = 0; sent < options_.appends_in_flight_max; ++sent) {
      if (progress.next > log_.last_index() || !progress.CanSend(options_.appends_in_flight_max)) {
        break;
      }
      SendAppend(peer, false);
    }
  }
}

void Replica::BroadcastHeartbeat(uint64_t read_round) {
  for (NodeId peer : Peers()) {
    Progress& progress = progress_.at(peer);
    const LogIndex known = CommitKnownBy(progress);
    progress.commit_sent = std::max(progress.commit_sent, known);
    Send(Message{.type = MessageType::kHeartbeat,
                 .to = peer,
                 .commit_index = known,
                 .read_round = read_round});
  }
}

void Replica::HandleAppendResponse(const Message& message) {
  auto found = progress_.find(message.from);
  if (found == progress_.end()) return;
  Progress& progress = found->second;
  if (message.rejected) {
    if (message.log_index < progress.match) return;  // An answer to an old probe.
    if (progress.state == Progress::State::kSnapshot) return;  // About appends sent before it.
    // A rejection of an index we never sent comes from a broken peer: ignore it.
    if (message.log_index >= progress.next || message.log_index > log_.last_index()) return;
    if (progress.state == Progress::State::kProbe && message.log_index != progress.next.prev()) {
      return;  // Not the probe we are waiting for.
    }
    LogIndex next = message.hint_index;
    if (message.hint_generation != Generation(0)) {
      // Skip the follower's whole conflicting generation; if we hold entries of that generation,
      // resume right after our last one.
      if (auto ours = log_.LastIndexOfGeneration(message.hint_generation, message.log_index)) {
        next = ours->next();
      }
    }
    // Always move strictly back from the rejected position, and never below what matches.
    next = std::max(progress.match.next(), std::min(next, message.log_index));
    progress.BecomeProbe(next);
    SendAppend(message.from, true);
    return;
  }
  if (message.match_index > log_.last_index()) return;  // Claims entries we never sent.
  if (message.match_index > progress.match) progress.match = message.match_index;
  progress.Acknowledge(message.match_index);
  if (progress.state != Progress::State::kReplicate) {
    progress.BecomeReplicate();  // From probing, or after the snapshot was installed.
  } else if (progress.next <= progress.match) {
    progress.next = progress.match.next();
  }
  MaybeCommit();
  // Committing may have ended our leadership (a leader that removed itself steps down), which
  // drops every Progress: look ours up again rather than trust the reference.
  if (role_ != Role::kLeader) return;
  auto still = progress_.find(message.from);
  if (still == progress_.end()) return;
  Progress& current = still->second;
  if (message.from == transfer_target_ && current.match == log_.last_index()) {
    Send(Message{.type = MessageType::kTimeoutNow, .to = message.from});
  }
  for (uint32_t sent = 0; sent < options_.appends_in_flight_max; ++sent) {
    if (current.next > log_.last_index() || !current.CanSend(options_.appends_in_flight_max)) {
      break;
    }
    SendAppend(message.from, false);
  }
}

void Replica::MaybeCommit() {
  if (role_ != Role::kLeader) return;
  // Our own copy counts only as far as it is durable, and not past a truncation that has not
  // reached the disk yet (the old entries were durable, their replacements are not).
  const LogIndex own_durable = std::min(durable_index_,
                                        log_.pending_truncate_after().value_or(durable_index_));
  std::map<NodeId, LogIndex> match_indexes = {{options_.id, own_durable}};
  for (const auto& [peer, progress] : progress_) match_indexes[peer] = progress.match;
  LogIndex candidate = CommittedIndex(membership_.voters, match_indexes);
  if (options_.planted_bug == PlantedBug::kCommitOnMinority) candidate = own_durable;
  if (candidate <= log_.commit_index()) return;
  // Quorum alone is not enough: only an entry of our own generation commits by counting
  // replicas; earlier entries commit with it (the Raft paper's figure 8).
  if (log_.GenerationAt(candidate) != std::optional<Generation>(generation_) &&
      options_.planted_bug != PlantedBug::kCommitOldGeneration) {
    return;
  }
  const bool first_commit_of_generation =
      log_.GenerationAt(log_.commit_index()) != std::optional<Generation>(generation_);
  log_.CommitTo(candidate);
  if (first_commit_of_generation) StartPendingReadRounds();
  // A leader that removed itself leads until that change commits, then steps down.
  const bool change_committed =
      membership_entries_.empty() || membership_entries_.rbegin()->first <= log_.commit_index();
  if (!IsVoter() && change_committed) BecomeFollower(generation_, NodeId(0));
}

Result<LogIndex> Replica::ProposeMembershipChange(MembershipChange change) {
  CheckNoReadyOutstanding();
  if (role_ != Role::kLeader) {
    return Status::NotLeader(fmt::format("replica {} is not the leader", options_.id));
  }
  if (transfer_target_ != NodeId(0)) {
    return Status::Busy(fmt::format("leadership is being transferred to {}", transfer_target_));
  }
  if (log_.GenerationAt(log_.commit_index()) != std::optional<Generation>(generation_)) {
    // Until an entry of its own generation commits, a new leader may not know of a change an
    // earlier leader left uncommitted: changing now could make two disjoint majorities.
    return Status::Busy("the leader has not committed an entry of its generation yet");
  }
  if (!membership_entries_.empty() && membership_entries_.rbegin()->first > log_.commit_index()) {
    return Status::Busy(fmt::format("a membership change (index {}) is still being committed",
                                    membership_entries_.rbegin()->first));
  }
  CAIRN_ASSIGN_OR_RETURN(Membership next, ApplyMembershipChange(membership_, change));
  if (change.kind == MembershipChange::Kind::kPromoteLearner &&
      progress_.at(change.node).match < log_.commit_index()) {
    return Status::Busy(fmt::format("learner {} has not caught up (at {}, commit {})",
                                    change.node, progress_.at(change.node).match,
                                    log_.commit_index()));
  }
  const LogIndex index = log_.last_index().next();
  log_.Append(wal::Entry{index, generation_, static_cast<uint8_t>(EntryType::kMembership),
                         EncodeMembership(next)});
  SyncMembershipFromLog(index);
  BroadcastAppend();
  MaybeCommit();
  return index;
}

}  // namespace cairn::consensus
