#include "linearizability/linearizability_checker.h"

#include <algorithm>

namespace cairn::linearizability {

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kUnknown:
      return "unknown (search budget exhausted)";
    case Verdict::kInvalidHistory:
      return "invalid history";
  }
  return "unnamed verdict";
}

namespace internal {

namespace {

// The splitmix64 finalizer: spreads every input bit over the whole output.
uint64_t MixBits(uint64_t value) {
  value ^= value >> 30;
  value *= 0xbf58476d1ce4e5b9ULL;
  value ^= value >> 27;
  value *= 0x94d049bb133111ebULL;
  value ^= value >> 31;
  return value;
}

}  // namespace

uint64_t CombineHashes(uint64_t first, uint64_t second) {
  return MixBits(first * 0x9e3779b97f4a7c15ULL + second);
}

uint64_t OperationBitset::Hash() const {
  uint64_t hash = words_.size();
  for (uint64_t word : words_) hash = CombineHashes(hash, word);
  return hash;
}

EventList::EventList(std::vector<EventNode> events) {
  nodes_.reserve(events.size() + 1);
  nodes_.push_back(EventNode{});  // The head sentinel.
  for (EventNode& event : events) nodes_.push_back(event);
  for (size_t index = 0; index < nodes_.size(); ++index) {
    nodes_[index].prev = index == 0 ? kNoNode : index - 1;
    nodes_[index].next = index + 1 < nodes_.size() ? index + 1 : kNoNode;
    if (index > 0) {
      CAIRN_CHECK(nodes_[index].match < events.size(),
                  "every event names the other event of its operation (event {})", index - 1);
      nodes_[index].match += 1;  // Positions shift by one for the sentinel.
    }
  }
}

void EventList::Unlink(size_t index) {
  EventNode& node = nodes_[index];
  nodes_[node.prev].next = node.next;
  if (node.next != kNoNode) nodes_[node.next].prev = node.prev;
}

void EventList::Relink(size_t index) {
  EventNode& node = nodes_[index];
  nodes_[node.prev].next = index;
  if (node.next != kNoNode) nodes_[node.next].prev = index;
}

void EventList::Lift(size_t call_node) {
  CAIRN_CHECK(!nodes_[call_node].is_return, "only a call event is lifted (node {})", call_node);
  Unlink(call_node);
  Unlink(nodes_[call_node].match);
}

void EventList::Unlift(size_t call_node) {
  CAIRN_CHECK(!nodes_[call_node].is_return, "only a call event is unlifted (node {})", call_node);
  // The reverse order of Lift: the return went out last, so it comes back first.
  Relink(nodes_[call_node].match);
  Relink(call_node);
}

EventList BuildEventList(std::span<const int64_t> call_times,
                         std::span<const std::optional<int64_t>> return_times) {
  CAIRN_CHECK(call_times.size() == return_times.size(),
              "every operation has a call time and a return slot ({} vs {})", call_times.size(),
              return_times.size());
  std::vector<EventOrderKey> keys;
  keys.reserve(2 * call_times.size());
  for (size_t operation = 0; operation < call_times.size(); ++operation) {
    keys.push_back(EventOrderKey{false, call_times[operation], false, operation});
    const std::optional<int64_t>& return_time = return_times[operation];
    keys.push_back(
        EventOrderKey{!return_time.has_value(), return_time.value_or(0), true, operation});
  }
  std::sort(keys.begin(), keys.end());

  std::vector<size_t> call_position(call_times.size(), kNoNode);
  std::vector<size_t> return_position(call_times.size(), kNoNode);
  std::vector<EventNode> events(keys.size());
  for (size_t position = 0; position < keys.size(); ++position) {
    events[position].operation = keys[position].operation;
    events[position].is_return = keys[position].is_return;
    if (keys[position].is_return) {
      return_position[keys[position].operation] = position;
    } else {
      call_position[keys[position].operation] = position;
    }
  }
  for (size_t operation = 0; operation < call_times.size(); ++operation) {
    CAIRN_CHECK(call_position[operation] < return_position[operation],
                "an operation's call sorts before its return (operation {})", operation);
    events[call_position[operation]].match = return_position[operation];
    events[return_position[operation]].match = call_position[operation];
  }
  return EventList(std::move(events));
}

}  // namespace internal

}  // namespace cairn::linearizability
