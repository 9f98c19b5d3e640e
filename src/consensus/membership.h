// Membership: who votes, who only listens, and how that changes one member at a time.
//
// Voters elect leaders and count toward every quorum; learners receive the log but neither vote
// nor count (a new member catches up as a learner first, so adding it never stalls commits).
// A change is a log entry (EntryType::kMembership) holding the whole new membership. It takes
// effect on each replica as soon as the entry is in its log, committed or not, and is undone if
// the entry is truncated away. Only one change may be uncommitted at a time, and each adds or
// removes a single voter, so the old and new majorities always overlap (Raft dissertation, 4.1).
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "base/status.h"
#include "base/strong_types.h"

namespace cairn::consensus {

struct Membership {
  std::set<NodeId> voters;
  std::set<NodeId> learners;

  bool Contains(NodeId id) const { return voters.count(id) != 0 || learners.count(id) != 0; }
  bool operator==(const Membership&) const = default;
  std::string ToString() const;
};

std::string EncodeMembership(const Membership& membership);
Result<Membership> DecodeMembership(std::string_view bytes);

// One single-member change.
struct MembershipChange {
  enum class Kind : uint8_t { kAddLearner, kPromoteLearner, kRemoveMember };
  Kind kind;
  NodeId node;
};

// The membership after `change`, or why the change is not allowed from `current`.
Result<Membership> ApplyMembershipChange(const Membership& current, const MembershipChange& change);

}  // namespace cairn::consensus
