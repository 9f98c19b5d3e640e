#include "consensus/membership.h"

#include <fmt/format.h>

#include "base/coding.h"

namespace cairn::consensus {

std::string Membership::ToString() const {
  std::string text = "voters {";
  for (NodeId voter : voters) text += fmt::format("{}{}", text.back() == '{' ? "" : ",", voter);
  text += "} learners {";
  for (NodeId learner : learners) {
    text += fmt::format("{}{}", text.back() == '{' ? "" : ",", learner);
  }
  return text + "}";
}

std::string EncodeMembership(const Membership& membership) {
  std::string bytes;
  PutFixed32(&bytes, static_cast<uint32_t>(membership.voters.size()));
  for (NodeId voter : membership.voters) PutFixed64(&bytes, voter.value());
  PutFixed32(&bytes, static_cast<uint32_t>(membership.learners.size()));
  for (NodeId learner : membership.learners) PutFixed64(&bytes, learner.value());
  return bytes;
}

Result<Membership> DecodeMembership(std::string_view bytes) {
  Membership membership;
  for (std::set<NodeId>* members : {&membership.voters, &membership.learners}) {
    if (bytes.size() < 4) return Status::Corruption("membership record too short");
    const uint32_t count = DecodeFixed32(bytes.data());
    bytes.remove_prefix(4);
    if (bytes.size() / 8 < count) return Status::Corruption("membership record truncated");
    for (uint32_t i = 0; i < count; ++i) {
      const NodeId id(DecodeFixed64(bytes.data()));
      bytes.remove_prefix(8);
      if (id == NodeId(0)) return Status::Corruption("membership names node 0");
      members->insert(id);
    }
  }
  if (!bytes.empty()) return Status::Corruption("trailing bytes in membership record");
  for (NodeId learner : membership.learners) {
    if (membership.voters.count(learner)) {
      return Status::Corruption(fmt::format("node {} is both voter and learner", learner));
    }
  }
  return membership;
}

Result<Membership> ApplyMembershipChange(const Membership& current, const MembershipChange& change) {
  Membership next = current;
  switch (change.kind) {
    case MembershipChange::Kind::kAddLearner:
      if (change.node == NodeId(0) || current.Contains(change.node)) {
        return Status::InvalidArgument(fmt::format("node {} is already a member", change.node));
      }
      next.learners.insert(change.node);
      return next;
    case MembershipChange::Kind::kPromoteLearner:
      if (current.learners.count(change.node) == 0) {
        return Status::InvalidArgument(fmt::format("node {} is not a learner", change.node));
      }
      next.learners.erase(change.node);
      next.voters.insert(change.node);
      return next;
    case MembershipChange::Kind::kRemoveMember:
      if (!current.Contains(change.node)) {
        return Status::InvalidArgument(fmt::format("node {} is not a member", change.node));
      }
      if (current.voters.count(change.node) && current.voters.size() == 1) {
        return Status::InvalidArgument("the last voter cannot be removed");
      }
      next.voters.erase(change.node);
      next.learners.erase(change.node);
      return next;
  }
  return Status::InvalidArgument("unknown membership change");
}

}  // namespace cairn::consensus
