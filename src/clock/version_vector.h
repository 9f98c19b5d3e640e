// VersionVector: one event counter per node, which tells causally ordered events from concurrent
// ones.
//
// Design note. Pattern "Version Vector" (Unmesh Joshi, Patterns of Distributed Systems). Each node
// counts its own events; a vector maps node -> the number of that node's events known to have
// happened before (or be) the event it stamps. A node increments its own entry on each event and,
// on receiving a vector, takes the pointwise maximum first. Then for two events a and b:
//   a happened before b  <=>  VV(a) <= VV(b) pointwise and VV(a) != VV(b),
// and neither happened before the other exactly when their vectors are incomparable (concurrent),
// which a Lamport or hybrid clock cannot tell. Conflicting writes to one key are detected this way.
// Rules the class keeps:
//   - A node missing from the vector has counter 0, so vectors of different sizes compare.
//   - Entries are kept sorted by node and only counters > 0 are stored, so two vectors are equal
//     exactly when their stored entries are.
//   - Counters only grow; a counter overflow is an invariant failure.
// The class is pure state: no threads, no wall clock, no randomness.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "base/strong_types.h"

namespace cairn {

// How two version vectors (and so the events they stamp) are related.
enum class CausalOrder : uint8_t {
  kBefore,      // a happened before b: a <= b pointwise, a != b.
  kAfter,       // b happened before a.
  kEqual,       // The same vector (the same event, or the same knowledge).
  kConcurrent,  // Neither: each has seen an event the other has not.
};

[[nodiscard]] std::string_view CausalOrderName(CausalOrder order);
// For readable gtest failure messages.
std::ostream& operator<<(std::ostream& out, CausalOrder order);

class VersionVector {
 public:
  struct Entry {
    NodeId node;
    uint64_t counter = 0;
    bool operator==(const Entry&) const = default;
  };

  VersionVector() = default;

  // Records one more event at `node`. NodeId 0 means "no member" and is refused.
  void Increment(NodeId node);

  // The counter of `node`; 0 when absent.
  [[nodiscard]] uint64_t Get(NodeId node) const;

  // Becomes the pointwise maximum of this and `other` (the knowledge of both).
  void Merge(const VersionVector& other);

  // The stored entries, sorted by node, all with counter > 0.
  [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }

  // "{1:3, 2:1}", nodes ascending; "{}" when empty.
  [[nodiscard]] std::string ToString() const;

  // Equal as vectors with missing entries counted as 0 (zeros are never stored).
  bool operator==(const VersionVector&) const = default;

 private:
  std::vector<Entry> entries_;
};

// How `a` relates to `b` causally.
[[nodiscard]] CausalOrder Compare(const VersionVector& a, const VersionVector& b);

}  // namespace cairn
