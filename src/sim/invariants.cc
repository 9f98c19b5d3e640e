// The simulator's checks: after every step (Fail, CheckPersisted, CheckNode) and at the end of a
// run.
#include <fmt/format.h>

#include <algorithm>

#include "base/check.h"
#include "sim/simulation.h"

namespace cairn::sim::internal {

void Simulation::Fail(std::string what) {
  if (failure_.empty()) failure_ = fmt::format("at {} ms: {}", now_ms_, what);
}

void Simulation::CheckPersisted(Node& node, const std::vector<wal::Entry>& entries) {
  for (const wal::Entry& entry : entries) {
    const LogIndex previous = entry.index.prev();
    const uint64_t previous_generation =
        previous == LogIndex(0) ? 0 : node.replica->log().GenerationAt(previous)->value();
    auto [slot, inserted] =
        seen_entries_.emplace(std::make_pair(entry.index.value(), entry.generation.value()),
                              std::make_pair(entry.payload, previous_generation));
    if (!inserted &&
        (slot->second.first != entry.payload || slot->second.second != previous_generation)) {
      return Fail(
          fmt::format("log matching: node {} holds a different entry at index {} "
                      "generation {} than another node",
                      node.number, entry.index, entry.generation));
    }
  }
}

void Simulation::CheckNode(Node& node) {
  const Replica& replica = *node.replica;
  const LogIndex commit = replica.log().commit_index();
  if (commit < node.last_commit) {
    return Fail(fmt::format("node {} commit index went back from {} to {}", node.number,
                            node.last_commit, commit));
  }
  if (replica.role() == Role::kLeader) {
    // A leader's commit index moves only by counting replicas: these entries are committed in
    // its generation (unless an earlier leader already committed them).
    for (LogIndex index = std::max(node.last_commit.next(), replica.log().first_index());
         index <= commit; index = index.next()) {
      const wal::Entry& entry = replica.log().At(index);
      EntryIdentity identity{entry.generation.value(), entry.payload};
      auto [slot, inserted] =
          committed_.emplace(index.value(), std::make_pair(replica.generation().value(), identity));
      if (!inserted && slot->second.second != identity) {
        return Fail(
            fmt::format("state machine safety: leader {} of generation {} committed "
                        "entry {} of generation {}, but generation {} committed another "
                        "entry (of generation {}) there",
                        node.number, replica.generation(), index, entry.generation,
                        slot->second.first, slot->second.second.generation));
      }
    }
  }
  node.last_commit = commit;
  if (replica.log().applied_index() > commit) {
    return Fail(fmt::format("node {} applied up to {} above its high-water mark {}", node.number,
                            replica.log().applied_index(), commit));
  }
  if (replica.generation() < node.highest_generation) {
    return Fail(fmt::format("node {} generation went back", node.number));
  }
  const bool is_leader = replica.role() == Role::kLeader;
  if (is_leader) {
    auto [slot, inserted] = leader_of_generation_.emplace(replica.generation().value(), node.id);
    if (!inserted && slot->second != node.id) {
      return Fail(fmt::format("two leaders in generation {}: nodes {} and {}", replica.generation(),
                              slot->second, node.id));
    }
    if (!node.was_leader) {
      ++stats_.leader_elections;
      Trace("node {} leads generation {}", node.number, replica.generation());
      // Leader completeness: a leader holds every entry committed in an earlier generation.
      // (A stale leader of an older generation, elected late, need not hold later commits.)
      for (const auto& [index, commit_record] : committed_) {
        const auto& [commit_generation, committed] = commit_record;
        if (commit_generation >= replica.generation().value()) continue;
        if (LogIndex(index) <= replica.log().snapshot_index()) continue;  // Covered by a snapshot.
        if (LogIndex(index) > replica.log().last_index() ||
            EntryIdentity{replica.log().At(LogIndex(index)).generation.value(),
                          replica.log().At(LogIndex(index)).payload} != committed) {
          return Fail(
              fmt::format("leader completeness: new leader {} of generation {} lacks "
                          "entry {} committed in generation {}",
                          node.number, replica.generation(), index, commit_generation));
        }
      }
    }
  }
  node.was_leader = is_leader;
}

void Simulation::CheckConvergence() {
  const Node* leader = nullptr;
  for (const Node& node : nodes_) {
    if (!node.up) return Fail(fmt::format("liveness: node {} is still down", node.number));
    if (node.replica->role() == Role::kLeader &&
        (leader == nullptr || node.replica->generation() > leader->replica->generation())) {
      leader = &node;
    }
  }
  if (leader == nullptr) {
    std::string states;
    for (const Node& node : nodes_) {
      states +=
          fmt::format("; node {} {} in generation {}, leader {}, log [{}, {}], commit {}, {}",
                      node.number, consensus::RoleName(node.replica->role()),
                      node.replica->generation(), node.replica->leader(),
                      node.replica->log().first_index(), node.replica->log().last_index(),
                      node.replica->log().commit_index(), node.replica->membership().ToString());
    }
    return Fail(fmt::format("liveness: no leader {} ms after the faults healed{}",
                            options_.liveness_bound_ms, states));
  }
  const LogIndex last = leader->replica->log().last_index();
  const consensus::Membership& membership = leader->replica->membership();
  if (leader->replica->log().commit_index() != last) {
    return Fail(fmt::format("liveness: leader {} has not committed its log ({} of {})",
                            leader->number, leader->replica->log().commit_index(), last));
  }
  for (const Node& node : nodes_) {
    if (!membership.Contains(node.id))
      continue;  // Removed, or never added: not expected to follow.
    if (node.replica->log().applied_index() != last) {
      return Fail(fmt::format(
          "liveness: node {} applied {} of the leader's {} entries {} ms "
          "after the faults healed",
          node.number, node.replica->log().applied_index(), last, options_.liveness_bound_ms));
    }
  }
}

void Simulation::CheckLatency(const Client& client, const linearizability::KvOperation& operation) {
  const int64_t latency_ms = now_ms_ - operation.call_time;
  stats_.latency_max_ms = std::max(stats_.latency_max_ms, latency_ms);
  if (latency_bound_ms_ == 0 || latency_ms <= latency_bound_ms_) return;
  const Node& node = nodes_.at(client.node - 1);
  Fail(fmt::format(
      "latency: client {} waited {} ms for {} through node {} ({}), over the "
      "bound of {} ms for a fault-free seed ({} ms round trips, writes durable "
      "within {} ms, heartbeats every {} ms)",
      client.number, latency_ms, linearizability::DescribeOperation(operation), node.number,
      client.is_read     ? "a read"
      : client.forwarded ? "a write forwarded to the leader"
                         : "a write at the leader",
      latency_bound_ms_, 2 * delay_min_ms_, async_durability_ ? durability_delay_max_ms_ : 0,
      heartbeat_interval_ticks_ * kTickMs));
}

void Simulation::CheckLinearizable() {
  std::vector<linearizability::KvOperation> history;
  for (size_t slot = 0; slot < history_.size(); ++slot) {
    if (!discarded_[slot]) history.push_back(history_[slot]);
  }
  const linearizability::CheckResult result = linearizability::CheckKvHistory(history);
  stats_.linearizability_steps = result.steps;
  if (result.verdict == linearizability::Verdict::kNotLinearizable) {
    Fail("the client history is not linearizable: " + result.explanation);
  } else if (result.verdict != linearizability::Verdict::kLinearizable) {
    Fail("the linearizability check did not finish: " + result.explanation);
  }
}

}  // namespace cairn::sim::internal
