// MemberNode tests: whole members (Singular Update Queue thread, real storage in a temp directory)
// wired to each other in-process through the peer frame codec instead of sockets.
#include "server/member_node.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "storage/posix_file_system.h"
#include "storage/temp_directory.h"

namespace cairn::server {
namespace {

using namespace std::chrono_literals;

class InProcessCluster {
 public:
  explicit InProcessCluster(int size, uint64_t snapshot_count = 100'000) {
    std::string initial;
    for (int i = 0; i < size; ++i) {
      initial += fmt::format("{}m{}=http://127.0.0.1:{}", i ? "," : "", i, 40000 + i);
    }
    for (int i = 0; i < size; ++i) {
      auto config = ParseInitialCluster(initial, "test", fmt::format("m{}", i), {});
      EXPECT_TRUE(config.ok());
      configs_.push_back(*config);
    }
    snapshot_count_ = snapshot_count;
    nodes_.resize(size);
    metrics_ = std::vector<Metrics>(size);
  }
  ~InProcessCluster() {
    for (auto& node : nodes_) {
      if (node) node->Stop();
    }
  }

  void Start(int i) {
    MemberNodeOptions options;
    options.cluster = configs_[i];
    options.data_dir = directory_.Join(fmt::format("m{}", i));
    options.heartbeat_interval_ms = 10;
    options.election_timeout_ms = 100;
    options.snapshot_count = snapshot_count_;
    options.random_seed = 1 + i;
    // Small segments, so that the background preallocator's spares are made and taken here.
    options.wal_segment_bytes = 256 << 10;
    auto node = MemberNode::Open(fs_, options, &metrics_[i]);
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    {
      std::lock_guard lock(mutex_);
      nodes_[i] = std::move(node).value();
    }
    const NodeId from = configs_[i].self;
    nodes_[i]->Start([this, from](std::vector<std::pair<NodeId, std::string>> frames) {
      std::lock_guard lock(mutex_);
      for (auto& [to, frame] : frames) {
        for (auto& peer : nodes_) {
          if (!peer || peer->id() != to) continue;
          auto decoded = transport::DecodeBody(
              std::string_view(frame).substr(transport::kFrameHeaderBytes));
          ASSERT_TRUE(decoded.ok());
          peer->DeliverPeerFrame(from, std::move(decoded).value());
        }
      }
    });
  }
  void Stop(int i) {
    std::unique_ptr<MemberNode> node;
    {
      std::lock_guard lock(mutex_);
      node = std::move(nodes_[i]);
    }
    node->Stop();
  }

  MemberStatus StatusOf(int i) {
    std::promise<MemberStatus> promise;
    nodes_[i]->SubmitStatus([&](const MemberStatus& status) { promise.set_value(status); });
    return promise.get_future().get();
  }

  void WaitForLeader() {
    for (int attempt = 0; attempt < 500; ++attempt) {
      bool all = true;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i] && StatusOf(static_cast<int>(i)).leader == NodeId(0)) all = false;
      }
      if (all) return;
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "no leader within 5 s";
  }

  Result<Revision> Put(int i, const std::string& key, const std::string& value) {
    cairnpb::Command command;
    command.mutable_put()->set_key(key);
    command.mutable_put()->set_value(value);
    std::promise<Result<Revision>> promise;
    nodes_[i]->SubmitWrite(std::move(command),
                           [&](const Status& status, const mvcc::MvccStore*,
                               const mvcc::ResponseOp*, const ReplyHeader& header) {
                             if (status.ok()) promise.set_value(header.revision);
                             else promise.set_value(status);
                           });
    auto future = promise.get_future();
    EXPECT_EQ(std::future_status::ready, future.wait_for(10s));
    return future.get();
  }

  // The value of `key` (empty Result status NotFound when absent).
  Result<std::string> Get(int i, const std::string& key, bool linearizable) {
    std::promise<Result<std::string>> promise;
    nodes_[i]->SubmitRead(linearizable, [&](const Status& status, mvcc::MvccStore* store,
                                            const ReplyHeader&) {
      if (!status.ok()) return promise.set_value(status);
      auto range = store->Range({.key = key});
      if (!range.ok()) return promise.set_value(range.status());
      if (range->kvs.empty()) return promise.set_value(Status::NotFound(key));
      promise.set_value(range->kvs[0].value);
    });
    auto future = promise.get_future();
    EXPECT_EQ(std::future_status::ready, future.wait_for(10s));
    return future.get();
  }

  Metrics& metrics(int i) { return metrics_[i]; }
  MemberNode& node(int i) { return *nodes_[i]; }

 private:
  TempDirectory directory_;
  PosixFileSystem fs_;
  std::vector<ClusterConfig> configs_;
  uint64_t snapshot_count_ = 0;
  std::mutex mutex_;
  std::vector<std::unique_ptr<MemberNode>> nodes_;
  std::vector<Metrics> metrics_;
};

TEST(MemberNode, MembersTakeSnapshotsAtStaggeredIndexes) {
  ClusterConfig cluster;
  for (uint64_t id : {30, 10, 20}) cluster.members[NodeId(id)] = ClusterMember{};
  std::vector<uint64_t> staggers;
  for (uint64_t id : {10, 20, 30}) {
    cluster.self = NodeId(id);
    staggers.push_back(SnapshotStagger(cluster, 90));
  }
  EXPECT_EQ((std::vector<uint64_t>{0, 30, 60}), staggers);
  cluster.self = NodeId(40);  // Not a member (yet): no stagger.
  EXPECT_EQ(0u, SnapshotStagger(cluster, 90));
  cluster.self = NodeId(20);
  EXPECT_EQ(0u, SnapshotStagger(cluster, 0));
  EXPECT_EQ(33u, SnapshotStagger(cluster, 100));
  cluster.self = NodeId(30);
  EXPECT_EQ(66u, SnapshotStagger(cluster, 100));
  EXPECT_EQ(UINT64_MAX / 3 * 2, SnapshotStagger(cluster, UINT64_MAX));  // No overflow.

  // Every snapshot_count entries, at the member's offset, whatever the last snapshot's index.
  EXPECT_EQ(LogIndex(90), NextSnapshotDue(LogIndex(0), 90, 0));
  EXPECT_EQ(LogIndex(180), NextSnapshotDue(LogIndex(90), 90, 0));
  EXPECT_EQ(LogIndex(180), NextSnapshotDue(LogIndex(95), 90, 0));
  EXPECT_EQ(LogIndex(30), NextSnapshotDue(LogIndex(0), 90, 30));
  EXPECT_EQ(LogIndex(120), NextSnapshotDue(LogIndex(30), 90, 30));
  EXPECT_EQ(LogIndex(120), NextSnapshotDue(LogIndex(119), 90, 30));
  EXPECT_EQ(LogIndex(210), NextSnapshotDue(LogIndex(120), 90, 30));
  EXPECT_EQ(LogIndex(60), NextSnapshotDue(LogIndex(29), 90, 60));
}

TEST(MemberNode, SingleMemberWritesReadsSnapshotsAndRecovers) {
  InProcessCluster cluster(1, /*snapshot_count=*/5);
  cluster.Start(0);
  cluster.WaitForLeader();
  for (int i = 0; i < 20; ++i) {
    auto revision = cluster.Put(0, fmt::format("k{}", i), fmt::format("v{}", i));
    ASSERT_TRUE(revision.ok()) << revision.status().ToString();
    EXPECT_EQ(Revision(2 + i), *revision) << "one revision per write, from 2";
  }
  EXPECT_EQ("v7", *cluster.Get(0, "k7", true));
  EXPECT_EQ("v19", *cluster.Get(0, "k19", false));
  // Snapshots are written on their own thread, one at a time, so how many 20 writes produce
  // depends on that thread's speed: keep writing (bounded) until three have been saved.
  int extra = 0;
  for (; extra < 2000 && cluster.metrics(0).snapshots_saved.load() < 3u; ++extra) {
    ASSERT_TRUE(cluster.Put(0, fmt::format("x{}", extra), "x").ok());
    if (extra % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(cluster.metrics(0).snapshots_saved.load(), 3u);
  cluster.Stop(0);
  cluster.Start(0);
  cluster.WaitForLeader();
  for (int i = 0; i < 20; ++i) {
    auto value = cluster.Get(0, fmt::format("k{}", i), true);
    ASSERT_TRUE(value.ok()) << i << ": " << value.status().ToString();
    EXPECT_EQ(fmt::format("v{}", i), *value);
  }
  if (extra > 0) {
    EXPECT_EQ("x", *cluster.Get(0, fmt::format("x{}", extra - 1), true));
  }
  auto next = cluster.Put(0, "after", "restart");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(Revision(22 + extra), *next) << "the revision continues after recovery";
}

TEST(MemberNode, ThreeMembersForwardWritesAndServeFollowerReads) {
  InProcessCluster cluster(3);
  for (int i = 0; i < 3; ++i) cluster.Start(i);
  cluster.WaitForLeader();
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 3; ++i) {
      auto revision = cluster.Put(i, fmt::format("m{}-{}", i, round), "x");
      ASSERT_TRUE(revision.ok()) << "member " << i << ": " << revision.status().ToString();
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      auto value = cluster.Get(i, fmt::format("m{}-4", j), /*linearizable=*/true);
      ASSERT_TRUE(value.ok()) << value.status().ToString();
      EXPECT_EQ("x", *value);
    }
  }
  // A write answered by a follower is visible in a serializable read on that follower at once.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster.Put(i, "ryw", fmt::format("{}", i)).ok());
    EXPECT_EQ(fmt::format("{}", i), *cluster.Get(i, "ryw", /*linearizable=*/false));
  }
}

TEST(MemberNode, WithoutAQuorumRequestsFailWithEtcdErrors) {
  InProcessCluster cluster(3);
  cluster.Start(0);  // The other two never start: no leader can be elected.
  std::this_thread::sleep_for(300ms);
  auto put = cluster.Put(0, "k", "v");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ("etcdserver: no leader", put.status().message());
  auto get = cluster.Get(0, "k", true);
  ASSERT_FALSE(get.ok());
  EXPECT_EQ("etcdserver: no leader", get.status().message());
  EXPECT_EQ(StatusCode::kNotFound, cluster.Get(0, "k", false).status().code())
      << "a serializable read needs no leader";
}

TEST(MemberNode, StopAnswersEveryWaitingRequest) {
  InProcessCluster cluster(1);
  cluster.Start(0);
  cluster.WaitForLeader();
  constexpr int kWrites = 200;
  std::atomic<int> succeeded = 0;
  std::atomic<int> stopped = 0;
  std::atomic<int> other = 0;
  for (int i = 0; i < kWrites; ++i) {
    cairnpb::Command command;
    command.mutable_put()->set_key(fmt::format("k{}", i));
    cluster.node(0).SubmitWrite(std::move(command), [&](const Status& status,
                                                        const mvcc::MvccStore*,
                                                        const mvcc::ResponseOp*,
                                                        const ReplyHeader&) {
      if (status.ok()) ++succeeded;
      else if (status.message() == "etcdserver: server stopped") ++stopped;
      else ++other;
    });
  }
  cluster.Stop(0);  // Joins the member thread: every callback has run by now.
  EXPECT_EQ(kWrites, succeeded.load() + stopped.load());
  EXPECT_EQ(0, other.load());
}

}  // namespace
}  // namespace cairn::server
