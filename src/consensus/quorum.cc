#include "consensus/quorum.h"

#include <algorithm>
#include <vector>

#include "base/check.h"

namespace cairn::consensus {

LogIndex CommittedIndex(const std::set<NodeId>& voters,
                        const std::map<NodeId, LogIndex>& match_indexes) {
  CAIRN_CHECK(!voters.empty(), "a commit index needs at least one voter");
  std::vector<LogIndex> held;
  held.reserve(voters.size());
  for (NodeId voter : voters) {
    auto found = match_indexes.find(voter);
    held.push_back(found == match_indexes.end() ? LogIndex(0) : found->second);
  }
  // Sorted descending, the majority-th value is held by at least a majority.
  std::sort(held.begin(), held.end(), [](LogIndex a, LogIndex b) { return a > b; });
  return held[MajorityOf(voters.size()) - 1];
}

VoteResult TallyVotes(const std::set<NodeId>& voters, const std::map<NodeId, bool>& answers) {
  size_t granted = 0;
  size_t refused = 0;
  for (NodeId voter : voters) {
    auto found = answers.find(voter);
    if (found == answers.end()) continue;
    (found->second ? granted : refused)++;
  }
  const size_t majority = MajorityOf(voters.size());
  if (granted >= majority) return VoteResult::kWon;
  if (refused > voters.size() - majority) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace cairn::consensus
