// The follower role: accepting the leader's log (Leader and Followers, High-Water Mark).
#include <fmt/format.h>

#include "base/check.h"
#include "consensus/replica.h"

namespace cairn::consensus {

void Replica::StepFollower(const Message& message) {
  switch (message.type) {
    case MessageType::kAppend:
      HeardFromLeader(message);
      HandleAppend(message);
      return;
    case MessageType::kHeartbeat:
      HeardFromLeader(message);
      HandleHeartbeat(message);
      return;
    case MessageType::kSnapshot:
      HeardFromLeader(message);
      HandleSnapshotChunk(message);
      return;
    case MessageType::kTimeoutNow:
      // Our leader hands over: campaign at once, skipping pre-vote, flagged as a transfer so that
      // the others vote although they heard from the leader recently.
      if (message.from == leader_ && IsVoter()) Campaign(/*pre_vote=*/false, /*transfer=*/true);
      return;
    case MessageType::kReadIndexResponse:
      if (message.from != forwarded_reads_leader_ || forwarded_reads_.erase(message.read_id) == 0) {
        return;  // Not a read we are waiting for (failed already, or never asked).
      }
      if (message.rejected) {
        reads_ready_.push_back(ReadState{
            message.read_id, LogIndex(0),
            Status::NotLeader(fmt::format("replica {} is no longer the leader", message.from))});
      } else {
        reads_awaiting_apply_.push_back(ReadState{message.read_id, message.log_index, Status()});
      }
      return;
    case MessageType::kReadIndex:
      RejectReadIndex(message);  // Only the leader answers; ask it.
      return;
    default:
      return;
  }
}

void Replica::HeardFromLeader(const Message& message) {
  // The leader of our generation is alive: reset the election timer, and remember how far it had
  // committed (for StaleRead).
  leader_ = message.from;
  election_elapsed_ = 0;
  ticks_since_leader_contact_ = 0;
  leader_commit_seen_ = std::max(leader_commit_seen_, message.commit_index);
}

namespace {

// A leader's append is peer input: check its shape before it touches the log.
bool AppendIsWellFormed(const Message& message) {
  // (Step already dropped values near the top of the number range, so next() cannot overflow.)
  LogIndex expected = message.log_index.next();
  Generation previous = message.log_generation;
  for (const wal::Entry& entry : message.entries) {
    if (entry.index != expected || entry.generation < previous ||
        entry.generation > message.generation || entry.type == 0) {
      return false;
    }
    previous = entry.generation;
    expected = expected.next();
  }
  return true;
}

}  // namespace

void Replica::HandleAppend(const Message& message) {
  if (!AppendIsWellFormed(message)) return;
  if (message.log_index < log_.commit_index()) {
    // Everything up to our commit index is settled; say how far we are.
    Send(Message{.type = MessageType::kAppendResponse,
                 .to = message.from,
                 .log_index = message.log_index,
                 .match_index = log_.commit_index()});
    return;
  }
  const bool matches = options_.planted_bug == PlantedBug::kSkipLogMatching
                           ? message.log_index <= log_.last_index()
                           : log_.Matches(message.log_index, message.log_generation);
  if (matches) {
    for (const wal::Entry& entry : message.entries) {
      // An entry that contradicts a committed one can only come from a broken peer: drop it.
      if (entry.index <= log_.commit_index() &&
          log_.GenerationAt(entry.index) != std::optional<Generation>(entry.generation)) {
        return;
      }
    }
    const LogIndex last_new =
        message.entries.empty() ? message.log_index : log_.AppendAfter(message.entries);
    if (!message.entries.empty()) SyncMembershipFromLog(message.entries.front().index);
    log_.CommitTo(std::min(message.commit_index, last_new));
    Send(Message{.type = MessageType::kAppendResponse,
                 .to = message.from,
                 .log_index = message.log_index,
                 .match_index = last_new});
    return;
  }
  // Log matching failed. Hint where the logs may agree: past our end, or at the start of our
  // conflicting generation, so the leader skips back a generation per round trip.
  Message rejection{.type = MessageType::kAppendResponse,
                    .to = message.from,
                    .log_index = message.log_index,
                    .rejected = true};
  if (message.log_index > log_.last_index()) {
    rejection.hint_index = log_.last_index().next();
  } else {
    const std::optional<Generation> held = log_.GenerationAt(message.log_index);
    CAIRN_CHECK(held.has_value(), "an index at or above the commit index is held ({})",
                message.log_index);
    rejection.hint_generation = *held;
    rejection.hint_index = log_.FirstIndexOfGenerationAt(message.log_index);
  }
  Send(std::move(rejection));
}

void Replica::HandleHeartbeat(const Message& message) {
  // A heartbeat's commit index never exceeds what the leader knows we hold; the min is for a
  // peer that breaks that promise.
  log_.CommitTo(std::min(message.commit_index, log_.last_index()));
  Send(Message{.type = MessageType::kHeartbeatResponse,
               .to = message.from,
               .read_round = message.read_round});
}

}  // namespace cairn::consensus
