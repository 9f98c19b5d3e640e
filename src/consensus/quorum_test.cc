#include "consensus/quorum.h"

#include <gtest/gtest.h>

#include <random>

namespace cairn::consensus {
namespace {

std::set<NodeId> Voters(uint64_t count) {
  std::set<NodeId> voters;
  for (uint64_t id = 1; id <= count; ++id) voters.insert(NodeId(id));
  return voters;
}

// The obvious definition: the largest index that at least a majority hold.
LogIndex DumbCommittedIndex(const std::set<NodeId>& voters,
                            const std::map<NodeId, LogIndex>& match) {
  LogIndex best(0);
  for (const auto& [candidate_node, candidate] : match) {
    size_t holders = 0;
    for (NodeId voter : voters) {
      auto found = match.find(voter);
      if (found != match.end() && found->second >= candidate) ++holders;
    }
    if (voters.count(candidate_node) && holders >= voters.size() / 2 + 1) {
      best = std::max(best, candidate);
    }
  }
  return best;
}

TEST(Quorum, MajorityOf) {
  EXPECT_EQ(1u, MajorityOf(1));
  EXPECT_EQ(2u, MajorityOf(2));
  EXPECT_EQ(2u, MajorityOf(3));
  EXPECT_EQ(3u, MajorityOf(5));
  EXPECT_EQ(4u, MajorityOf(7));
}

TEST(Quorum, CommittedIndexIsTheMajorityHeldIndex) {
  const auto voters = Voters(5);
  EXPECT_EQ(LogIndex(5), CommittedIndex(voters, {{NodeId(1), LogIndex(9)},
                                                 {NodeId(2), LogIndex(5)},
                                                 {NodeId(3), LogIndex(5)},
                                                 {NodeId(4), LogIndex(1)}}));
  EXPECT_EQ(LogIndex(0), CommittedIndex(voters, {{NodeId(1), LogIndex(9)}}));
}

TEST(Quorum, CommittedIndexAgreesWithDumbReference) {
  std::mt19937_64 random(3);
  for (int trial = 0; trial < 2000; ++trial) {
    const auto voters = Voters(1 + random() % 7);
    std::map<NodeId, LogIndex> match;
    for (NodeId voter : voters) {
      if (random() % 4 != 0) match[voter] = LogIndex(random() % 20);
    }
    ASSERT_EQ(DumbCommittedIndex(voters, match), CommittedIndex(voters, match)) << trial;
  }
}

TEST(Quorum, TallyVotes) {
  const auto voters = Voters(3);
  EXPECT_EQ(VoteResult::kPending, TallyVotes(voters, {{NodeId(1), true}}));
  EXPECT_EQ(VoteResult::kWon, TallyVotes(voters, {{NodeId(1), true}, {NodeId(3), true}}));
  EXPECT_EQ(VoteResult::kLost, TallyVotes(voters, {{NodeId(2), false}, {NodeId(3), false}}));
  EXPECT_EQ(VoteResult::kPending, TallyVotes(voters, {{NodeId(1), true}, {NodeId(2), false}}));
  EXPECT_EQ(VoteResult::kPending, TallyVotes(voters, {{NodeId(9), true}, {NodeId(8), true}}))
      << "answers from non-voters do not count";
}

}  // namespace
}  // namespace cairn::consensus
