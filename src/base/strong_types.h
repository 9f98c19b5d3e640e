// Distinct types for numbers that must never be mixed up.
//
// Design note. A log index, a generation (Raft's term), an MVCC revision and a node id are all
// 64-bit integers, and passing one where another is expected is a classic consensus bug. Each gets
// its own type: construction is explicit, arithmetic is limited to what the number means (an index
// has a next and a previous; a generation only grows), and the raw value is read with .value().
#pragma once

#include <fmt/format.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <limits>

#include "base/check.h"

namespace cairn {

template <typename Tag, typename Rep = uint64_t>
class StrongNumber {
 public:
  using rep_type = Rep;

  constexpr StrongNumber() = default;
  constexpr explicit StrongNumber(Rep value) : value_(value) {}

  constexpr Rep value() const { return value_; }
  constexpr auto operator<=>(const StrongNumber&) const = default;

  // The next number. Overflow is an invariant failure, not a wrap-around.
  constexpr StrongNumber next() const {
    CAIRN_CHECK(value_ != std::numeric_limits<Rep>::max(), "{} does not overflow", Tag::kName);
    return StrongNumber(value_ + 1);
  }
  // The previous number. Going below the type's minimum is an invariant failure.
  constexpr StrongNumber prev() const {
    CAIRN_CHECK(value_ != std::numeric_limits<Rep>::min(), "{} does not go below its minimum",
                Tag::kName);
    return StrongNumber(value_ - 1);
  }

 private:
  Rep value_ = 0;
};

struct LogIndexTag {
  static constexpr const char* kName = "LogIndex";
};
struct GenerationTag {
  static constexpr const char* kName = "Generation";
};
struct RevisionTag {
  static constexpr const char* kName = "Revision";
};
struct NodeIdTag {
  static constexpr const char* kName = "NodeId";
};

// Position of an entry in the replicated log; the first entry ever is index 1, 0 means "none".
using LogIndex = StrongNumber<LogIndexTag, uint64_t>;
// The Generation Clock (Raft's term): grows by one each election, never goes back.
using Generation = StrongNumber<GenerationTag, uint64_t>;
// MVCC revision of the key-value store, as etcd defines it (signed on the wire).
using Revision = StrongNumber<RevisionTag, int64_t>;
// A cluster member's id; 0 means "no member" (e.g. no vote cast).
using NodeId = StrongNumber<NodeIdTag, uint64_t>;

}  // namespace cairn

template <typename Tag, typename Rep>
struct std::hash<cairn::StrongNumber<Tag, Rep>> {
  size_t operator()(const cairn::StrongNumber<Tag, Rep>& number) const noexcept {
    return std::hash<Rep>()(number.value());
  }
};

template <typename Tag, typename Rep>
struct fmt::formatter<cairn::StrongNumber<Tag, Rep>> : fmt::formatter<Rep> {
  auto format(const cairn::StrongNumber<Tag, Rep>& number, fmt::format_context& context) const {
    return fmt::formatter<Rep>::format(number.value(), context);
  }
};
