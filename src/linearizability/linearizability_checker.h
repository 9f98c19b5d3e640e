// Linearizability checker: is a recorded concurrent history explainable by a sequential model?
//
// Design note. A history is a list of client operations, each with the virtual time of its call
// and, when the client learned the outcome, the time of its return and its output. The history is
// linearizable when every operation can be given one instant between its call and its return (its
// linearization point) such that running the operations one by one in that order through the
// sequential model produces exactly the recorded outputs (Herlihy & Wing, 1990).
//
// The search is Wing & Gong's backtracking algorithm with Lowe's memoization, in the way the
// Porcupine checker arranges it:
//   - Every operation becomes a call event and a return event; the events are sorted by time and
//     kept in a doubly linked list. At equal times calls sort before returns, so an operation that
//     returns at t and one called at t count as overlapping: the more permissive reading, which
//     never reports a violation that a finer clock could explain away.
//   - Walking the list from its head, the search tries to linearize each call it meets (the model
//     step must accept the recorded output). On success it lifts the call and its return out of
//     the list, pushes them on a stack and restarts from the head. Meeting a return event means
//     that operation's deadline passed while it was still pending: the search backtracks (pops the
//     last linearized operation, puts its events back, and tries the call after it).
//   - A cache of (set of linearized operations as a bitset, model state) pairs already explored
//     prunes the search: reaching the same pair again cannot lead anywhere new (Lowe).
//   - An operation with an unknown outcome (the reply was lost, the client crashed) has no return
//     event in practice: its return time is +infinity, it is stepped with
//     Model::StepUnknownOutcome (any output is acceptable), and the search succeeds as soon as
//     every operation WITH a known outcome is linearized. So an unknown operation may take effect
//     at any point after its call, or never. The price: each one stays a candidate for the rest
//     of its partition, so it can double the search needed to prove a later violation. Histories
//     with many unknown outcomes on one key may end in kUnknown; crashes should stay rare.
//   - The model partitions the history into independent sub-histories (a key-value model: one per
//     key); the history is linearizable iff every partition is, and each is searched on its own,
//     which turns one exponential search into many small ones.
// Rules it keeps: deterministic (no clock, no randomness, partitions and events in a fixed order);
// bounded (CheckOptions::steps_max search steps across all partitions, after which the verdict is
// kUnknown, never a guess; the memo cache holds at most cache_entries_max entries, after which it
// is only consulted, which keeps the answer exact and only costs speed); an invalid history (a
// return before its call) yields kInvalidHistory, never kNotLinearizable.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/check.h"

namespace cairn::linearizability {

enum class Verdict : uint8_t {
  kLinearizable,
  kNotLinearizable,
  kUnknown,         // The step budget ran out before the search could decide.
  kInvalidHistory,  // The input breaks the rules of a history; nothing was checked.
};

[[nodiscard]] std::string_view VerdictName(Verdict verdict);

struct CheckOptions {
  // Search steps (one visit of a list event: a linearization attempt or a backtrack) allowed
  // across all partitions together. At the bound the verdict is kUnknown.
  uint64_t steps_max = 10'000'000;
  // Memo cache entries per partition. At the bound new states are no longer remembered (the cache
  // is still consulted), so memory stays bounded and the verdict stays exact.
  uint64_t cache_entries_max = 4'000'000;
};

// One recorded operation, in the model's terms.
template <typename Input, typename Output>
struct Operation {
  Input input;
  Output output;  // Meaningful only when return_time is set.
  int64_t call_time = 0;
  std::optional<int64_t> return_time;  // nullopt: unknown outcome (may take effect or not).
};

// What the checker needs from a sequential model.
//   Step: the state after applying `input` when it produced `output`, or nullopt when the model
//     could not have produced that output from `state`.
//   StepUnknownOutcome: the same for an operation whose output nobody saw (any output is fine).
//   HashState and ==: for the memo cache.
//   Partition: splits the history (indices into it) into independent sub-histories; every index
//     appears in exactly one partition. A model without structure returns one partition.
template <typename M>
concept SequentialModel =
    requires(const typename M::State& state, const typename M::Input& input,
             const typename M::Output& output,
             std::span<const Operation<typename M::Input, typename M::Output>> history) {
  { M::Init() } -> std::same_as<typename M::State>;
  { M::Step(state, input, output) } -> std::same_as<std::optional<typename M::State>>;
  { M::StepUnknownOutcome(state, input) } -> std::same_as<std::optional<typename M::State>>;
  { M::HashState(state) } -> std::same_as<uint64_t>;
  { state == state } -> std::convertible_to<bool>;
  { M::Partition(history) } -> std::same_as<std::vector<std::vector<size_t>>>;
};

template <typename M>
using OperationOf = Operation<typename M::Input, typename M::Output>;

// The outcome of CheckHistory, structured so that a model-specific layer can explain it.
struct HistoryCheck {
  Verdict verdict = Verdict::kLinearizable;
  uint64_t steps = 0;          // Search steps spent across all partitions.
  size_t partitions = 0;       // How many partitions the model produced.
  size_t partitions_done = 0;  // How many were decided linearizable before the search stopped.
  std::string invalid_reason;  // kInvalidHistory: what is wrong.
  // kNotLinearizable or kUnknown: the partition where the search stopped, as history indices.
  std::vector<size_t> stopped_partition;
  // kNotLinearizable: the longest sequence of operations the search managed to linearize in that
  // partition, in linearization order (history indices; may include unknown-outcome operations).
  std::vector<size_t> longest_prefix;
  // kNotLinearizable: the known-outcome operations of that partition missing from longest_prefix,
  // ordered by call time (the ones that could not be placed after it).
  std::vector<size_t> unplaced;
};

namespace internal {

// A fixed-size set of operation indices, one bit each, with a hash for the memo cache.
class OperationBitset {
 public:
  explicit OperationBitset(size_t size) : words_((size + 63) / 64, 0) {}

  void Set(size_t index) { words_[index / 64] |= uint64_t{1} << (index % 64); }
  void Clear(size_t index) { words_[index / 64] &= ~(uint64_t{1} << (index % 64)); }
  [[nodiscard]] uint64_t Hash() const;
  bool operator==(const OperationBitset&) const = default;

 private:
  std::vector<uint64_t> words_;
};

// Mixes two 64-bit hashes into one (order matters).
[[nodiscard]] uint64_t CombineHashes(uint64_t first, uint64_t second);

inline constexpr size_t kNoNode = std::numeric_limits<size_t>::max();

// One call or return event in the search's doubly linked list.
struct EventNode {
  size_t operation = 0;  // Index into the partition's operations.
  bool is_return = false;
  size_t match = kNoNode;  // The node of the other event of the same operation.
  size_t prev = kNoNode;
  size_t next = kNoNode;
};

// The doubly linked list of events, with node 0 as the head sentinel. Lifting an operation takes
// out its call and its return; unlifting in the reverse order of lifting (a stack discipline)
// restores the list exactly, because the lifted nodes keep their old links.
class EventList {
 public:
  // `events` must be in list order; each call's match must be set.
  explicit EventList(std::vector<EventNode> events);

  [[nodiscard]] size_t First() const { return nodes_[kHead].next; }
  [[nodiscard]] const EventNode& node(size_t index) const { return nodes_[index]; }
  void Lift(size_t call_node);
  void Unlift(size_t call_node);

 private:
  static constexpr size_t kHead = 0;
  void Unlink(size_t index);
  void Relink(size_t index);

  std::vector<EventNode> nodes_;
};

struct EventOrderKey {
  bool at_infinity = false;  // Unknown-outcome returns come after every finite time.
  int64_t time = 0;
  bool is_return = false;  // Calls before returns at equal times: touching counts as overlapping.
  size_t operation = 0;    // A fixed tie-break, for determinism.
  auto operator<=>(const EventOrderKey&) const = default;
};

// Builds the sorted event list for operations with the given call and return times.
[[nodiscard]] EventList BuildEventList(std::span<const int64_t> call_times,
                                       std::span<const std::optional<int64_t>> return_times);

struct PartitionSearch {
  Verdict verdict = Verdict::kLinearizable;
  uint64_t steps = 0;
  std::vector<size_t> longest_prefix;  // Indices into the partition, in linearization order.
};

// Wing & Gong with Lowe's memo over one partition (`operations` are history indices).
template <SequentialModel M>
[[nodiscard]] PartitionSearch SearchPartition(std::span<const OperationOf<M>> history,
                                              std::span<const size_t> operations,
                                              uint64_t steps_budget, uint64_t cache_entries_max) {
  using State = typename M::State;
  const size_t count = operations.size();

  std::vector<int64_t> call_times(count);
  std::vector<std::optional<int64_t>> return_times(count);
  size_t known_remaining = 0;  // Known-outcome operations not yet linearized.
  for (size_t i = 0; i < count; ++i) {
    const OperationOf<M>& operation = history[operations[i]];
    call_times[i] = operation.call_time;
    return_times[i] = operation.return_time;
    if (operation.return_time.has_value()) ++known_remaining;
  }
  EventList list = BuildEventList(call_times, return_times);

  // Lowe's memo: (linearized operations, state) pairs already reached. Reaching one again cannot
  // lead anywhere new: the operations left and the state they start from are the same.
  struct CacheEntry {
    OperationBitset linearized;
    State state;
    bool operator==(const CacheEntry&) const = default;
  };
  struct CacheEntryHash {
    size_t operator()(const CacheEntry& entry) const {
      return static_cast<size_t>(CombineHashes(entry.linearized.Hash(), M::HashState(entry.state)));
    }
  };
  std::unordered_set<CacheEntry, CacheEntryHash> explored;
  // True when (linearized, state) was not reached before; remembers it while there is room.
  auto first_visit = [&](const OperationBitset& linearized, const State& state) {
    CacheEntry entry{linearized, state};
    if (explored.size() < cache_entries_max) return explored.insert(std::move(entry)).second;
    return !explored.contains(entry);
  };

  struct Frame {
    size_t call_node;
    State state_before;
  };
  std::vector<Frame> stack;
  OperationBitset linearized(count);
  State state = M::Init();
  PartitionSearch result;
  size_t entry = list.First();

  // Each iteration is one step; the loop ends by a verdict or when steps_budget is spent.
  for (;;) {
    if (known_remaining == 0) {
      result.verdict = Verdict::kLinearizable;
      return result;
    }
    if (result.steps >= steps_budget) {
      result.verdict = Verdict::kUnknown;
      return result;
    }
    ++result.steps;
    CAIRN_CHECK(entry != kNoNode,
                "while a known-outcome operation is pending its return event is still in the "
                "list, so the walk meets it before the end ({} pending)",
                known_remaining);
    const EventNode& node = list.node(entry);
    if (!node.is_return) {
      const OperationOf<M>& operation = history[operations[node.operation]];
      const bool known = operation.return_time.has_value();
      std::optional<State> next_state = known ? M::Step(state, operation.input, operation.output)
                                              : M::StepUnknownOutcome(state, operation.input);
      if (next_state.has_value()) {
        linearized.Set(node.operation);
        if (first_visit(linearized, *next_state)) {
          stack.push_back(Frame{entry, std::move(state)});
          state = std::move(*next_state);
          list.Lift(entry);
          if (known) --known_remaining;
          if (stack.size() > result.longest_prefix.size()) {
            result.longest_prefix.clear();
            for (const Frame& frame : stack) {
              result.longest_prefix.push_back(list.node(frame.call_node).operation);
            }
          }
          entry = list.First();
          continue;
        }
        linearized.Clear(node.operation);
      }
      entry = node.next;
      continue;
    }
    // A return event: that operation is still pending past its deadline, so no later call can go
    // next and the latest choice was wrong. With nothing left to undo, no linearization exists.
    if (stack.empty()) {
      result.verdict = Verdict::kNotLinearizable;
      return result;
    }
    Frame frame = std::move(stack.back());
    stack.pop_back();
    state = std::move(frame.state_before);
    const size_t undone = list.node(frame.call_node).operation;
    linearized.Clear(undone);
    list.Unlift(frame.call_node);
    if (history[operations[undone]].return_time.has_value()) ++known_remaining;
    entry = list.node(frame.call_node).next;
  }
}

}  // namespace internal

// Checks `history` against model M. Never returns kNotLinearizable for an invalid history.
template <SequentialModel M>
[[nodiscard]] HistoryCheck CheckHistory(std::span<const OperationOf<M>> history,
                                        const CheckOptions& options = {}) {
  HistoryCheck check;
  for (size_t i = 0; i < history.size(); ++i) {
    const OperationOf<M>& operation = history[i];
    if (operation.return_time.has_value() && *operation.return_time < operation.call_time) {
      check.verdict = Verdict::kInvalidHistory;
      check.invalid_reason = fmt::format("operation {} returns at {}, before its call at {}", i,
                                         *operation.return_time, operation.call_time);
      return check;
    }
  }

  const std::vector<std::vector<size_t>> partitions = M::Partition(history);
  check.partitions = partitions.size();
  std::vector<bool> covered(history.size(), false);
  for (const std::vector<size_t>& partition : partitions) {
    for (size_t index : partition) {
      CAIRN_CHECK(index < history.size() && !covered[index],
                  "a model's Partition puts every history index in exactly one partition "
                  "(index {} of {})",
                  index, history.size());
      covered[index] = true;
    }
  }
  CAIRN_CHECK(std::count(covered.begin(), covered.end(), true) ==
                  static_cast<std::ptrdiff_t>(history.size()),
              "a model's Partition leaves no operation out ({} operations)", history.size());

  for (const std::vector<size_t>& partition : partitions) {
    const internal::PartitionSearch search = internal::SearchPartition<M>(
        history, partition, options.steps_max - check.steps, options.cache_entries_max);
    check.steps += search.steps;
    if (search.verdict == Verdict::kLinearizable) {
      ++check.partitions_done;
      continue;
    }
    check.verdict = search.verdict;
    check.stopped_partition = partition;
    if (search.verdict == Verdict::kNotLinearizable) {
      std::vector<bool> placed(partition.size(), false);
      for (size_t local : search.longest_prefix) {
        placed[local] = true;
        check.longest_prefix.push_back(partition[local]);
      }
      for (size_t local = 0; local < partition.size(); ++local) {
        if (!placed[local] && history[partition[local]].return_time.has_value()) {
          check.unplaced.push_back(partition[local]);
        }
      }
      std::stable_sort(check.unplaced.begin(), check.unplaced.end(), [&](size_t a, size_t b) {
        return history[a].call_time < history[b].call_time;
      });
    }
    return check;
  }
  check.verdict = Verdict::kLinearizable;
  return check;
}

}  // namespace cairn::linearizability
