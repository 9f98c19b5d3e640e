#include "sim/kv_state_machine.h"

#include <gtest/gtest.h>

namespace cairn::sim {
namespace {

TEST(KvStateMachine, CommandsRoundTrip) {
  const KvCommand command{.kind = KvCommand::Kind::kCompareAndSet,
                          .operation_id = 77,
                          .key = "k",
                          .value = "new",
                          .expected = std::string("old")};
  auto decoded = DecodeKvCommand(EncodeKvCommand(command));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(77u, decoded->operation_id);
  EXPECT_EQ("new", decoded->value);
  EXPECT_EQ(std::optional<std::string>("old"), decoded->expected);
}

TEST(KvStateMachine, GarbageIsRejected) {
  EXPECT_FALSE(DecodeKvCommand("x").ok());
  std::string encoded = EncodeKvCommand(KvCommand{.key = "k", .value = "v"});
  encoded.pop_back();
  EXPECT_FALSE(DecodeKvCommand(encoded).ok());
}

TEST(KvStateMachine, PutAndCompareAndSet) {
  KvStateMachine machine;
  EXPECT_TRUE(machine.Apply(KvCommand{.key = "k", .value = "1"}));
  EXPECT_FALSE(machine.Apply(KvCommand{.kind = KvCommand::Kind::kCompareAndSet,
                                       .key = "k",
                                       .value = "2",
                                       .expected = std::nullopt}));
  EXPECT_TRUE(machine.Apply(KvCommand{.kind = KvCommand::Kind::kCompareAndSet,
                                      .key = "k",
                                      .value = "2",
                                      .expected = std::string("1")}));
  EXPECT_EQ(std::optional<std::string>("2"), machine.Get("k"));
  EXPECT_FALSE(machine.Get("missing").has_value());
}

}  // namespace
}  // namespace cairn::sim

namespace cairn::sim {
namespace {

TEST(KvStateMachine, SnapshotRoundTrip) {
  KvStateMachine machine;
  ASSERT_TRUE(machine.Apply(KvCommand{.key = "a", .value = "1"}));
  ASSERT_TRUE(machine.Apply(KvCommand{.key = "b", .value = ""}));
  auto restored = KvStateMachine::Restore(machine.Serialize());
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(std::optional<std::string>("1"), restored->Get("a"));
  EXPECT_EQ(std::optional<std::string>(""), restored->Get("b"));
  EXPECT_FALSE(KvStateMachine::Restore("junk").ok());
}

}  // namespace
}  // namespace cairn::sim
