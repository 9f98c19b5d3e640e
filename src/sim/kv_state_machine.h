// KvStateMachine: the small key-value state machine the simulator replicates.
//
// Commands are log payloads encoded by EncodeKvCommand; applying one returns its result. The
// simulator's clients use it to produce a history that the linearizability checker then judges.
// (The server's MVCC store, with revisions and etcd's API, is a separate, richer state machine.)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "base/status.h"

namespace cairn::sim {

struct KvCommand {
  enum class Kind : uint8_t { kPut, kCompareAndSet };
  Kind kind = Kind::kPut;
  uint64_t operation_id = 0;  // Unique per client operation: lets a replica recognise its own.
  std::string key;
  std::string value;
  std::optional<std::string> expected{};  // kCompareAndSet: nullopt = the key must be absent.
};

std::string EncodeKvCommand(const KvCommand& command);
Result<KvCommand> DecodeKvCommand(std::string_view payload);

class KvStateMachine {
 public:
  // Applies a command; returns whether it took effect (a compare-and-set may not).
  bool Apply(const KvCommand& command);
  std::optional<std::string> Get(const std::string& key) const;
  // The whole state, for snapshots.
  std::string Serialize() const;
  static Result<KvStateMachine> Restore(std::string_view data);

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace cairn::sim
