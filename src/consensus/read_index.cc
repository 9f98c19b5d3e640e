// Linearizable reads by read index, and Follower Reads.
//
// A read is linearizable if it observes every write that completed before it started. The leader
// records its commit index when the read arrives, confirms with a heartbeat round acknowledged by
// a majority that it was still the leader at that moment (no newer leader can have committed
// anything it has not), and serves the read once it has applied up to that index. A follower
// asks the leader for such an index (kReadIndex) and serves the read from its own state machine
// once it has applied that far: linearizable, without going through the leader's state machine.
// A new leader first commits an entry of its own generation, since until then its commit index
// may lag behind what earlier leaders committed.
#include <fmt/format.h>

#include "base/check.h"
#include "consensus/quorum.h"
#include "consensus/replica.h"

namespace cairn::consensus {

Status Replica::ReadIndex(uint64_t read_id) {
  CheckNoReadyOutstanding();
  const size_t pending = reads_awaiting_round_.size() + reads_awaiting_apply_.size();
  if (pending >= options_.reads_pending_max) {
    return Status::Busy(fmt::format("{} reads are already waiting", pending));
  }
  if (role_ == Role::kLeader) {
    HandleReadIndexRequest(options_.id, read_id);
    return Status::Ok();
  }
  if (leader_ == NodeId(0)) {
    return Status::NotLeader(fmt::format("replica {} knows no leader to confirm a read",
                                         options_.id));
  }
  if (leader_ != forwarded_reads_leader_) FailForwardedReads();
  forwarded_reads_leader_ = leader_;
  forwarded_reads_.insert(read_id);
  Send(Message{.type = MessageType::kReadIndex, .to = leader_, .read_id = read_id});
  return Status::Ok();
}

void Replica::RejectReadIndex(const Message& request) {
  Send(Message{.type = MessageType::kReadIndexResponse,
               .to = request.from,
               .rejected = true,
               .read_id = request.read_id});
}

void Replica::FailForwardedReads() {
  // The leader we asked is gone (or we are no longer its follower): its answer may never come.
  for (uint64_t read_id : forwarded_reads_) {
    reads_ready_.push_back(ReadState{
        read_id, LogIndex(0),
        Status::NotLeader(fmt::format("the leader {} that replica {} asked to confirm the read "
                                      "is no longer its leader",
                                      forwarded_reads_leader_, options_.id))});
  }
  forwarded_reads_.clear();
  forwarded_reads_leader_ = NodeId(0);
}

void Replica::HandleReadIndexRequest(NodeId requester, uint64_t read_id) {
  if (requester != options_.id && reads_awaiting_round_.size() >= options_.reads_pending_max) {
    RejectReadIndex(Message{.from = requester, .read_id = read_id});
    return;
  }
  if (options_.planted_bug == PlantedBug::kReadWithoutHeartbeat) {
    // The bug: trust our own belief that we lead, and answer at once.
    if (requester == options_.id) {
      reads_awaiting_apply_.push_back(ReadState{read_id, log_.commit_index(), Status()});
    } else {
      Send(Message{.type = MessageType::kReadIndexResponse,
                   .to = requester,
                   .log_index = log_.commit_index(),
                   .read_id = read_id});
    }
    return;
  }
  reads_awaiting_round_.push_back(PendingRead{read_id, requester, log_.commit_index(), 0});
  const bool committed_in_generation =
      log_.GenerationAt(log_.commit_index()) == std::optional<Generation>(generation_);
  if (committed_in_generation) StartPendingReadRounds();
}

void Replica::StartPendingReadRounds() {
  bool started = false;
  for (PendingRead& read : reads_awaiting_round_) {
    if (read.read_round != 0) continue;
    if (!started) {
      ++read_round_;
      started = true;
    }
    read.index = log_.commit_index();
    read.read_round = read_round_;
  }
  if (!started) return;
  if (membership_.voters.size() == 1 && IsVoter()) {
    HandleReadAcknowledgement(options_.id, read_round_);  // We are the majority.
  } else {
    BroadcastHeartbeat(read_round_);
  }
}

void Replica::HandleReadAcknowledgement(NodeId from, uint64_t read_round) {
  if (role_ != Role::kLeader || read_round == 0) return;
  uint64_t& acknowledged = read_round_acknowledged_[from];
  acknowledged = std::max(acknowledged, read_round);
  std::vector<PendingRead> still_waiting;
  for (const PendingRead& read : reads_awaiting_round_) {
    size_t confirmations = IsVoter() ? 1 : 0;  // Ourselves.
    if (read.read_round != 0) {
      for (NodeId peer : VotingPeers()) {
        auto found = read_round_acknowledged_.find(peer);
        if (found != read_round_acknowledged_.end() && found->second >= read.read_round) {
          ++confirmations;
        }
      }
    }
    if (read.read_round == 0 || confirmations < MajorityOf(membership_.voters.size())) {
      still_waiting.push_back(read);
      continue;
    }
    if (read.requester == options_.id) {
      reads_awaiting_apply_.push_back(ReadState{read.read_id, read.index, Status()});
    } else {
      Send(Message{.type = MessageType::kReadIndexResponse,
                   .to = read.requester,
                   .log_index = read.index,
                   .read_id = read.read_id});
    }
  }
  reads_awaiting_round_ = std::move(still_waiting);
}

void Replica::ReleaseAppliedReads() {
  std::vector<ReadState> still_waiting;
  for (ReadState& read : reads_awaiting_apply_) {
    if (read.index <= log_.applied_index()) {
      reads_ready_.push_back(std::move(read));
    } else {
      still_waiting.push_back(std::move(read));
    }
  }
  reads_awaiting_apply_ = std::move(still_waiting);
}

void Replica::FailPendingReads(const Status& status) {
  for (const PendingRead& read : reads_awaiting_round_) {
    if (read.requester == options_.id) {
      reads_ready_.push_back(ReadState{read.read_id, LogIndex(0), status});
    } else {
      Send(Message{.type = MessageType::kReadIndexResponse,
                   .to = read.requester,
                   .rejected = true,
                   .read_id = read.read_id});
    }
  }
  reads_awaiting_round_.clear();
}

}  // namespace cairn::consensus
