// The simulator's clients: operations on a few keys through leaders and followers, timeouts.
#include <fmt/format.h>

#include <algorithm>

#include "base/check.h"
#include "sim/simulation.h"

namespace cairn::sim::internal {

void Simulation::FinishOperation(Client& client, bool known) {
  linearizability::KvOperation& operation = history_[client.history_slot];
  if (known) {
    operation.return_time = now_ms_;
    CheckLatency(client, operation);
  } else {
    ++stats_.operations_unknown;
    if (client.is_read) discarded_[client.history_slot] = true;
  }
  client.busy = false;
  Trace("client {} op {} done ({})", client.number, client.operation_id,
        known ? linearizability::DescribeOperation(operation) : std::string("unknown outcome"));
  ScheduleClient(client, 1 + static_cast<int64_t>(Random(20)));
}

void Simulation::ScheduleClient(Client& client, int64_t delay_ms) {
  if (!clients_on_) return;
  Schedule(now_ms_ + delay_ms, Event{.type = Event::Type::kClientStart, .client = client.number});
}

void Simulation::HandleClientStart(int client_number) {
  Client& client = clients_.at(client_number - 1);
  if (client.busy || !clients_on_) return;
  // Pick a node: the leader hint if it is up, otherwise any node that is up and not paused.
  std::vector<int> candidates;
  for (const Node& node : nodes_) {
    if (node.up && node.paused_until_ms <= now_ms_) candidates.push_back(node.number);
  }
  if (candidates.empty()) return ScheduleClient(client, 50);
  int target = candidates[Random(candidates.size())];
  if (client.preferred_node != 0 && Chance(0.8)) {
    const Node& preferred = nodes_.at(client.preferred_node - 1);
    if (preferred.up && preferred.paused_until_ms <= now_ms_) target = preferred.number;
  }
  Node& node = nodes_.at(target - 1);
  const std::string key = fmt::format("k{}", Random(options_.keys));
  const uint64_t operation_id = (static_cast<uint64_t>(client.number) << 32) | ++client.sequence;
  linearizability::KvOperation operation;
  operation.client_id = static_cast<uint64_t>(client.number);
  operation.key = key;
  operation.call_time = now_ms_;
  const uint64_t choice = Random(10);
  if (choice < 4) {
    const uint64_t read_id = next_read_id_++;
    Status status = node.replica->ReadIndex(read_id);
    if (!status.ok()) {
      client.preferred_node = node.replica->leader() == NodeId(0)
                                  ? 0
                                  : static_cast<int>(node.replica->leader().value());
      return ScheduleClient(client, 10 + static_cast<int64_t>(Random(30)));
    }
    operation.kind = linearizability::KvOperationKind::kGet;
    client.is_read = true;
    client.read_id = read_id;
    node.pending_reads[read_id] = client.number;
  } else {
    KvCommand command{.operation_id = operation_id,
                      .key = key,
                      .value = fmt::format("c{}.{}", client.number, client.sequence)};
    if (choice >= 8) {
      command.kind = KvCommand::Kind::kCompareAndSet;
      // Expect the value the client last saw, or absent, or some other client's value.
      const uint64_t expectation = Random(3);
      if (expectation == 1) {
        command.expected =
            fmt::format("c{}.{}", 1 + Random(options_.clients), 1 + Random(client.sequence));
      } else if (expectation == 2) {
        for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
          if (it->key == key && it->return_time && it->value) {
            command.expected = *it->value;
            break;
          }
        }
      }
    }
    if (!StartWrite(client, node, command)) {
      client.preferred_node = node.replica->leader() == NodeId(0)
                                  ? 0
                                  : static_cast<int>(node.replica->leader().value());
      return ScheduleClient(client, 10 + static_cast<int64_t>(Random(30)));
    }
    operation.kind = command.kind == KvCommand::Kind::kPut
                         ? linearizability::KvOperationKind::kPut
                         : linearizability::KvOperationKind::kCompareAndSet;
    operation.value = command.value;
    if (command.kind == KvCommand::Kind::kCompareAndSet) operation.expected = command.expected;
  }
  client.busy = true;
  client.operation_id = operation_id;
  client.node = node.number;
  client.history_slot = history_.size();
  history_.push_back(std::move(operation));
  discarded_.push_back(false);
  ++stats_.operations;
  Trace("client {} starts op {} at node {}: {}", client.number, operation_id, node.number,
        linearizability::DescribeOperation(history_.back()));
  Schedule(now_ms_ + kClientTimeoutMs, Event{.type = Event::Type::kClientTimeout,
                                             .client = client.number,
                                             .operation_id = operation_id});
  Process(node);
}

bool Simulation::StartWrite(Client& client, Node& node, const KvCommand& command) {
  client.is_read = false;
  client.forwarded = false;
  std::string payload = EncodeKvCommand(command);
  if (node.replica->role() == Role::kLeader) {
    auto index = node.replica->Propose(std::move(payload));
    if (!index.ok()) return false;  // A leadership transfer is under way.
    node.pending_writes[index->value()] = PendingWrite{client.number, command.operation_id};
    return true;
  }
  const NodeId leader = node.replica->leader();
  if (leader == NodeId(0)) return false;
  // As the server does (MemberNode::ProposeOrForward): a follower sends the write to the leader
  // it knows and answers its client once it has applied the entry itself.
  client.forwarded = true;
  node.pending_forwards[command.operation_id] = client.number;
  ++stats_.operations_forwarded;
  const int to = static_cast<int>(leader.value());
  if (std::optional<int64_t> at = ArrivalTime(node.number, to, nullptr)) {
    Event forward{.type = Event::Type::kForward, .node = to, .operation_id = command.operation_id};
    forward.message.from = node.id;
    forward.payload = std::move(payload);
    Schedule(*at, std::move(forward));
  }
  return true;
}

void Simulation::HandleForward(const Event& event) {
  Node& node = nodes_.at(event.node - 1);
  if (!node.up) return;  // Lost with the process: the client's outcome stays unknown.
  if (node.paused_until_ms > now_ms_) {
    Schedule(node.paused_until_ms, event);
    return;
  }
  Result<LogIndex> proposed = node.replica->Propose(event.payload);
  Trace("node {} {} a write forwarded by node {}", node.number,
        proposed.ok() ? "proposes" : "refuses", event.message.from);
  if (proposed.ok()) return Process(node);
  // Not appended anywhere: the server answers ForwardRejected, and so does this.
  const int from = static_cast<int>(event.message.from.value());
  if (std::optional<int64_t> at = ArrivalTime(node.number, from, nullptr)) {
    Schedule(*at, Event{.type = Event::Type::kForwardRejected,
                        .node = from,
                        .operation_id = event.operation_id});
  }
}

void Simulation::HandleForwardRejected(const Event& event) {
  Node& node = nodes_.at(event.node - 1);
  auto pending = node.pending_forwards.find(event.operation_id);
  if (!node.up || pending == node.pending_forwards.end()) return;
  Client& client = clients_.at(pending->second - 1);
  node.pending_forwards.erase(pending);
  if (!client.busy || client.operation_id != event.operation_id) return;
  discarded_[client.history_slot] = true;  // Never proposed: it had no effect.
  FinishOperation(client, /*known=*/false);
}

void Simulation::FinishForwardedWrite(Node& node, uint64_t operation_id, bool succeeded) {
  auto pending = node.pending_forwards.find(operation_id);
  if (pending == node.pending_forwards.end()) return;
  Client& client = clients_.at(pending->second - 1);
  node.pending_forwards.erase(pending);
  if (!client.busy || client.operation_id != operation_id) return;
  history_[client.history_slot].succeeded = succeeded;
  FinishOperation(client, /*known=*/!Chance(reply_loss_rate_));
}

void Simulation::HandleClientTimeout(int client_number, uint64_t operation_id) {
  Client& client = clients_.at(client_number - 1);
  if (!client.busy || client.operation_id != operation_id) return;
  Node& node = nodes_.at(client.node - 1);
  if (client.is_read) {
    node.pending_reads.erase(client.read_id);
  } else if (client.forwarded) {
    node.pending_forwards.erase(operation_id);
  } else {
    for (auto it = node.pending_writes.begin(); it != node.pending_writes.end(); ++it) {
      if (it->second.operation_id == operation_id) {
        node.pending_writes.erase(it);
        break;
      }
    }
  }
  FinishOperation(client, /*known=*/false);
}

}  // namespace cairn::sim::internal
