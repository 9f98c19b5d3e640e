// Quorum: decisions that need a majority of the voters.
//
// Pattern: Quorum. A value is chosen when a majority holds it, because any two majorities
// intersect: whatever a later leader's majority is, it contains a replica that saw the choice.
// Two questions are asked of the voters:
//   - CommittedIndex: the highest index held by a majority (the median of the match indexes).
//   - VoteResult: has a majority granted, or can a majority no longer grant?
// Pure functions over small maps; the dumb reference implementation lives in quorum_test.cc.
#pragma once

#include <map>
#include <set>

#include "base/strong_types.h"

namespace cairn::consensus {

// The number of voters that makes a majority of `voters`.
inline size_t MajorityOf(size_t voters) { return voters / 2 + 1; }

// The highest index that a majority of `voters` hold, given each voter's match index (a voter
// missing from `match_indexes` holds nothing). Requires at least one voter.
LogIndex CommittedIndex(const std::set<NodeId>& voters,
                        const std::map<NodeId, LogIndex>& match_indexes);

enum class VoteResult : uint8_t { kPending, kWon, kLost };

// The outcome so far of an election among `voters`, given the answers received.
VoteResult TallyVotes(const std::set<NodeId>& voters, const std::map<NodeId, bool>& answers);

}  // namespace cairn::consensus
