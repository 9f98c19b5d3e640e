// Progress: what a leader knows about one follower's log, and the Request Pipeline.
//
// Pattern: Request Pipeline. In kReplicate state the leader sends appends without waiting for each
// acknowledgement: up to appends_in_flight_max messages are outstanding, each covering up to
// append_entries_max entries. After a rejection (or before the first match) the follower is in
// kProbe state: one append at a time, walking back by generation until the logs match.
#pragma once

#include <cstdint>
#include <deque>

#include "base/strong_types.h"

namespace cairn::consensus {

struct Progress {
  enum class State : uint8_t { kProbe, kReplicate, kSnapshot };

  State state = State::kProbe;
  LogIndex match;  // The follower's log matches the leader's up to here.
  LogIndex next;   // The next index to send.
  LogIndex commit_sent;  // The highest commit index this follower has been told (for AnnounceCommit).
  // kProbe: an append was sent and its answer is awaited (a heartbeat response unblocks it).
  bool probe_sent = false;
  // kReplicate: last index of each append in flight, oldest first.
  std::deque<LogIndex> in_flight;
  // kSnapshot: the snapshot being sent, how many bytes the follower confirmed, whether a chunk
  // is awaiting its answer. One chunk at a time.
  LogIndex snapshot_index;
  uint64_t snapshot_offset = 0;
  bool snapshot_chunk_sent = false;

  bool CanSend(uint32_t appends_in_flight_max) const {
    switch (state) {
      case State::kProbe: return !probe_sent;
      case State::kReplicate: return in_flight.size() < appends_in_flight_max;
      case State::kSnapshot: return !snapshot_chunk_sent;
    }
    return false;
  }
  void BecomeSnapshot(LogIndex index) {
    state = State::kSnapshot;
    snapshot_index = index;
    snapshot_offset = 0;
    snapshot_chunk_sent = false;
    probe_sent = false;
    in_flight.clear();
  }
  // An acknowledgement up to `index` frees the appends it covers.
  void Acknowledge(LogIndex index) {
    while (!in_flight.empty() && in_flight.front() <= index) in_flight.pop_front();
  }
  void BecomeProbe(LogIndex next_index) {
    state = State::kProbe;
    next = next_index;
    probe_sent = false;
    in_flight.clear();
  }
  void BecomeReplicate() {
    state = State::kReplicate;
    next = match.next();
    probe_sent = false;
    in_flight.clear();
  }
};

}  // namespace cairn::consensus
