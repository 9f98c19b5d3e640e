// The key-value model for the linearizability checker, and CheckKvHistory, its entry point.
//
// Design note. Cairn's client histories (from the deterministic cluster simulator, later from
// real-process tests) are checked against the simplest sequential key-value store: a map from
// string keys to string values with Put, Get, Delete and CompareAndSet. Keys never interact, so
// the model partitions the history by key and the state of one partition is just the key's
// current value (std::optional<std::string>, nullopt = absent); each key is checked on its own
// (linearizability is compositional, Herlihy & Wing), which keeps each search small.
// Rules it keeps:
//   - A malformed operation (Put or CAS without a new value, a value on a Get, a read value on a
//     Put, a return before the call, ...) makes the verdict kInvalidHistory with the reason; it is
//     never reported as a linearizability violation. We chose a verdict over Result<CheckResult>
//     so that every caller handles all four outcomes in one switch.
//   - An operation with return_time == nullopt has an unknown outcome: it may have taken effect at
//     any point after its call, or never; its output fields are ignored. Unknown-outcome Gets
//     constrain nothing and are dropped before the search (they would only enlarge it).
//   - Equal timestamps: an operation returning at t and another called at t are concurrent.
//   - The explanation of a violation names the key, shows the longest linearizable prefix found
//     (its tail) and the value after it, and the operations that could not be placed, with times.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "linearizability/linearizability_checker.h"

namespace cairn::linearizability {

enum class KvOperationKind : uint8_t { kPut, kGet, kDelete, kCompareAndSet };

[[nodiscard]] std::string_view KvOperationKindName(KvOperationKind kind);

// One client operation as recorded.
struct KvOperation {
  uint64_t client_id = 0;
  KvOperationKind kind = KvOperationKind::kGet;
  std::string key;
  std::optional<std::string> value;     // Put and CAS: the new value. Unset for Get and Delete.
  std::optional<std::string> expected;  // CAS only: the expected value (nullopt = must be absent).
  // Output, meaningful only when the outcome is known:
  std::optional<std::string> read_value;  // Get: the value seen (nullopt = absent).
  bool succeeded = true;                  // CAS: whether it swapped. Always true for the others.
  int64_t call_time = 0;                  // Virtual time of the invocation.
  std::optional<int64_t> return_time;     // Virtual time of the response; nullopt = unknown.
};

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  // Human-readable: for kNotLinearizable the key, the longest linearizable prefix and the
  // operations that could not be placed; for kInvalidHistory the broken rule and the operation;
  // for kUnknown where the budget ran out.
  std::string explanation;
  uint64_t steps = 0;  // Search steps spent (see CheckOptions::steps_max).
};

// Checks a recorded key-value history for linearizability.
[[nodiscard]] CheckResult CheckKvHistory(const std::vector<KvOperation>& history,
                                         CheckOptions options = {});

// "client 3: cas(x, 1 -> 2) = true [10, 14]"; an unknown outcome prints "= ?" and "[10, ?]".
[[nodiscard]] std::string DescribeOperation(const KvOperation& operation);

// The sequential model, usable with CheckHistory directly.
struct KvInput {
  KvOperationKind kind = KvOperationKind::kGet;
  std::string key;
  std::optional<std::string> value;
  std::optional<std::string> expected;
};

struct KvOutput {
  std::optional<std::string> read_value;
  bool succeeded = true;
};

struct KvModel {
  using State = std::optional<std::string>;  // The key's current value; nullopt = absent.
  using Input = KvInput;
  using Output = KvOutput;

  [[nodiscard]] static State Init() { return std::nullopt; }
  [[nodiscard]] static std::optional<State> Step(const State& state, const Input& input,
                                                 const Output& output);
  [[nodiscard]] static std::optional<State> StepUnknownOutcome(const State& state,
                                                               const Input& input);
  [[nodiscard]] static uint64_t HashState(const State& state);
  // One partition per key, in order of the key's first appearance; indices ascending within.
  [[nodiscard]] static std::vector<std::vector<size_t>> Partition(
      std::span<const Operation<Input, Output>> history);
};

static_assert(SequentialModel<KvModel>);

}  // namespace cairn::linearizability
