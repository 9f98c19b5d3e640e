#include "sim/kv_state_machine.h"

#include <fmt/format.h>

#include "base/coding.h"

namespace cairn::sim {
namespace {

void PutString(std::string* out, std::string_view text) {
  PutFixed32(out, static_cast<uint32_t>(text.size()));
  out->append(text);
}

bool GetString(std::string_view* in, std::string* text) {
  if (in->size() < 4) return false;
  const uint32_t size = DecodeFixed32(in->data());
  if (in->size() - 4 < size) return false;
  text->assign(in->data() + 4, size);
  in->remove_prefix(4 + size);
  return true;
}

}  // namespace

std::string EncodeKvCommand(const KvCommand& command) {
  std::string out;
  out.push_back(static_cast<char>(command.kind));
  PutFixed64(&out, command.operation_id);
  PutString(&out, command.key);
  PutString(&out, command.value);
  out.push_back(command.expected.has_value() ? 1 : 0);
  PutString(&out, command.expected.value_or(""));
  return out;
}

Result<KvCommand> DecodeKvCommand(std::string_view payload) {
  KvCommand command;
  if (payload.size() < 9) return Status::Corruption("key-value command too short");
  const uint8_t kind = static_cast<uint8_t>(payload[0]);
  if (kind > static_cast<uint8_t>(KvCommand::Kind::kCompareAndSet)) {
    return Status::Corruption(fmt::format("unknown key-value command kind {}", kind));
  }
  command.kind = static_cast<KvCommand::Kind>(kind);
  command.operation_id = DecodeFixed64(payload.data() + 1);
  payload.remove_prefix(9);
  std::string expected;
  if (!GetString(&payload, &command.key) || !GetString(&payload, &command.value) ||
      payload.empty()) {
    return Status::Corruption("truncated key-value command");
  }
  const bool has_expected = payload[0] != 0;
  payload.remove_prefix(1);
  if (!GetString(&payload, &expected) || !payload.empty()) {
    return Status::Corruption("malformed key-value command");
  }
  if (has_expected) command.expected = expected;
  return command;
}

bool KvStateMachine::Apply(const KvCommand& command) {
  if (command.kind == KvCommand::Kind::kCompareAndSet && Get(command.key) != command.expected) {
    return false;
  }
  values_[command.key] = command.value;
  return true;
}

std::string KvStateMachine::Serialize() const {
  std::string out;
  PutFixed64(&out, values_.size());
  for (const auto& [key, value] : values_) {
    PutString(&out, key);
    PutString(&out, value);
  }
  return out;
}

Result<KvStateMachine> KvStateMachine::Restore(std::string_view data) {
  if (data.size() < 8) return Status::Corruption("key-value snapshot too short");
  const uint64_t count = DecodeFixed64(data.data());
  data.remove_prefix(8);
  KvStateMachine machine;
  for (uint64_t i = 0; i < count; ++i) {
    std::string key;
    std::string value;
    if (!GetString(&data, &key) || !GetString(&data, &value)) {
      return Status::Corruption("truncated key-value snapshot");
    }
    machine.values_[key] = value;
  }
  if (!data.empty()) return Status::Corruption("trailing bytes in key-value snapshot");
  return machine;
}

std::optional<std::string> KvStateMachine::Get(const std::string& key) const {
  auto found = values_.find(key);
  if (found == values_.end()) return std::nullopt;
  return found->second;
}

}  // namespace cairn::sim
