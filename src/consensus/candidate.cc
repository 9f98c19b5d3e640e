// Elections: pre-vote, vote, and the candidate roles (Leader and Followers, Generation Clock).
#include "base/check.h"
#include "consensus/quorum.h"
#include "consensus/replica.h"

namespace cairn::consensus {

void Replica::TickFollower() {
  ++election_elapsed_;
  // Only voters campaign: a learner, or a replica removed (or not yet added), waits. But a
  // replica that is a voter in the membership known committed, or in any membership change after
  // it, may still be needed: while its removal is uncommitted its log may be the only one up to
  // date enough to win, and without it the change could never commit. (Found by the simulator:
  // a promoted-then-removed replica with the longest log, and the other voter unable to win.)
  if (!ElectionTimedOut()) return;
  bool may_campaign = IsVoter() || MembershipAt(log_.commit_index()).voters.count(options_.id) != 0;
  for (auto it = membership_entries_.upper_bound(log_.commit_index());
       !may_campaign && it != membership_entries_.end(); ++it) {
    may_campaign = it->second.voters.count(options_.id) != 0;
  }
  if (may_campaign) Campaign(options_.pre_vote, /*transfer=*/false);
}

void Replica::Campaign(bool pre_vote, bool transfer) {
  if (pre_vote) {
    BecomePreCandidate();
  } else {
    BecomeCandidate(transfer);
  }
}

void Replica::BecomePreCandidate() {
  // A pre-candidate asks whether it *would* win in the next generation, without changing its own
  // generation or anyone else's: a node returning from a partition cannot disrupt a healthy
  // cluster by bumping the generation on every timeout.
  role_ = Role::kPreCandidate;
  leader_ = NodeId(0);
  FailForwardedReads();
  votes_ = {{options_.id, true}};
  ResetElectionTimer();
  if (TallyVotes(membership_.voters, votes_) == VoteResult::kWon) {
    BecomeCandidate(/*transfer=*/false);
    return;
  }
  for (NodeId peer : VotingPeers()) {
    Send(Message{.type = MessageType::kPreVote,
                 .to = peer,
                 .generation = generation_.next(),
                 .log_index = log_.last_index(),
                 .log_generation = log_.last_generation()});
  }
}

void Replica::BecomeCandidate(bool transfer) {
  // The new generation and our own vote are persisted (Ready.hard_state) before the vote requests
  // leave (Ready.messages): a crash can never let us vote twice in one generation.
  SetHardState(generation_.next(), options_.id);
  role_ = Role::kCandidate;
  leader_ = NodeId(0);
  FailForwardedReads();
  votes_ = {{options_.id, true}};
  ResetElectionTimer();
  if (TallyVotes(membership_.voters, votes_) == VoteResult::kWon) {
    BecomeLeader();
    return;
  }
  for (NodeId peer : VotingPeers()) {
    Send(Message{.type = MessageType::kVote,
                 .to = peer,
                 .log_index = log_.last_index(),
                 .log_generation = log_.last_generation(),
                 .transfer = transfer});
  }
}

void Replica::HandleVoteRequest(const Message& message) {
  const bool pre_vote = message.type == MessageType::kPreVote;
  // Leader stickiness: while we hear from a leader, refuse to help anyone replace it, unless the
  // leader itself asked for the transfer.
  const bool leader_alive = options_.check_quorum && !message.transfer && HeardFromLeaderRecently();
  const bool can_vote =
      pre_vote ? message.generation > generation_
               : voted_for_ == message.from || (voted_for_ == NodeId(0) && leader_ == NodeId(0)) ||
                     options_.planted_bug == PlantedBug::kDoubleVote;
  const bool up_to_date = log_.IsUpToDate(message.log_index, message.log_generation);
  const MessageType response_type =
      pre_vote ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  if (leader_alive || !can_vote || !up_to_date) {
    Send(Message{.type = response_type, .to = message.from, .granted = false});
    return;
  }
  if (!pre_vote) {
    if (options_.planted_bug == PlantedBug::kDoubleVote) voted_for_ = NodeId(0);  // Forget it.
    SetHardState(generation_, message.from);
    ResetElectionTimer();
  }
  Send(Message{.type = response_type,
               .to = message.from,
               .generation = message.generation,
               .granted = true});
}

void Replica::StepCandidate(const Message& message) {
  switch (message.type) {
    case MessageType::kPreVoteResponse:
    case MessageType::kVoteResponse: {
      const bool expected = (role_ == Role::kPreCandidate) ==
                            (message.type == MessageType::kPreVoteResponse);
      if (!expected) return;  // An answer to an earlier campaign.
      // A pre-vote grant names the generation it was for; a late one for an earlier pre-campaign
      // must not count towards this one.
      if (message.type == MessageType::kPreVoteResponse && message.granted &&
          message.generation != generation_.next()) {
        return;
      }
      votes_[message.from] = message.granted;
      switch (TallyVotes(membership_.voters, votes_)) {
        case VoteResult::kWon:
          if (role_ == Role::kPreCandidate) {
            BecomeCandidate(/*transfer=*/false);
          } else {
            BecomeLeader();
          }
          return;
        case VoteResult::kLost:
          BecomeFollower(generation_, NodeId(0));
          return;
        case VoteResult::kPending:
          return;
      }
      return;
    }
    case MessageType::kReadIndex:
      RejectReadIndex(message);  // Only the leader answers; ask it.
      return;
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // Someone won this generation: follow it.
      BecomeFollower(generation_, message.from);
      StepFollower(message);
      return;
    default:
      return;
  }
}

}  // namespace cairn::consensus
