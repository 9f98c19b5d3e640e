// Messages between replicas, and the entry types the consensus layer gives meaning to.
//
// Every message carries the sender's generation (Generation Clock): a replica that receives a
// message of a newer generation adopts it (and a leader steps down); a message of an older
// generation is answered, if at all, only so that its stale sender learns the newer generation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/strong_types.h"
#include "wal/entry.h"

namespace cairn::consensus {

enum class EntryType : uint8_t {
  kCommand = 1,  // A client's command for the state machine.
  kNoOp = 2,     // Appended by a new leader so that it can commit entries of earlier generations.
  kMembership = 3,  // A new Membership (membership.h), effective once appended.
};

enum class MessageType : uint8_t {
  kPreVote,            // "Would you vote for me in generation g+1?" (does not change anyone's state)
  kPreVoteResponse,
  kVote,               // RequestVote in generation g.
  kVoteResponse,
  kAppend,             // AppendEntries: log entries after (prev_index, prev_generation).
  kAppendResponse,
  kHeartbeat,          // Leader's HeartBeat: commit index and the read round it confirms.
  kHeartbeatResponse,
  kTimeoutNow,         // Leadership transfer: "start an election now, skipping pre-vote".
  kReadIndex,          // Follower read: a follower asks the leader for a read index.
  kReadIndexResponse,
  kSnapshot,           // Low-Water Mark: one chunk of the leader's snapshot for a lagging follower.
  kSnapshotResponse,   // Chunk received (or rejected: start again from offset 0).
};

std::string_view MessageTypeName(MessageType type);

struct Message {
  MessageType type = MessageType::kHeartbeat;
  NodeId from{};
  NodeId to{};
  Generation generation{};

  // kPreVote, kVote: the candidate's last log position. kAppend: the position the entries follow.
  LogIndex log_index{};
  Generation log_generation{};
  // kPreVoteResponse, kVoteResponse: granted or not. kAppendResponse: rejected or not.
  bool granted = false;
  bool rejected = false;
  // kVote, kPreVote: part of a leadership transfer (the receiver's leader asked for it), so the
  // receiver votes even though it heard from a leader recently.
  bool transfer = false;

  // kAppend: entries to append after (log_index, log_generation).
  std::vector<wal::Entry> entries{};
  // kAppend, kHeartbeat: the leader's commit index (for a heartbeat, no more than the follower's
  // match index, since a heartbeat does not check log matching).
  LogIndex commit_index{};
  // kAppendResponse: accepted -> the index the follower's log now matches up to; rejected -> a hint:
  // the follower's last index, or the first index of the conflicting generation (hint_generation),
  // so the leader skips back a generation at a time, not an entry at a time.
  LogIndex match_index{};
  LogIndex hint_index{};
  Generation hint_generation{};

  // kHeartbeat, kHeartbeatResponse: the read round being confirmed (0: none).
  uint64_t read_round = 0;
  // kReadIndex, kReadIndexResponse: the follower's request id; response: the read index, or
  // rejected when the receiver is not (or no longer) the leader.
  uint64_t read_id = 0;

  // kSnapshot: the snapshot's position is (log_index, log_generation); `snapshot_offset` is where
  // `snapshot_chunk` starts in its data and `snapshot_done` marks the last chunk.
  // kSnapshotResponse: `snapshot_offset` is how many bytes the follower now holds.
  uint64_t snapshot_offset = 0;
  std::string snapshot_chunk{};
  std::string snapshot_membership{};  // EncodeMembership of the snapshot's membership.
  bool snapshot_done = false;
};

}  // namespace cairn::consensus
