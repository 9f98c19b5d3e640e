#include "clock/version_vector.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <random>
#include <utility>

namespace cairn {
namespace {

// Builds a vector by incrementing each listed node `counter` times.
VersionVector Make(std::initializer_list<std::pair<uint64_t, uint64_t>> node_counters) {
  VersionVector vector;
  for (const auto& [node, counter] : node_counters) {
    for (uint64_t i = 0; i < counter; ++i) vector.Increment(NodeId(node));
  }
  return vector;
}

VersionVector Merged(VersionVector a, const VersionVector& b) {
  a.Merge(b);
  return a;
}

TEST(VersionVector, StartsEmpty) {
  VersionVector vector;
  EXPECT_TRUE(vector.entries().empty());
  EXPECT_EQ(0u, vector.Get(NodeId(1)));
  EXPECT_EQ("{}", vector.ToString());
}

TEST(VersionVector, IncrementCountsPerNode) {
  VersionVector vector;
  vector.Increment(NodeId(2));
  vector.Increment(NodeId(1));
  vector.Increment(NodeId(2));
  vector.Increment(NodeId(2));
  EXPECT_EQ(1u, vector.Get(NodeId(1)));
  EXPECT_EQ(3u, vector.Get(NodeId(2)));
  EXPECT_EQ(0u, vector.Get(NodeId(3)));
}

TEST(VersionVector, ToStringListsNodesAscending) {
  EXPECT_EQ("{1:3, 2:1}", Make({{2, 1}, {1, 3}}).ToString());
  EXPECT_EQ("{1:3, 2:1}", fmt::format("{}", Make({{1, 3}, {2, 1}}).ToString()));
}

TEST(VersionVector, EntriesStaySortedWhateverTheInsertionOrder) {
  const VersionVector vector = Make({{9, 1}, {3, 2}, {5, 1}, {1, 4}});
  ASSERT_EQ(4u, vector.entries().size());
  for (size_t i = 1; i < vector.entries().size(); ++i) {
    EXPECT_LT(vector.entries()[i - 1].node, vector.entries()[i].node);
  }
}

TEST(VersionVector, MergeTakesPointwiseMax) {
  VersionVector a = Make({{1, 3}, {2, 1}});
  a.Merge(Make({{2, 4}, {3, 2}}));
  EXPECT_EQ("{1:3, 2:4, 3:2}", a.ToString());
  EXPECT_EQ(3u, a.Get(NodeId(1)));
  EXPECT_EQ(4u, a.Get(NodeId(2)));
  EXPECT_EQ(2u, a.Get(NodeId(3)));
}

TEST(VersionVector, MergeWithEmptyChangesNothing) {
  const VersionVector a = Make({{1, 2}});
  EXPECT_EQ(a, Merged(a, VersionVector()));
  EXPECT_EQ(a, Merged(VersionVector(), a));
}

TEST(VersionVectorCompare, Equal) {
  EXPECT_EQ(CausalOrder::kEqual, Compare(Make({{1, 2}, {2, 1}}), Make({{2, 1}, {1, 2}})));
  EXPECT_EQ(CausalOrder::kEqual, Compare(VersionVector(), VersionVector()));
}

TEST(VersionVectorCompare, Before) {
  EXPECT_EQ(CausalOrder::kBefore, Compare(Make({{1, 1}}), Make({{1, 2}})));
  EXPECT_EQ(CausalOrder::kBefore, Compare(Make({{1, 2}, {2, 1}}), Make({{1, 2}, {2, 3}})));
}

TEST(VersionVectorCompare, After) {
  EXPECT_EQ(CausalOrder::kAfter, Compare(Make({{1, 3}}), Make({{1, 2}})));
  EXPECT_EQ(CausalOrder::kAfter, Compare(Make({{1, 2}, {2, 3}}), Make({{1, 2}, {2, 1}})));
}

TEST(VersionVectorCompare, Concurrent) {
  EXPECT_EQ(CausalOrder::kConcurrent, Compare(Make({{1, 2}, {2, 1}}), Make({{1, 1}, {2, 2}})));
  EXPECT_EQ(CausalOrder::kConcurrent, Compare(Make({{1, 1}}), Make({{2, 1}})));
}

TEST(VersionVectorCompare, MissingEntriesCountAsZero) {
  // {1:1} against {1:1, 2:1}: node 2 is 0 on the left, so the left is before.
  EXPECT_EQ(CausalOrder::kBefore, Compare(Make({{1, 1}}), Make({{1, 1}, {2, 1}})));
  EXPECT_EQ(CausalOrder::kAfter, Compare(Make({{1, 1}, {3, 1}}), Make({{1, 1}})));
  EXPECT_EQ(CausalOrder::kBefore, Compare(VersionVector(), Make({{7, 1}})));
  EXPECT_EQ(CausalOrder::kAfter, Compare(Make({{7, 1}}), VersionVector()));
  // Each has a node the other lacks.
  EXPECT_EQ(CausalOrder::kConcurrent, Compare(Make({{1, 1}, {3, 1}}), Make({{1, 1}, {2, 1}})));
}

TEST(VersionVectorCompare, IsAntisymmetric) {
  const VersionVector a = Make({{1, 1}});
  const VersionVector b = Make({{1, 1}, {2, 1}});
  EXPECT_EQ(CausalOrder::kBefore, Compare(a, b));
  EXPECT_EQ(CausalOrder::kAfter, Compare(b, a));
}

TEST(VersionVectorCompare, MergeIsAfterOrEqualToBothInputs) {
  const VersionVector a = Make({{1, 2}, {2, 1}});
  const VersionVector b = Make({{1, 1}, {3, 4}});
  const VersionVector both = Merged(a, b);
  EXPECT_EQ(CausalOrder::kAfter, Compare(both, a));
  EXPECT_EQ(CausalOrder::kAfter, Compare(both, b));
  EXPECT_EQ(CausalOrder::kEqual, Compare(Merged(a, a), a));
}

TEST(CausalOrder, HasReadableNames) {
  EXPECT_EQ("Before", CausalOrderName(CausalOrder::kBefore));
  EXPECT_EQ("After", CausalOrderName(CausalOrder::kAfter));
  EXPECT_EQ("Equal", CausalOrderName(CausalOrder::kEqual));
  EXPECT_EQ("Concurrent", CausalOrderName(CausalOrder::kConcurrent));
}

// A random vector over nodes 1..5 with small counters, some nodes absent.
VersionVector RandomVector(std::mt19937_64& random) {
  VersionVector vector;
  for (uint64_t node = 1; node <= 5; ++node) {
    const uint64_t counter = random() % 4;  // 0 leaves the node absent.
    for (uint64_t i = 0; i < counter; ++i) vector.Increment(NodeId(node));
  }
  return vector;
}

TEST(VersionVectorMerge, IsCommutativeAssociativeAndIdempotent) {
  std::mt19937_64 random(3);
  for (int i = 0; i < 500; ++i) {
    const VersionVector a = RandomVector(random);
    const VersionVector b = RandomVector(random);
    const VersionVector c = RandomVector(random);
    ASSERT_EQ(Merged(a, b), Merged(b, a)) << a.ToString() << " " << b.ToString();
    ASSERT_EQ(Merged(Merged(a, b), c), Merged(a, Merged(b, c)))
        << a.ToString() << " " << b.ToString() << " " << c.ToString();
    ASSERT_EQ(a, Merged(a, a)) << a.ToString();
    // Merge is the least upper bound: above both, and Compare agrees with it.
    const CausalOrder order = Compare(a, b);
    if (order == CausalOrder::kBefore || order == CausalOrder::kEqual) {
      ASSERT_EQ(b, Merged(a, b));
    }
    if (order == CausalOrder::kAfter || order == CausalOrder::kEqual) {
      ASSERT_EQ(a, Merged(a, b));
    }
  }
}

TEST(VersionVectorCompare, AgreesWithPointwiseDefinitionOnRandomVectors) {
  std::mt19937_64 random(5);
  for (int i = 0; i < 1000; ++i) {
    const VersionVector a = RandomVector(random);
    const VersionVector b = RandomVector(random);
    bool a_le_b = true;
    bool b_le_a = true;
    for (uint64_t node = 1; node <= 6; ++node) {
      a_le_b = a_le_b && a.Get(NodeId(node)) <= b.Get(NodeId(node));
      b_le_a = b_le_a && b.Get(NodeId(node)) <= a.Get(NodeId(node));
    }
    CausalOrder expected = CausalOrder::kConcurrent;
    if (a_le_b && b_le_a) {
      expected = CausalOrder::kEqual;
    } else if (a_le_b) {
      expected = CausalOrder::kBefore;
    } else if (b_le_a) {
      expected = CausalOrder::kAfter;
    }
    ASSERT_EQ(expected, Compare(a, b)) << a.ToString() << " vs " << b.ToString();
  }
}

TEST(VersionVectorDeathTest, NodeZeroIsNotAMember) {
  VersionVector vector;
  EXPECT_DEATH(vector.Increment(NodeId(0)), "never node 0");
}

}  // namespace
}  // namespace cairn
