#include "base/strong_types.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <type_traits>
#include <unordered_set>

namespace cairn {
namespace {

static_assert(!std::is_convertible_v<uint64_t, LogIndex>, "construction is explicit");
static_assert(!std::is_convertible_v<LogIndex, Generation>, "an index is never a generation");
static_assert(!std::is_assignable_v<LogIndex&, Generation>, "nor assigned from one");
static_assert(sizeof(LogIndex) == sizeof(uint64_t), "no space cost");

TEST(StrongTypes, CompareAndStep) {
  LogIndex index(7);
  EXPECT_LT(index, index.next());
  EXPECT_EQ(LogIndex(6), index.prev());
  EXPECT_EQ(7u, index.value());
  EXPECT_EQ(Generation(0), Generation());
}

TEST(StrongTypes, FormatAndHash) {
  EXPECT_EQ("index 42", fmt::format("index {}", LogIndex(42)));
  std::unordered_set<NodeId> ids = {NodeId(1), NodeId(2), NodeId(1)};
  EXPECT_EQ(2u, ids.size());
}

TEST(StrongTypesDeathTest, OverflowIsAnInvariantFailure) {
  EXPECT_DEATH((void)LogIndex(UINT64_MAX).next(), "LogIndex does not overflow");
  EXPECT_DEATH((void)Generation(0).prev(), "Generation does not go below its minimum");
}

}  // namespace
}  // namespace cairn
