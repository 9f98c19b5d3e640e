// The simulator's faults: rates drawn per seed (swarm testing), fault actions, healing.
#include <fmt/format.h>

#include <algorithm>

#include "base/check.h"
#include "sim/simulation.h"

namespace cairn::sim::internal {

void Simulation::ChooseFaultRates() {
  const uint32_t faults = options_.faults;
  // Swarm testing: each enabled fault gets its own random intensity, sometimes none at all.
  if (faults & kFaultLoss) {
    loss_rate_ = Chance(0.8) ? Random(150) / 1000.0 : 0;
    reply_loss_rate_ = Random(100) / 1000.0;
  }
  if (faults & kFaultDuplicate) duplicate_rate_ = Chance(0.7) ? Random(100) / 1000.0 : 0;
  if (faults & kFaultDelay) delay_max_ms_ = 1 + static_cast<int64_t>(Random(40));
  reorder_ = (faults & kFaultReorder) && Chance(0.7);
  for (Fault fault :
       {kFaultPartition, kFaultCrash, kFaultPause, kFaultTransfer, kFaultMembership}) {
    if ((faults & fault) && Chance(0.85)) fault_actions_.push_back(fault);
  }
  constexpr uint64_t kBatchSizes[] = {1, 2, 4, 64, 256};
  constexpr uint32_t kWindows[] = {1, 2, 8};
  append_entries_max_ = kBatchSizes[Random(5)];
  appends_in_flight_max_ = kWindows[Random(3)];
  constexpr uint64_t kSnapshotIntervals[] = {0, 5, 20, 100};
  constexpr uint64_t kChunkSizes[] = {16, 64, 4096};
  snapshot_every_entries_ = kSnapshotIntervals[Random(4)];
  snapshot_chunk_bytes_ = kChunkSizes[Random(3)];
  async_durability_ = Random(2) == 1;
  segment_bytes_ = 512u << Random(4);
  // Half the seeds write their logs over preallocated segments. Taken from the seed itself, not
  // drawn from the run's random stream, so every other choice of an existing seed stays as it was.
  preallocation_ = (options_.seed * 0x9E3779B97F4A7C15ull) >> 63 ? wal::Preallocation::kInline
                                                                 : wal::Preallocation::kOff;
  for (Node& node : nodes_) {
    if (faults & kFaultDrift) {
      node.tick_period_ms = kTickMs - 2 + static_cast<int64_t>(Random(5));  // 8..12 ms.
    }
  }
  ChooseTiming();
}

void Simulation::ChooseTiming() {
  std::mt19937_64 timing(options_.seed ^ 0x7A3D1C5B9E2F4861ull);
  delay_min_ms_ = 1 + static_cast<int64_t>(timing() % 2);  // 1-2 ms.
  delay_max_ms_ = std::max(delay_max_ms_, delay_min_ms_);
  durability_delay_max_ms_ = 1 + static_cast<int64_t>(timing() % 6);  // 1-6 ms.
  if (options_.faults != 0) return;
  // The server's heartbeat is 100 ms where a loopback round trip and an fdatasync take about a
  // millisecond: here 50 or 100 ms against 2-4 ms round trips.
  heartbeat_interval_ticks_ = 5u << (timing() % 2);
  // Without faults every message takes delay_min_ms_, so each round trip takes round_trip_ms.
  // A write through the leader commits within a round trip to a quorum, in parallel with the
  // leader's own write (write_ms, when durability is reported), but may queue behind one entry
  // per other client and a new leader's no-op, a round trip each when appends carry one entry
  // and one is in flight at a time. A write through a follower adds a round trip (forward, then
  // the commit notice); a linearizable read adds a read-index round, and through a follower
  // the request and answer (a round trip), then waits at most for the writes before it to apply.
  const int64_t round_trip_ms = 2 * delay_min_ms_;
  const int64_t write_ms = async_durability_ ? durability_delay_max_ms_ : 0;
  latency_bound_ms_ = (options_.clients + 3) * round_trip_ms + 2 * write_ms;
  stats_.latency_bound_ms = latency_bound_ms_;
}

void Simulation::HandleFault() {
  if (!faults_on_) return;
  Schedule(now_ms_ + kFaultIntervalMinMs +
               static_cast<int64_t>(Random(kFaultIntervalMaxMs - kFaultIntervalMinMs)),
           Event{.type = Event::Type::kFault});
  if (fault_actions_.empty()) return;
  const int count = static_cast<int>(nodes_.size());
  Node& victim = nodes_.at(Random(count));
  switch (fault_actions_[Random(fault_actions_.size())]) {
    case kFaultPartition: {
      if (!blocked_.empty() && Chance(0.5)) {
        Trace("partition heals");
        blocked_.clear();
        break;
      }
      blocked_.clear();
      const uint64_t kind = Random(4);
      if (kind == 0) {
        // Symmetric: a random minority or majority is cut off from the rest.
        std::set<int> side;
        for (int n = 1; n <= count; ++n) {
          if (Chance(0.5)) side.insert(n);
        }
        for (int a = 1; a <= count; ++a) {
          for (int b = 1; b <= count; ++b) {
            if (side.count(a) != side.count(b)) blocked_.insert({a, b});
          }
        }
        Trace("partition: {} nodes cut off from the rest", side.size());
      } else if (kind == 1) {
        // One way: the victim can send but not receive (or the reverse).
        const bool inbound = Chance(0.5);
        for (int n = 1; n <= count; ++n) {
          if (n != victim.number) {
            blocked_.insert(inbound ? std::make_pair(n, victim.number)
                                    : std::make_pair(victim.number, n));
          }
        }
        Trace("partition: node {} one way ({})", victim.number, inbound ? "deaf" : "mute");
      } else if (kind == 2) {
        // A bridge: two groups that only the victim connects.
        for (int a = 1; a <= count; ++a) {
          for (int b = 1; b <= count; ++b) {
            if (a != victim.number && b != victim.number && (a % 2) != (b % 2)) {
              blocked_.insert({a, b});
            }
          }
        }
        Trace("partition: node {} bridges two halves", victim.number);
      } else {
        for (int n = 1; n <= count; ++n) {
          if (n != victim.number) {
            blocked_.insert({n, victim.number});
            blocked_.insert({victim.number, n});
          }
        }
        Trace("partition: node {} isolated", victim.number);
      }
      break;
    }
    case kFaultCrash:
      if (!victim.up) {
        RestartNode(victim);
      } else if (Chance(0.5)) {
        CrashNode(victim, "killed");
      } else {
        // Die in the middle of a later write: a torn Ready.
        Trace("node {} will crash within its next writes", victim.number);
        victim.fs->SetCrashPoint(1 + Random(8));
      }
      break;
    case kFaultPause:
      if (victim.up) {
        victim.paused_until_ms = now_ms_ + 50 + static_cast<int64_t>(Random(400));
        Trace("node {} paused until {} ms", victim.number, victim.paused_until_ms);
      }
      break;
    case kFaultMembership:
      for (Node& node : nodes_) {
        if (!node.up || node.paused_until_ms > now_ms_ || node.replica->role() != Role::kLeader) {
          continue;
        }
        const consensus::Membership& membership = node.replica->membership();
        std::optional<consensus::MembershipChange> change;
        std::vector<NodeId> outsiders;
        for (const Node& other : nodes_) {
          if (!membership.Contains(other.id)) outsiders.push_back(other.id);
        }
        if (!membership.learners.empty()) {
          change = {consensus::MembershipChange::Kind::kPromoteLearner,
                    *membership.learners.begin()};
        } else if (!outsiders.empty() && Chance(0.6)) {
          change = {consensus::MembershipChange::Kind::kAddLearner,
                    outsiders[Random(outsiders.size())]};
        } else if (membership.voters.size() > 1) {
          auto voter = membership.voters.begin();
          std::advance(voter, Random(membership.voters.size()));
          change = {consensus::MembershipChange::Kind::kRemoveMember, *voter};
        }
        if (change) {
          auto proposed = node.replica->ProposeMembershipChange(*change);
          Trace("leader {} proposes membership change {} of node {}: {}", node.number,
                static_cast<int>(change->kind), change->node,
                proposed.ok() ? std::string("appended") : proposed.status().ToString());
          Process(node);
        }
        break;
      }
      break;
    case kFaultTransfer:
      for (Node& node : nodes_) {
        if (node.up && node.paused_until_ms <= now_ms_ && node.replica->role() == Role::kLeader &&
            count > 1) {
          NodeId target(1 + Random(count));
          if (target == node.id) target = NodeId(target.value() % count + 1);
          Trace("leader {} transfers leadership to {}", node.number, target);
          (void)node.replica->TransferLeadership(target);
          Process(node);
          break;
        }
      }
      break;
    default:
      break;
  }
}

void Simulation::Heal() {
  Trace("faults heal");
  faults_on_ = false;
  blocked_.clear();
  for (Node& node : nodes_) {
    node.paused_until_ms = 0;
    node.fs->ClearCrashPoint();
    if (node.up && node.fs->dead()) CrashNode(node, "its disk had died");
    if (!node.up) RestartNode(node);
  }
}

}  // namespace cairn::sim::internal
