// Scenario tests for the consensus core: small clusters on a hand-driven network, each test a
// readable trace of steps and the state expected after them.
#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <map>
#include <memory>
#include <set>

#include "consensus/replica.h"

namespace cairn::consensus {
namespace {

// A cluster of Replicas whose "disks" and network are plain containers. Every Ready is carried out
// in order: persist, send, apply, read.
class Cluster {
 public:
  explicit Cluster(uint64_t size, bool pre_vote = true, bool check_quorum = true,
                   uint64_t snapshot_chunk_bytes = 64u << 10, uint64_t initial_voters = 0,
                   PlantedBug planted_bug = PlantedBug::kNone) {
    if (initial_voters == 0) initial_voters = size;
    for (uint64_t id = 1; id <= initial_voters; ++id) voters_.insert(NodeId(id));
    std::set<NodeId> everyone;
    for (uint64_t id = 1; id <= size; ++id) everyone.insert(NodeId(id));
    for (NodeId id : everyone) {
      options_[id] = ReplicaOptions{.id = id,
                                    .voters = voters_,
                                    .heartbeat_interval_ticks = 1,
                                    .election_timeout_ticks = 10,
                                    .pre_vote = pre_vote,
                                    .check_quorum = check_quorum,
                                    .snapshot_chunk_bytes = snapshot_chunk_bytes,
                                    .random_seed = id.value(),
                                    .planted_bug = planted_bug};
      disks_[id] = Disk{};
      Start(id);
    }
  }

  Replica& operator[](uint64_t id) { return *replicas_.at(NodeId(id)); }

  // Crash and restart from what was persisted.
  void Restart(uint64_t id) {
    replicas_.erase(NodeId(id));
    Start(NodeId(id));
  }

  void Tick(uint64_t id, int times = 1) {
    for (int i = 0; i < times; ++i) {
      (*this)[id].Tick();
      Process(NodeId(id));
    }
  }

  // Ticks one node until it is the leader (bounded), delivering messages after each tick.
  void ElectLeader(uint64_t id) {
    for (int i = 0; i < 100 && (*this)[id].role() != Role::kLeader; ++i) {
      Tick(id);
      DeliverAll();
    }
    ASSERT_EQ(Role::kLeader, (*this)[id].role()) << "node " << id << " did not become leader";
    DeliverAll();
  }

  // Ticks every node in `candidates` each round until one of them leads (bounded); returns it.
  uint64_t TickUntilLeaderAmong(std::vector<uint64_t> candidates) {
    for (int round = 0; round < 200; ++round) {
      for (uint64_t id : candidates) {
        if ((*this)[id].role() == Role::kLeader) {
          DeliverAll();
          return id;
        }
      }
      for (uint64_t id : candidates) Tick(id);
      DeliverAll();
    }
    ADD_FAILURE() << "no leader emerged";
    return 0;
  }

  Result<LogIndex> ProposeMembershipChange(uint64_t id, MembershipChange change) {
    auto index = (*this)[id].ProposeMembershipChange(change);
    Process(NodeId(id));
    return index;
  }

  Status TransferLeadership(uint64_t id, uint64_t target) {
    Status status = (*this)[id].TransferLeadership(NodeId(target));
    Process(NodeId(id));
    return status;
  }

  Result<LogIndex> Propose(uint64_t id, std::string payload) {
    auto index = (*this)[id].Propose(std::move(payload));
    Process(NodeId(id));
    return index;
  }

  void ReadIndex(uint64_t id, uint64_t read_id) {
    ASSERT_TRUE((*this)[id].ReadIndex(read_id).ok());
    Process(NodeId(id));
  }

  // Delivers messages until none are left (bounded); messages on cut links are dropped.
  void DeliverAll() {
    for (int delivered = 0; delivered < 10'000 && !network_.empty(); ++delivered) {
      Message message = std::move(network_.front());
      network_.pop_front();
      if (cut_.count(message.from) || cut_.count(message.to) ||
          cut_links_.count({message.from, message.to}) || replicas_.count(message.to) == 0) {
        continue;  // Cut, or addressed to a node that does not exist.
      }
      (*this)[message.to.value()].Step(message);
      Process(message.to);
    }
    ASSERT_TRUE(network_.empty()) << "the cluster did not go quiet";
  }

  // Delivers messages until none are left, except those addressed to `held`, which wait (in
  // order) until Release.
  void DeliverAllBut(uint64_t held) {
    std::deque<Message> waiting;
    for (int delivered = 0; delivered < 10'000 && !network_.empty(); ++delivered) {
      Message message = std::move(network_.front());
      network_.pop_front();
      if (message.to == NodeId(held)) {
        waiting.push_back(std::move(message));
        continue;
      }
      (*this)[message.to.value()].Step(message);
      Process(message.to);
    }
    ASSERT_TRUE(network_.empty()) << "the cluster did not go quiet";
    network_ = std::move(waiting);
  }

  void Isolate(uint64_t id) { cut_.insert(NodeId(id)); }
  // Drops every message from `from` to `to` (one direction only).
  void CutLink(uint64_t from, uint64_t to) { cut_links_.insert({NodeId(from), NodeId(to)}); }
  void Heal() {
    cut_.clear();
    cut_links_.clear();
  }
  void DropPending() { network_.clear(); }

  const std::vector<wal::Entry>& Applied(uint64_t id) { return applied_[NodeId(id)]; }
  const std::vector<ReadState>& Reads(uint64_t id) { return reads_[NodeId(id)]; }
  const std::vector<wal::Entry>& DurableLog(uint64_t id) { return disks_[NodeId(id)].entries; }
  std::vector<std::string> AppliedCommands(uint64_t id) {
    std::vector<std::string> commands;
    for (const wal::Entry& entry : Applied(id)) {
      if (entry.type == static_cast<uint8_t>(EntryType::kCommand)) commands.push_back(entry.payload);
    }
    return commands;
  }

 private:
  struct Disk {
    HardState hard_state;
    LogIndex snapshot_index;
    Generation snapshot_generation;
    std::string snapshot_data;
    std::optional<Membership> snapshot_membership;
    std::vector<wal::Entry> entries;  // From snapshot_index + 1.
  };

 public:
  const Disk& DiskOf(uint64_t id) { return disks_[NodeId(id)]; }
  void Step(uint64_t id, const Message& message) {
    (*this)[id].Step(message);
    Process(NodeId(id));
  }
  void Compact(uint64_t id, LogIndex index, std::string data) {
    ASSERT_TRUE((*this)[id].CompactLog(index, data).ok());
    Disk& disk = disks_[NodeId(id)];
    disk.entries.erase(disk.entries.begin(),
                       disk.entries.begin() + (index.value() - disk.snapshot_index.value()));
    disk.snapshot_generation = (*this)[id].log().GenerationAt(index).value();
    disk.snapshot_index = index;
    disk.snapshot_membership = (*this)[id].MembershipAt(index);
    disk.snapshot_data = std::move(data);
  }

 private:

  void Start(NodeId id) {
    const Disk& disk = disks_[id];
    replicas_[id] = std::make_unique<Replica>(
        options_[id],
        RecoveredState{disk.hard_state, disk.snapshot_index, disk.snapshot_generation,
                       disk.snapshot_data, disk.snapshot_membership, disk.entries, nullptr});
    applied_[id].clear();  // A restarted state machine replays the log from the start.
  }

  void Process(NodeId id) {
    Replica& replica = *replicas_.at(id);
    while (replica.HasReady()) {
      Ready ready = replica.TakeReady();
      Disk& disk = disks_[id];
      if (ready.hard_state) disk.hard_state = *ready.hard_state;
      if (ready.snapshot) {
        disk.snapshot_index = ready.snapshot->index;
        disk.snapshot_generation = ready.snapshot->generation;
        disk.snapshot_data = ready.snapshot->data;
        disk.snapshot_membership = ready.snapshot->membership;
        disk.entries.clear();
        installed_[id].push_back(ready.snapshot->data);
      }
      if (ready.truncate_after) {
        disk.entries.resize(ready.truncate_after->value() - disk.snapshot_index.value());
      }
      for (wal::Entry& entry : ready.entries) {
        ASSERT_EQ(disk.snapshot_index.value() + disk.entries.size() + 1, entry.index.value())
            << "persisted entries are contiguous";
        disk.entries.push_back(entry);
      }
      for (Message& message : ready.messages) network_.push_back(std::move(message));
      for (wal::Entry& entry : ready.committed) applied_[id].push_back(std::move(entry));
      for (ReadState& read : ready.reads) {
        if (read.status.ok()) {
          ASSERT_LE(read.index.value(), applied_[id].size()) << "reads are served after applying";
        }
        reads_[id].push_back(std::move(read));
      }
      replica.Advance();
    }
  }

  std::set<NodeId> voters_;
  std::map<NodeId, ReplicaOptions> options_;
  std::map<NodeId, Disk> disks_;
  std::map<NodeId, std::unique_ptr<Replica>> replicas_;
  std::map<NodeId, std::vector<wal::Entry>> applied_;
  std::map<NodeId, std::vector<ReadState>> reads_;

 public:
  std::map<NodeId, std::vector<std::string>> installed_;  // Snapshots each node installed.

 private:
  std::deque<Message> network_;
  std::set<NodeId> cut_;
  std::set<std::pair<NodeId, NodeId>> cut_links_;
};

TEST(ReplicaScenario, SingleNodeElectsItselfAndCommitsAtOnce) {
  Cluster cluster(1);
  cluster.ElectLeader(1);
  EXPECT_EQ(Generation(1), cluster[1].generation());
  ASSERT_TRUE(cluster.Propose(1, "a").ok());
  EXPECT_EQ(std::vector<std::string>{"a"}, cluster.AppliedCommands(1));
}

TEST(ReplicaScenario, ElectionInThreeNodes) {
  Cluster cluster(3);
  // Node 1 times out first: pre-vote in generation 1 succeeds, then the real vote.
  cluster.ElectLeader(1);
  EXPECT_EQ(Generation(1), cluster[1].generation());
  for (uint64_t id : {2, 3}) {
    EXPECT_EQ(Role::kFollower, cluster[id].role());
    EXPECT_EQ(NodeId(1), cluster[id].leader());
    EXPECT_EQ(Generation(1), cluster[id].generation());
    EXPECT_EQ(NodeId(1), cluster[id].voted_for());
  }
  // The leader's no-op of generation 1 is committed everywhere after a heartbeat.
  cluster.Tick(1);
  cluster.DeliverAll();
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(LogIndex(1), cluster[id].log().commit_index());
}

TEST(ReplicaScenario, SplitVoteThenRecovery) {
  Cluster cluster(4, /*pre_vote=*/false);
  // Nodes 1 and 2 campaign in generation 1 at the same time. Node 3 hears only node 1 and node 4
  // hears only node 2, so each candidate gets two votes of four: no majority (three).
  cluster.CutLink(1, 4);
  cluster.CutLink(2, 3);
  for (int i = 0; i < 30 && cluster[1].role() != Role::kCandidate; ++i) cluster.Tick(1);
  for (int i = 0; i < 30 && cluster[2].role() != Role::kCandidate; ++i) cluster.Tick(2);
  ASSERT_EQ(Role::kCandidate, cluster[1].role());
  ASSERT_EQ(Role::kCandidate, cluster[2].role());
  cluster.DeliverAll();
  EXPECT_EQ(Role::kCandidate, cluster[1].role()) << "a split vote elects no one";
  EXPECT_EQ(Role::kCandidate, cluster[2].role());
  EXPECT_EQ(NodeId(1), cluster[3].voted_for());
  EXPECT_EQ(NodeId(2), cluster[4].voted_for());
  // The links heal; randomized timeouts break the tie in a later generation.
  cluster.Heal();
  const uint64_t leader = cluster.TickUntilLeaderAmong({1, 2, 3, 4});
  ASSERT_NE(0u, leader);
  EXPECT_GE(cluster[leader].generation(), Generation(2));
  int leaders = 0;
  for (uint64_t id : {1, 2, 3, 4}) leaders += cluster[id].role() == Role::kLeader;
  EXPECT_EQ(1, leaders);
}

TEST(ReplicaScenario, ReplicationCommitsOnMajorityAndAppliesEverywhere) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  ASSERT_EQ(LogIndex(2), cluster.Propose(1, "x=1").value());
  ASSERT_EQ(LogIndex(3), cluster.Propose(1, "x=2").value());
  cluster.DeliverAll();
  cluster.Tick(1);  // A heartbeat tells followers the new commit index.
  cluster.DeliverAll();
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ((std::vector<std::string>{"x=1", "x=2"}), cluster.AppliedCommands(id)) << id;
  }
}

TEST(ReplicaScenario, NoCommitWithoutMajority) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Isolate(2);
  cluster.Isolate(3);
  ASSERT_TRUE(cluster.Propose(1, "lonely").ok());
  cluster.DeliverAll();
  EXPECT_EQ(LogIndex(1), cluster[1].log().commit_index());
  EXPECT_TRUE(cluster.AppliedCommands(1).empty());
}

TEST(ReplicaScenario, ConflictingSuffixIsTruncatedAfterNewLeader) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  // Leader 1 is cut off and appends entries no one else gets.
  cluster.Isolate(1);
  ASSERT_TRUE(cluster.Propose(1, "lost-1").ok());
  ASSERT_TRUE(cluster.Propose(1, "lost-2").ok());
  cluster.DeliverAll();
  // Nodes 2 and 3 stop hearing from it, elect one of themselves in generation 2, and commit an
  // entry of their own.
  const uint64_t leader = cluster.TickUntilLeaderAmong({2, 3});
  ASSERT_NE(0u, leader);
  EXPECT_EQ(Generation(2), cluster[leader].generation());
  ASSERT_TRUE(cluster.Propose(leader, "kept").ok());
  cluster.DeliverAll();
  // Node 1 rejoins: it learns generation 2, steps down, and its conflicting suffix is replaced.
  cluster.Heal();
  cluster.Tick(leader);
  cluster.DeliverAll();
  cluster.Tick(leader);
  cluster.DeliverAll();
  EXPECT_EQ(Role::kFollower, cluster[1].role());
  EXPECT_EQ(Generation(2), cluster[1].generation());
  EXPECT_EQ(cluster.DurableLog(leader), cluster.DurableLog(1));
  EXPECT_EQ(std::vector<std::string>{"kept"}, cluster.AppliedCommands(1));
}

TEST(ReplicaScenario, PreVoteKeepsRejoiningNodeQuiet) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Isolate(3);
  cluster.Tick(3, 100);  // Times out again and again, but only pre-votes: no new generation.
  EXPECT_EQ(Generation(1), cluster[3].generation());
  cluster.DropPending();
  cluster.Heal();
  cluster.Tick(1);
  cluster.DeliverAll();
  EXPECT_EQ(Role::kLeader, cluster[1].role()) << "the healthy leader was not deposed";
  EXPECT_EQ(Generation(1), cluster[1].generation());
  EXPECT_EQ(NodeId(1), cluster[3].leader());
}

TEST(ReplicaScenario, CheckQuorumLeaderStepsDownWhenCutOff) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Isolate(1);
  cluster.Tick(1, 25);
  cluster.DeliverAll();
  EXPECT_EQ(Role::kFollower, cluster[1].role());
}

TEST(ReplicaScenario, LeadershipTransfer) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  ASSERT_TRUE(cluster.Propose(1, "before").ok());
  cluster.DeliverAll();
  ASSERT_TRUE(cluster.TransferLeadership(1, 2).ok());
  EXPECT_EQ(StatusCode::kBusy, cluster[1].Propose("during").status().code());
  cluster.DeliverAll();
  EXPECT_EQ(Role::kLeader, cluster[2].role());
  EXPECT_EQ(Generation(2), cluster[2].generation());
  EXPECT_EQ(Role::kFollower, cluster[1].role());
}

TEST(ReplicaScenario, LeaderReadIndexConfirmsWithHeartbeatRound) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Tick(1);
  cluster.DeliverAll();
  ASSERT_TRUE(cluster.Propose(1, "x=1").ok());
  cluster.DeliverAll();
  cluster.ReadIndex(1, 7);
  EXPECT_TRUE(cluster.Reads(1).empty()) << "not served before a majority confirms leadership";
  cluster.DeliverAll();
  ASSERT_EQ(1u, cluster.Reads(1).size());
  EXPECT_TRUE(cluster.Reads(1)[0].status.ok());
  EXPECT_EQ(7u, cluster.Reads(1)[0].read_id);
  EXPECT_EQ(LogIndex(2), cluster.Reads(1)[0].index);
}

TEST(ReplicaScenario, ReadIndexOnCutOffLeaderNeverSucceeds) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Tick(1);
  cluster.DeliverAll();
  cluster.Isolate(1);
  cluster.ReadIndex(1, 9);
  cluster.Tick(1, 25);  // Check-quorum makes it step down; the read fails, never succeeds.
  cluster.DeliverAll();
  ASSERT_EQ(1u, cluster.Reads(1).size());
  EXPECT_EQ(StatusCode::kNotLeader, cluster.Reads(1)[0].status.code());
}

TEST(ReplicaScenario, FollowerReadWaitsForApply) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  ASSERT_TRUE(cluster.Propose(1, "x=1").ok());
  cluster.DeliverAll();
  cluster.ReadIndex(3, 11);
  cluster.DeliverAll();
  cluster.Tick(1);
  cluster.DeliverAll();
  ASSERT_EQ(1u, cluster.Reads(3).size());
  EXPECT_TRUE(cluster.Reads(3)[0].status.ok());
  EXPECT_GE(cluster.Reads(3)[0].index, LogIndex(2));
  EXPECT_EQ(std::vector<std::string>{"x=1"}, cluster.AppliedCommands(3));
}

TEST(ReplicaScenario, RestartKeepsGenerationAndVote) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Restart(2);
  EXPECT_EQ(Generation(1), cluster[2].generation());
  EXPECT_EQ(NodeId(1), cluster[2].voted_for());
  EXPECT_EQ(cluster.DurableLog(1).size(), cluster[2].log().last_index().value());
}

TEST(ReplicaScenario, ProposalOnFollowerNamesTheLeader) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  auto result = cluster[2].Propose("x");
  EXPECT_EQ(StatusCode::kNotLeader, result.status().code());
  EXPECT_NE(std::string::npos, result.status().message().find("the leader is 1"));
}

TEST(ReplicaScenario, LaggingFollowerCatchesUpBySnapshotInChunks) {
  Cluster cluster(3, /*pre_vote=*/true, /*check_quorum=*/true, /*snapshot_chunk_bytes=*/4);
  cluster.ElectLeader(1);
  cluster.Isolate(3);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(cluster.Propose(1, "v" + std::to_string(i)).ok());
  cluster.DeliverAll();
  cluster.Tick(1);
  cluster.DeliverAll();
  const LogIndex applied = cluster[1].log().applied_index();
  ASSERT_EQ(LogIndex(21), applied);
  // The leader snapshots and drops its log: node 3 can only catch up from the snapshot.
  cluster.Compact(1, applied, "state-after-21-entries");
  EXPECT_EQ(LogIndex(22), cluster[1].log().first_index());
  cluster.Heal();
  for (int i = 0; i < 30 && cluster.installed_[NodeId(3)].empty(); ++i) {
    cluster.Tick(1);
    cluster.DeliverAll();
  }
  ASSERT_EQ(1u, cluster.installed_[NodeId(3)].size()) << "installed once, from many chunks";
  EXPECT_EQ("state-after-21-entries", cluster.installed_[NodeId(3)][0]);
  EXPECT_EQ(LogIndex(21), cluster.DiskOf(3).snapshot_index);
  // Replication resumes after the snapshot.
  ASSERT_TRUE(cluster.Propose(1, "after").ok());
  cluster.DeliverAll();
  cluster.Tick(1);
  cluster.DeliverAll();
  EXPECT_EQ(LogIndex(22), cluster[3].log().commit_index());
  EXPECT_EQ(std::vector<std::string>{"after"}, cluster.AppliedCommands(3));
  // And a restart recovers from the snapshot plus the log.
  cluster.Restart(3);
  EXPECT_EQ(LogIndex(21), cluster[3].log().snapshot_index());
  EXPECT_EQ(LogIndex(22), cluster[3].log().last_index());
}

TEST(ReplicaScenario, HostilePeerInputNeverCrashes) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  ASSERT_TRUE(cluster.Propose(1, "x").ok());
  cluster.DeliverAll();
  const Generation generation = cluster[1].generation();
  constexpr uint64_t kHuge = UINT64_MAX;
  // A rejection of an index the leader never sent.
  cluster.Step(1, Message{.type = MessageType::kAppendResponse, .from = NodeId(2), .to = NodeId(1),
                          .generation = generation, .log_index = LogIndex(1000), .rejected = true,
                          .hint_index = LogIndex(1000)});
  // An acknowledgement of entries the leader does not have.
  cluster.Step(1, Message{.type = MessageType::kAppendResponse, .from = NodeId(2), .to = NodeId(1),
                          .generation = generation, .match_index = LogIndex(kHuge)});
  // An append at the top of the index range, and one with the largest generation.
  cluster.Step(2, Message{.type = MessageType::kAppend, .from = NodeId(1), .to = NodeId(2),
                          .generation = generation, .log_index = LogIndex(kHuge)});
  cluster.Step(2, Message{.type = MessageType::kHeartbeat, .from = NodeId(1), .to = NodeId(2),
                          .generation = Generation(kHuge)});
  // Entries that do not follow, or claim a newer generation than their message.
  Message bad_append{.type = MessageType::kAppend, .from = NodeId(1), .to = NodeId(2),
                     .generation = generation, .log_index = LogIndex(1),
                     .log_generation = generation};
  bad_append.entries.push_back(wal::Entry{LogIndex(5), generation, 1, "gap"});
  cluster.Step(2, bad_append);
  bad_append.entries = {wal::Entry{LogIndex(2), Generation(generation.value() + 7), 1, "future"}};
  cluster.Step(2, bad_append);
  // A commit index far beyond the log, a snapshot chunk out of nowhere, a message from itself.
  cluster.Step(2, Message{.type = MessageType::kHeartbeat, .from = NodeId(1), .to = NodeId(2),
                          .generation = generation, .commit_index = LogIndex(1u << 20)});
  cluster.Step(2, Message{.type = MessageType::kSnapshot, .from = NodeId(1), .to = NodeId(2),
                          .generation = generation, .log_index = LogIndex(90),
                          .log_generation = generation, .snapshot_offset = 77,
                          .snapshot_chunk = "zz"});
  cluster.Step(2, Message{.type = MessageType::kVote, .from = NodeId(2), .to = NodeId(2),
                          .generation = Generation(generation.value() + 1)});
  cluster.DeliverAll();
  // Still one healthy cluster in the same generation, still committing.
  EXPECT_EQ(Role::kLeader, cluster[1].role());
  EXPECT_EQ(generation, cluster[2].generation());
  ASSERT_TRUE(cluster.Propose(1, "y").ok());
  cluster.DeliverAll();
  cluster.Tick(1);
  cluster.DeliverAll();
  EXPECT_EQ((std::vector<std::string>{"x", "y"}), cluster.AppliedCommands(2));
}

TEST(ReplicaScenario, ForwardedFollowerReadFailsWhenTheLeaderChanges) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Tick(1);
  cluster.DeliverAll();
  cluster.Isolate(1);
  cluster.ReadIndex(3, 5);  // Forwarded to node 1, which cannot answer.
  cluster.DeliverAll();
  const uint64_t leader = cluster.TickUntilLeaderAmong({2, 3});
  ASSERT_NE(0u, leader);
  cluster.DeliverAll();
  ASSERT_EQ(1u, cluster.Reads(3).size());
  EXPECT_EQ(StatusCode::kNotLeader, cluster.Reads(3)[0].status.code());
}

TEST(ReplicaScenario, LearnerJoinsCatchesUpAndIsPromoted) {
  // Node 4 starts outside the three-voter cluster.
  Cluster cluster(4, /*pre_vote=*/true, /*check_quorum=*/true, /*snapshot_chunk_bytes=*/64u << 10,
                  /*initial_voters=*/3);
  cluster.ElectLeader(1);
  cluster.Tick(1);
  cluster.DeliverAll();
  ASSERT_TRUE(cluster.Propose(1, "before").ok());
  cluster.DeliverAll();
  cluster.Tick(4, 50);  // Not a member: it never campaigns, and no one writes to it yet.
  EXPECT_EQ(Generation(0), cluster[4].generation());
  EXPECT_EQ(Role::kFollower, cluster[4].role());
  // Add it as a learner: it receives the log but does not count toward commits.
  auto added = cluster.ProposeMembershipChange(
      1, MembershipChange{MembershipChange::Kind::kAddLearner, NodeId(4)});
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  cluster.DeliverAll();
  cluster.Tick(1);
  cluster.DeliverAll();
  EXPECT_EQ((std::set<NodeId>{NodeId(4)}), cluster[1].membership().learners);
  EXPECT_EQ(std::vector<std::string>{"before"}, cluster.AppliedCommands(4));
  // Caught up: promote it. Now four voters.
  auto promoted = cluster.ProposeMembershipChange(
      1, MembershipChange{MembershipChange::Kind::kPromoteLearner, NodeId(4)});
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  cluster.DeliverAll();
  cluster.Tick(1);
  cluster.DeliverAll();
  EXPECT_EQ(4u, cluster[4].voters().size());
  EXPECT_TRUE(cluster[4].IsVoter());
}

TEST(ReplicaScenario, OneMembershipChangeAtATime) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Tick(1);
  cluster.DeliverAll();
  cluster.Isolate(2);
  cluster.Isolate(3);
  ASSERT_TRUE(cluster
                  .ProposeMembershipChange(
                      1, MembershipChange{MembershipChange::Kind::kRemoveMember, NodeId(3)})
                  .ok());
  auto second = cluster.ProposeMembershipChange(
      1, MembershipChange{MembershipChange::Kind::kRemoveMember, NodeId(2)});
  EXPECT_EQ(StatusCode::kBusy, second.status().code()) << "the first change is uncommitted";
  auto unknown = cluster[1].ProposeMembershipChange(
      MembershipChange{MembershipChange::Kind::kPromoteLearner, NodeId(9)});
  EXPECT_FALSE(unknown.ok());
}

TEST(ReplicaScenario, RemovedLeaderStepsDownOnceTheChangeCommits) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Tick(1);
  cluster.DeliverAll();
  ASSERT_TRUE(cluster
                  .ProposeMembershipChange(
                      1, MembershipChange{MembershipChange::Kind::kRemoveMember, NodeId(1)})
                  .ok());
  cluster.DeliverAll();
  EXPECT_EQ(Role::kFollower, cluster[1].role()) << "stepped down after the removal committed";
  EXPECT_FALSE(cluster[1].IsVoter());
  // The two remaining voters elect a leader among themselves; node 1 stays quiet.
  const uint64_t leader = cluster.TickUntilLeaderAmong({2, 3});
  ASSERT_NE(0u, leader);
  EXPECT_EQ(2u, cluster[leader].voters().size());
  ASSERT_TRUE(cluster.Propose(leader, "after-removal").ok());
  cluster.DeliverAll();
  cluster.Tick(leader);
  cluster.DeliverAll();
  const uint64_t other = leader == 2 ? 3 : 2;
  EXPECT_EQ(std::vector<std::string>{"after-removal"}, cluster.AppliedCommands(other));
}

TEST(ReplicaScenario, StaleReadReportsHowFarBehindItMayBe) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  cluster.Tick(1);
  cluster.DeliverAll();
  const StaleReadBound fresh = cluster[3].StaleRead();
  EXPECT_TRUE(fresh.leader_known);
  EXPECT_EQ(0u, fresh.entries_behind_at_last_contact);
  EXPECT_EQ(0u, fresh.ticks_since_leader_contact);
  // Cut node 3 off: its local reads grow staler, and it says so.
  cluster.Isolate(3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.Propose(1, "w" + std::to_string(i)).ok());
  cluster.DeliverAll();
  cluster.Tick(3, 4);
  const StaleReadBound stale = cluster[3].StaleRead();
  EXPECT_EQ(4u, stale.ticks_since_leader_contact);
  EXPECT_EQ(fresh.applied_index, stale.applied_index);
  const StaleReadBound leader = cluster[1].StaleRead();
  EXPECT_EQ(0u, leader.ticks_since_leader_contact);
  EXPECT_GT(leader.leader_commit_index, stale.applied_index);
}

// Random, often nonsensical messages from peers, interleaved with normal traffic: the replicas
// must never crash (a peer's input is input, not an invariant), whatever the fields say.
TEST(ReplicaScenario, RandomPeerMessagesNeverCrash) {
  std::mt19937_64 random(99);
  auto pick = [&](std::initializer_list<uint64_t> values) {
    return *(values.begin() + random() % values.size());
  };
  for (int trial = 0; trial < 300; ++trial) {
    Cluster cluster(3, /*pre_vote=*/trial % 2 == 0, /*check_quorum=*/trial % 3 != 0,
                    /*snapshot_chunk_bytes=*/8);
    cluster.ElectLeader(1);
    for (int step = 0; step < 300; ++step) {
      Message message;
      message.type = static_cast<MessageType>(random() % 13);
      message.from = NodeId(pick({1, 2, 3, 4, 0}));
      message.to = NodeId(1 + random() % 3);
      const uint64_t generation = cluster[message.to.value()].generation().value();
      message.generation = Generation(pick({generation, generation + 1, generation - std::min<uint64_t>(generation, 1), 0, UINT64_MAX, uint64_t{1} << 61}));
      message.log_index = LogIndex(pick({0, 1, 2, 5, 50, UINT64_MAX - 1}));
      message.log_generation = Generation(pick({0, 1, generation, UINT64_MAX}));
      message.granted = random() % 2;
      message.rejected = random() % 2;
      message.transfer = random() % 2;
      message.commit_index = LogIndex(pick({0, 1, 3, 1000}));
      message.match_index = LogIndex(pick({0, 1, 3, 1000}));
      message.hint_index = LogIndex(pick({0, 1, 3, 1000}));
      message.hint_generation = Generation(pick({0, 1, generation}));
      message.read_round = pick({0, 1, 1000});
      message.read_id = random() % 4;
      message.snapshot_offset = pick({0, 4, 8, 1000});
      message.snapshot_chunk = std::string(random() % 10, 'c');
      message.snapshot_membership = random() % 2 ? EncodeMembership(Membership{{NodeId(1)}, {}})
                                                 : std::string("garbage");
      message.snapshot_done = random() % 2;
      const uint64_t entries = random() % 3;
      for (uint64_t i = 0; i < entries; ++i) {
        message.entries.push_back(wal::Entry{LogIndex(message.log_index.value() + 1 + i),
                                             Generation(pick({0, 1, generation, generation + 5})),
                                             static_cast<uint8_t>(pick({0, 1, 2, 3})),
                                             random() % 2 ? "x" : "garbage-membership"});
      }
      cluster.Step(message.to.value(), message);
      if (step % 10 == 0) {
        (void)cluster.Propose(1, "p");
        cluster.Tick(1 + random() % 3);
      }
      cluster.DeliverAll();
    }
  }
  SUCCEED() << "no replica crashed";
}

// With log_durability_reported, the leader's own copy counts toward the quorum only once the
// shell reports it durable, and reports for a different generation at that index are ignored.
// Issue 20: a follower that forwarded a write answers its client once it applies the entry. When
// its acknowledgement reaches the leader after the quorum's, the leader owes it the commit index
// at once, not with the next heartbeat (no tick happens in this test).
TEST(ReplicaScenario, SlowFollowerLearnsTheCommitWithoutAHeartbeat) {
  Cluster cluster(3);
  cluster.ElectLeader(1);
  ASSERT_TRUE(cluster.Propose(1, "forwarded by 3").ok());
  cluster.DeliverAllBut(3);  // Node 2 acknowledges: the entry commits on 1 and 2.
  ASSERT_EQ((std::vector<std::string>{"forwarded by 3"}), cluster.AppliedCommands(1));
  EXPECT_TRUE(cluster.AppliedCommands(3).empty());
  cluster.DeliverAll();  // Node 3 gets the append (sent before the commit), acknowledges it...
  EXPECT_EQ((std::vector<std::string>{"forwarded by 3"}), cluster.AppliedCommands(3))
      << "...and is told at once that it committed";
  // Quiet again: once told, nothing more is sent until something changes.
  EXPECT_FALSE(cluster[1].HasReady());
}

TEST(ReplicaScenario, PlantedCommitNoticeBugWaitsForTheHeartbeat) {
  Cluster cluster(3, true, true, 64u << 10, 0, PlantedBug::kCommitNoticeWaitsForHeartbeat);
  cluster.ElectLeader(1);
  ASSERT_TRUE(cluster.Propose(1, "x").ok());
  cluster.DeliverAll();
  EXPECT_TRUE(cluster.AppliedCommands(2).empty()) << "the bug holds the commit notice back";
  cluster.Tick(1);  // The heartbeat carries it.
  cluster.DeliverAll();
  EXPECT_EQ((std::vector<std::string>{"x"}), cluster.AppliedCommands(2));
}

TEST(ReplicaScenario, ReportedDurabilityGatesTheLeadersOwnVote) {
  Replica replica(ReplicaOptions{.id = NodeId(1),
                                 .voters = {NodeId(1)},
                                 .election_timeout_ticks = 10,
                                 .random_seed = 1,
                                 .log_durability_reported = true},
                  RecoveredState{});
  auto drain = [&] {
    std::vector<wal::Entry> committed;
    while (replica.HasReady()) {
      Ready ready = replica.TakeReady();
      committed.insert(committed.end(), ready.committed.begin(), ready.committed.end());
      replica.Advance();
    }
    return committed;
  };
  for (int i = 0; i < 30 && replica.role() != Role::kLeader; ++i) {
    replica.Tick();
    drain();
  }
  ASSERT_EQ(Role::kLeader, replica.role());
  const LogIndex noop = replica.log().last_index();
  EXPECT_EQ(LogIndex(0), replica.log().commit_index()) << "the no-op is not durable yet";
  replica.LogDurable(noop, Generation(replica.generation().value() + 1));
  EXPECT_TRUE(drain().empty()) << "a report for another generation is ignored";
  replica.LogDurable(noop, replica.generation());
  EXPECT_EQ(noop, replica.log().commit_index());
  EXPECT_EQ(1u, drain().size());

  auto index = replica.Propose("x");
  ASSERT_TRUE(index.ok());
  EXPECT_TRUE(drain().empty()) << "handed to the log writer, not yet durable";
  EXPECT_EQ(noop, replica.log().commit_index());
  replica.LogDurable(*index, replica.generation());
  auto committed = drain();
  ASSERT_EQ(1u, committed.size());
  EXPECT_EQ("x", committed[0].payload);
  replica.LogDurable(noop, replica.generation());  // Late and older: no effect, no crash.
  EXPECT_EQ(*index, replica.log().commit_index());
}

TEST(ReplicaScenarioDeathTest, InputWhileReadyOutstandingCrashes) {
  Cluster cluster(1);
  cluster.ElectLeader(1);
  ASSERT_TRUE(cluster[1].Propose("a").ok());
  Ready ready = cluster[1].TakeReady();
  EXPECT_DEATH(cluster[1].Tick(), "a Ready was taken but not advanced");
}

}  // namespace
}  // namespace cairn::consensus
