#include "clock/version_vector.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <ostream>
#include <utility>

#include "base/check.h"

namespace cairn {

std::string_view CausalOrderName(CausalOrder order) {
  switch (order) {
    case CausalOrder::kBefore:
      return "Before";
    case CausalOrder::kAfter:
      return "After";
    case CausalOrder::kEqual:
      return "Equal";
    case CausalOrder::kConcurrent:
      return "Concurrent";
  }
  return "Unknown";
}

std::ostream& operator<<(std::ostream& out, CausalOrder order) {
  return out << CausalOrderName(order);
}

namespace {

bool NodeLess(const VersionVector::Entry& entry, NodeId node) {
  return entry.node < node;
}

}  // namespace

void VersionVector::Increment(NodeId node) {
  CAIRN_CHECK(node != NodeId(0), "version vectors count events of real members, never node 0");
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node, NodeLess);
  if (it == entries_.end() || it->node != node) {
    entries_.insert(it, Entry{node, 1});
    return;
  }
  CAIRN_CHECK(it->counter != std::numeric_limits<uint64_t>::max(),
              "a version vector counter does not overflow (node {})", node);
  ++it->counter;
}

uint64_t VersionVector::Get(NodeId node) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node, NodeLess);
  return (it != entries_.end() && it->node == node) ? it->counter : 0;
}

void VersionVector::Merge(const VersionVector& other) {
  // A linear merge of two sorted lists; the result stays sorted and free of zeros.
  std::vector<Entry> merged;
  merged.reserve(entries_.size() + other.entries_.size());
  auto mine = entries_.begin();
  auto theirs = other.entries_.begin();
  while (mine != entries_.end() || theirs != other.entries_.end()) {
    if (theirs == other.entries_.end() || (mine != entries_.end() && mine->node < theirs->node)) {
      merged.push_back(*mine++);
    } else if (mine == entries_.end() || theirs->node < mine->node) {
      merged.push_back(*theirs++);
    } else {
      merged.push_back(Entry{mine->node, std::max(mine->counter, theirs->counter)});
      ++mine;
      ++theirs;
    }
  }
  entries_ = std::move(merged);
}

std::string VersionVector::ToString() const {
  std::string text = "{";
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (i > 0) text += ", ";
    text += fmt::format("{}:{}", entries_[i].node, entries_[i].counter);
  }
  text += "}";
  return text;
}

CausalOrder Compare(const VersionVector& a, const VersionVector& b) {
  // Walk both sorted lists; an entry present on one side only is compared against 0.
  bool a_ahead_somewhere = false;
  bool b_ahead_somewhere = false;
  const auto& a_entries = a.entries();
  const auto& b_entries = b.entries();
  auto a_it = a_entries.begin();
  auto b_it = b_entries.begin();
  while (a_it != a_entries.end() || b_it != b_entries.end()) {
    if (b_it == b_entries.end() || (a_it != a_entries.end() && a_it->node < b_it->node)) {
      a_ahead_somewhere = true;  // Stored counters are > 0, and b's is 0.
      ++a_it;
    } else if (a_it == a_entries.end() || b_it->node < a_it->node) {
      b_ahead_somewhere = true;
      ++b_it;
    } else {
      a_ahead_somewhere |= a_it->counter > b_it->counter;
      b_ahead_somewhere |= b_it->counter > a_it->counter;
      ++a_it;
      ++b_it;
    }
    if (a_ahead_somewhere && b_ahead_somewhere) return CausalOrder::kConcurrent;
  }
  if (a_ahead_somewhere) return CausalOrder::kAfter;
  if (b_ahead_somewhere) return CausalOrder::kBefore;
  return CausalOrder::kEqual;
}

}  // namespace cairn
