#include "linearizability/kv_model.h"

#include <fmt/format.h>

#include <cctype>
#include <functional>
#include <unordered_map>
#include <utility>

namespace cairn::linearizability {

namespace {

// How many operations an explanation lists from each group before summarizing the rest.
constexpr size_t kExplainedOperationsMax = 12;
// Longer values are cut in descriptions, so one huge value cannot drown the explanation.
constexpr size_t kDescribedValueBytesMax = 40;

// A value as it reads in a description: bare when it is a plain token, otherwise quoted with
// escapes, so that an empty value, a value with spaces or the word "absent" stay unambiguous.
std::string FormatValue(std::string_view value) {
  const std::string_view shown = value.substr(0, kDescribedValueBytesMax);
  bool plain = !shown.empty() && shown != "absent" && shown != "?";
  for (char c : shown) {
    const bool token_char = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' ||
                            c == '-' || c == '.' || c == '/' || c == ':' || c == '@' || c == '+';
    plain = plain && token_char;
  }
  std::string text;
  if (plain) {
    text.append(shown);
  } else {
    text.push_back('"');
    for (char c : shown) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        text += '\\';
        text += c;
      } else if (std::isprint(byte) != 0) {
        text += c;
      } else {
        text += fmt::format("\\x{:02x}", byte);
      }
    }
    text.push_back('"');
  }
  if (value.size() > shown.size()) text += fmt::format("...({} bytes)", value.size());
  return text;
}

std::string FormatOptionalValue(const std::optional<std::string>& value) {
  return value.has_value() ? FormatValue(*value) : "absent";
}

// Why `operation` is malformed, or nullopt when it is well formed.
std::optional<std::string> FindMalformation(const KvOperation& operation) {
  if (operation.return_time.has_value() && *operation.return_time < operation.call_time) {
    return fmt::format("it returns at {}, before its call at {}", *operation.return_time,
                       operation.call_time);
  }
  const bool is_get = operation.kind == KvOperationKind::kGet;
  const bool is_cas = operation.kind == KvOperationKind::kCompareAndSet;
  const bool needs_value =
      operation.kind == KvOperationKind::kPut || operation.kind == KvOperationKind::kCompareAndSet;
  if (needs_value && !operation.value.has_value()) return "it has no new value";
  if (!needs_value && operation.value.has_value()) return "it carries a new value";
  if (!is_cas && operation.expected.has_value())
    return "only a compare-and-set has an expected value";
  if (!is_get && operation.read_value.has_value()) return "only a get has a read value";
  if (!is_cas && !operation.succeeded) {
    return "only a compare-and-set can report failure (leave a definitely failed operation out)";
  }
  return std::nullopt;
}

KvInput ToInput(const KvOperation& operation) {
  return KvInput{operation.kind, operation.key, operation.value, operation.expected};
}

// Appends up to kExplainedOperationsMax lines for `indices` (into `history`), from the front or
// the back, and a line summarizing the rest.
void AppendOperations(std::string& text, const std::vector<KvOperation>& history,
                      const std::vector<size_t>& indices, bool show_tail) {
  const size_t shown = std::min(indices.size(), kExplainedOperationsMax);
  const size_t first = show_tail ? indices.size() - shown : 0;
  if (show_tail && first > 0) text += fmt::format("  ...{} earlier operations\n", first);
  for (size_t i = first; i < first + shown; ++i) {
    text += fmt::format("  {}\n", DescribeOperation(history[indices[i]]));
  }
  if (!show_tail && indices.size() > shown) {
    text += fmt::format("  ...and {} more\n", indices.size() - shown);
  }
}

}  // namespace

std::string_view KvOperationKindName(KvOperationKind kind) {
  switch (kind) {
    case KvOperationKind::kPut:
      return "put";
    case KvOperationKind::kGet:
      return "get";
    case KvOperationKind::kDelete:
      return "delete";
    case KvOperationKind::kCompareAndSet:
      return "cas";
  }
  return "unnamed-operation";
}

std::string DescribeOperation(const KvOperation& operation) {
  const bool known = operation.return_time.has_value();
  const std::string key = FormatValue(operation.key);
  const std::string new_value =
      operation.value.has_value() ? FormatValue(*operation.value) : "<missing>";
  std::string call;
  switch (operation.kind) {
    case KvOperationKind::kPut:
      call = fmt::format("put({}, {})", key, new_value);
      break;
    case KvOperationKind::kGet:
      call =
          fmt::format("get({}) = {}", key, known ? FormatOptionalValue(operation.read_value) : "?");
      break;
    case KvOperationKind::kDelete:
      call = fmt::format("delete({})", key);
      break;
    case KvOperationKind::kCompareAndSet:
      call = fmt::format("cas({}, {} -> {}) = {}", key, FormatOptionalValue(operation.expected),
                         new_value, known ? (operation.succeeded ? "true" : "false") : "?");
      break;
  }
  const std::string return_time = known ? fmt::format("{}", *operation.return_time) : "?";
  return fmt::format("client {}: {} [{}, {}]", operation.client_id, call, operation.call_time,
                     return_time);
}

std::optional<KvModel::State> KvModel::Step(const State& state, const Input& input,
                                            const Output& output) {
  switch (input.kind) {
    case KvOperationKind::kPut:
      return State(input.value);
    case KvOperationKind::kGet:
      if (output.read_value != state) return std::nullopt;
      return state;
    case KvOperationKind::kDelete:
      return State(std::nullopt);
    case KvOperationKind::kCompareAndSet: {
      const bool matches = state == input.expected;
      if (output.succeeded != matches) return std::nullopt;
      return matches ? State(input.value) : state;
    }
  }
  CAIRN_CHECK(false, "every operation kind has a model step (kind {})",
              static_cast<int>(input.kind));
  return std::nullopt;
}

std::optional<KvModel::State> KvModel::StepUnknownOutcome(const State& state, const Input& input) {
  switch (input.kind) {
    case KvOperationKind::kPut:
      return State(input.value);
    case KvOperationKind::kGet:
      return state;
    case KvOperationKind::kDelete:
      return State(std::nullopt);
    case KvOperationKind::kCompareAndSet:
      return state == input.expected ? State(input.value) : state;
  }
  CAIRN_CHECK(false, "every operation kind has a model step (kind {})",
              static_cast<int>(input.kind));
  return std::nullopt;
}

uint64_t KvModel::HashState(const State& state) {
  // Absent and every present value hash apart (a present value gets a different seed).
  if (!state.has_value()) return 0x6b7f1a3c5d2e4f01ULL;
  return internal::CombineHashes(1, std::hash<std::string>{}(*state));
}

std::vector<std::vector<size_t>> KvModel::Partition(
    std::span<const Operation<Input, Output>> history) {
  std::vector<std::vector<size_t>> partitions;
  std::unordered_map<std::string_view, size_t> partition_of_key;
  for (size_t index = 0; index < history.size(); ++index) {
    const auto [it, inserted] =
        partition_of_key.try_emplace(history[index].input.key, partitions.size());
    if (inserted) partitions.emplace_back();
    partitions[it->second].push_back(index);
  }
  return partitions;
}

CheckResult CheckKvHistory(const std::vector<KvOperation>& history, CheckOptions options) {
  CheckResult result;
  for (size_t index = 0; index < history.size(); ++index) {
    if (std::optional<std::string> reason = FindMalformation(history[index])) {
      result.verdict = Verdict::kInvalidHistory;
      result.explanation = fmt::format("invalid history: operation {} ({}): {}", index,
                                       DescribeOperation(history[index]), *reason);
      return result;
    }
  }

  // The model's history, without unknown-outcome gets, and where each entry came from.
  std::vector<OperationOf<KvModel>> model_history;
  std::vector<size_t> original_index;
  model_history.reserve(history.size());
  original_index.reserve(history.size());
  for (size_t index = 0; index < history.size(); ++index) {
    const KvOperation& operation = history[index];
    if (operation.kind == KvOperationKind::kGet && !operation.return_time.has_value()) continue;
    model_history.push_back(OperationOf<KvModel>{
        ToInput(operation), KvOutput{operation.read_value, operation.succeeded},
        operation.call_time, operation.return_time});
    original_index.push_back(index);
  }

  const HistoryCheck check = CheckHistory<KvModel>(model_history, options);
  result.verdict = check.verdict;
  result.steps = check.steps;
  auto to_original = [&](const std::vector<size_t>& indices) {
    std::vector<size_t> mapped;
    mapped.reserve(indices.size());
    for (size_t index : indices) mapped.push_back(original_index[index]);
    return mapped;
  };

  switch (check.verdict) {
    case Verdict::kLinearizable:
      result.explanation = fmt::format("linearizable: {} operations on {} keys ({} search steps)",
                                       history.size(), check.partitions, check.steps);
      break;
    case Verdict::kInvalidHistory:
      result.explanation = fmt::format("invalid history: {}", check.invalid_reason);
      break;
    case Verdict::kUnknown: {
      const std::string key = FormatValue(model_history[check.stopped_partition[0]].input.key);
      result.explanation = fmt::format(
          "unknown: the budget of {} search steps ran out on key {} ({} operations); {} of {} "
          "keys were found linearizable before it",
          options.steps_max, key, check.stopped_partition.size(), check.partitions_done,
          check.partitions);
      break;
    }
    case Verdict::kNotLinearizable: {
      const std::string& raw_key = model_history[check.stopped_partition[0]].input.key;
      const std::string key = FormatValue(raw_key);
      std::string& text = result.explanation;
      text = fmt::format(
          "not linearizable: key {} ({} operations; {} of {} keys were found linearizable "
          "before it)\n",
          key, check.stopped_partition.size(), check.partitions_done, check.partitions);
      text += fmt::format("longest linearizable prefix found for key {}: {} operations\n", key,
                          check.longest_prefix.size());
      AppendOperations(text, history, to_original(check.longest_prefix), /*show_tail=*/true);
      KvModel::State state = KvModel::Init();
      for (size_t index : check.longest_prefix) {
        const OperationOf<KvModel>& operation = model_history[index];
        std::optional<KvModel::State> next =
            operation.return_time.has_value()
                ? KvModel::Step(state, operation.input, operation.output)
                : KvModel::StepUnknownOutcome(state, operation.input);
        CAIRN_CHECK(next.has_value(),
                    "the longest prefix replays through the model (operation {} of key {})",
                    original_index[index], raw_key);
        state = std::move(*next);
      }
      text +=
          fmt::format("value of key {} after that prefix: {}\n", key, FormatOptionalValue(state));
      text += fmt::format(
          "operations with a known outcome that could not be placed after it: {}, by call "
          "time\n",
          check.unplaced.size());
      AppendOperations(text, history, to_original(check.unplaced), /*show_tail=*/false);
      break;
    }
  }
  return result;
}

}  // namespace cairn::linearizability
