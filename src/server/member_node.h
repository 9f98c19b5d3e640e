// MemberNode: one Cairn member's Singular Update Queue.
//
// Design note. One thread (the "member thread") owns everything that changes: the consensus core
// (consensus::Replica), the member's durable storage (member::MemberStorage: metadata, WAL,
// snapshots), the key-value state machine (mvcc::MvccStore) and the Hybrid Clock that stamps each
// revision. Nothing else touches them. The client threads (EtcdServices) and the peer transport
// hand work in through one bounded queue (Submit*, DeliverPeerFrame) and get answers through
// callbacks that run on the member thread. This is the Singular Update Queue pattern: no locks around state, a total order
// of everything that happens to the member, and natural batching. In the server the member
// thread also runs the peer channels' Asio loop (Start's `io`), so peer frames are read, decoded
// and stepped without a hand-off between threads (3 members, put: +17-30% throughput, p99
// 60 -> 39 ms, measured against a separate I/O thread).
//
// One turn of the member thread:
//   1. take every queued event (bounded); client writes become one ProposeBatch on the leader, or
//      one forwarded write each to the leader on a follower; reads ask for a read index;
//   2. tick the core when a heartbeat interval has passed (HeartBeat, election timeouts), expire
//      requests that waited longer than the request timeout;
//   3. carry out each Ready in order without waiting for the disk: the storage part goes to the
//      LogWriter thread (log_writer.h), which group-commits and reports durability back. On the
//      leader the messages go out at once, so followers write their copies while the leader
//      writes its own; the core counts the leader's own copy toward a quorum only when the writer
//      reports it durable (Replica::LogDurable), so a commit never rests on an unsynced copy.
//      Other members' messages (acknowledgements, votes) promise durability, so the writer sends
//      them after its fdatasync. Then committed entries are applied, reads answered, the core
//      advanced;
//   4. take a snapshot every snapshot_count applied entries that are also durable locally, at
//      indexes staggered by member (SnapshotStagger) so that members sharing a machine, or a
//      quorum, do not all pay for one at once: the store is serialized here a slice per turn
//      (the multi-version store shows the snapshot's revision while later writes apply), the
//      values read in, the file sealed, written and fdatasynced by a snapshot thread; when it is
//      durable the log writer releases the log behind it (Low-Water Mark) and the core compacts
//      its log, reading the snapshot back from the file if a follower needs it. The compacted
//      entries leave memory a slice per turn (FreeCompactedEntries).
//
// Writes. A client write becomes a cairnpb::Command (proposer id, request id, the etcd request).
// The leader stamps it with its Hybrid Clock and proposes it; every member applies committed
// commands in log order and computes the same response; the proposer answers its client. A
// follower forwards the write to the leader over the peer channel and answers once it applies the
// entry itself. A write whose entry never commits (leader lost) times out with etcd's "request
// timed out": its outcome is unknown to the client, as in etcd.
//
// Reads. Linearizable reads go through the core's read index (on a follower, a Follower Read: the
// leader confirms the index, the follower serves once it has applied that far). Serializable reads
// are served from the local state at once.
//
// Failure. A storage error is final (fsync-failure-is-final): the member logs it and aborts, and
// recovers from its data directory on restart.
#pragma once

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>
#include <atomic>
#include <vector>

#include "cairnpb/command.pb.h"
#include "clock/hybrid_clock.h"
#include "consensus/replica.h"
#include "member/member_storage.h"
#include "mvcc/mvcc_store.h"
#include "server/cluster_config.h"
#include "server/etcd_api.h"
#include "server/log_writer.h"
#include "server/metrics.h"
#include "storage/file_system.h"
#include "transport/message_codec.h"

namespace cairn::server {

// Snapshot staggering (MemberNodeOptions::snapshot_count): the i-th of n members in id order
// snapshots at indexes i * snapshot_count / n past a multiple of snapshot_count; 0 for a member
// not in `cluster`.
uint64_t SnapshotStagger(const ClusterConfig& cluster, uint64_t snapshot_count);
// The first index after `last_snapshot` at which a member with `stagger` snapshots next.
LogIndex NextSnapshotDue(LogIndex last_snapshot, uint64_t snapshot_count, uint64_t stagger);

struct MemberNodeOptions {
  ClusterConfig cluster{};
  std::string data_dir{};
  uint32_t heartbeat_interval_ms = 100;
  uint32_t election_timeout_ms = 1000;
  // A snapshot is taken every snapshot_count applied entries, at indexes staggered by member:
  // the i-th of n members (in id order) snapshots at indexes k * snapshot_count + i *
  // snapshot_count / n, so members sharing a machine or a quorum do not all pay for one at once
  // (3 members on one machine, put p99: see docs/benchmarks.md).
  uint64_t snapshot_count = 100'000;
  uint64_t wal_segment_bytes = 64ull << 20;
  // Log segments written over spares zero-filled ahead of time on a thread of their own
  // (wal/segment_preallocator.h); false appends to plain new files.
  bool wal_preallocated_segments = true;
  mvcc::MvccOptions mvcc{};
  // Value bytes in files under <data-dir>/values (storage/value_files.h), out of the heap; false
  // keeps them in memory. mvcc.value_storage, when set, wins over both.
  bool values_in_files = true;
  // Events waiting for the member thread; beyond it clients get "too many requests" and peer
  // frames are dropped (the consensus protocol tolerates loss).
  size_t queue_events_max = 100'000;
  // How long a client request may wait for its entry or read index (etcd: 5 s + 2 elections).
  uint32_t request_timeout_ms = 0;  // 0: 5000 + 2 * election_timeout_ms.
  uint64_t random_seed = 0;         // 0: from the member id and the time.
};

// What Maintenance.Status reports.
struct MemberStatus {
  ReplyHeader header{};
  NodeId leader{};
  LogIndex commit_index{};
  LogIndex applied_index{};
  uint64_t bytes_used = 0;
  bool is_learner = false;
};

class MemberNode {
 public:
  // Frames for peers, produced on the member thread: (to, encoded frame).
  using SendFn = std::function<void(std::vector<std::pair<NodeId, std::string>>)>;
  // Callbacks run on the member thread (or on the caller's, when a request is refused at once).
  // `store` and `response` are null unless `status` is OK; `response` is null for a compaction.
  using WriteDone = std::function<void(const Status& status, const mvcc::MvccStore* store,
                                       const mvcc::ResponseOp* response, const ReplyHeader&)>;
  // A read runs inside the callback, against `store` as of a linearizable (or local) point. The
  // store is mutable only so a read-only Txn can run through MvccStore::Txn; a read must not
  // write (the Txn caller checks the revision did not move).
  using ReadDone =
      std::function<void(const Status& status, mvcc::MvccStore* store, const ReplyHeader&)>;
  using StatusDone = std::function<void(const MemberStatus&)>;

  static Result<std::unique_ptr<MemberNode>> Open(FileSystem& fs, MemberNodeOptions options,
                                                  Metrics* metrics);
  ~MemberNode();

  // Starts the member thread. `send` must stay valid until Stop returns. With `io`, the member
  // thread also runs that io_context (the peer channels' sockets and timers): a peer's frame is
  // read, decoded and stepped on one thread, with no hand-off to a separate I/O thread.
  void Start(SendFn send, asio::io_context* io = nullptr);
  // Answers every waiting request with "server stopped", stops the thread. Idempotent.
  void Stop();

  // Thread-safe entry points.
  void SubmitWrite(cairnpb::Command command, WriteDone done);
  void SubmitRead(bool linearizable, ReadDone done);
  void SubmitStatus(StatusDone done);
  void DeliverPeerFrame(NodeId from, transport::PeerFrame frame);

  // A client thread that hands over requests in bursts (ClientPort: every request of every
  // connection that one poll found readable) holds the member's wake-ups for the burst and
  // releases them after it: the member wakes once and its turn takes the whole burst — one
  // proposal batch, one log write, one fsync — instead of waking on the first request and taking
  // the rest a turn later. Both on the same thread; holds do not nest.
  void HoldWakes();
  void ReleaseWakes();

  NodeId id() const { return options_.cluster.self; }

 private:
  struct WriteEvent {
    cairnpb::Command command;
    WriteDone done;
    // The command serialized by the submitting thread, with room for the fields the member adds
    // (AppendProposalFields): the log entry keeps this string until a snapshot covers it, and
    // allocated on the client thread it does not sit between the store's index nodes in the
    // member thread's heap (freed, those gaps could not be given back to the system).
    std::string payload{};
  };
  struct ReadEvent {
    bool linearizable;
    ReadDone done;
  };
  struct StatusEvent {
    StatusDone done;
  };
  struct PeerEvent {
    NodeId from;
    transport::PeerFrame frame;
  };
  struct DurableEvent {  // From the LogWriter: the log is durable up to here.
    LogIndex index;
    Generation generation;
  };
  struct SnapshotSavedEvent {  // From the snapshot thread: a snapshot file is durable (or not).
    LogIndex index;
    Status status;
    std::shared_ptr<const consensus::SnapshotSource> source;
  };
  using Event =
      std::variant<WriteEvent, ReadEvent, StatusEvent, PeerEvent, DurableEvent, SnapshotSavedEvent>;

  struct PendingWrite {
    WriteDone done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct PendingRead {
    ReadDone done;
    std::chrono::steady_clock::time_point deadline;
  };

  MemberNode(MemberNodeOptions options, Metrics* metrics);
  // Client events and peer frames are refused when the queue is full; internal ones never are.
  enum class Source { kClient, kPeer, kInternal };
  bool Enqueue(Event event, Source source);
  // Wakes the member thread (called with mutex_ held when the queue was empty).
  void WakeLocked();

  // Member thread.
  void Run();
  void HandleEvents(std::vector<Event>& events);
  void ProposeOrForward(std::vector<WriteEvent>& writes);
  void HandleForwardedWrite(const transport::ForwardedWrite& write);
  void HandleRead(ReadEvent& read);
  void HandleReady();
  void Apply(const std::vector<wal::Entry>& committed);
  void ApplyCommand(const cairnpb::Command& command);
  void ServeReads(const std::vector<consensus::ReadState>& reads);
  void MaybeSnapshot();
  // Serializes one more slice of the snapshot being taken; hands it to the snapshot thread once
  // complete.
  void ContinueSnapshot();
  // Hands the serialized snapshot (its index durable here) to the snapshot thread.
  void SaveSnapshot();
  void SnapshotSaved(SnapshotSavedEvent& saved);
  void FreeCompactedEntries();
  // Snapshot slices or compacted entries to free: the thread does not sleep while there are.
  bool BackgroundWorkLeft() const {
    return (snapshot_serializing_.has_value() && !snapshot_serializing_->serialized) ||
           replica_->log().compacted_held() > 0;
  }
  void ExpireRequests(std::chrono::steady_clock::time_point now);
  void FailAllPending(const Status& status);
  void UpdateMetrics();
  void SendFrames(std::vector<std::pair<NodeId, std::string>> frames);
  ReplyHeader Header() const;
  void FinishWrite(uint64_t request_id, const Status& status, const mvcc::ResponseOp* response);
  [[noreturn]] void StorageFailed(const Status& status);
  std::vector<std::pair<NodeId, std::string>> Encode(const std::vector<consensus::Message>& messages);

  const MemberNodeOptions options_;
  Metrics* const metrics_;
  const std::chrono::milliseconds request_timeout_;

  // Owned by the member thread once started.
  // Used only by log_writer_'s thread (and WriteSnapshot / OpenSnapshotData by snapshot_thread_).
  std::unique_ptr<member::MemberStorage> storage_;
  std::unique_ptr<LogWriter> log_writer_;
  std::unique_ptr<consensus::Replica> replica_;
  mvcc::MvccStore store_;
  SystemPhysicalClock physical_clock_;
  HybridClock hybrid_clock_{physical_clock_};
  LogIndex applied_index_;
  LogIndex durable_index_;  // As the LogWriter last reported.
  LogIndex snapshot_index_;
  // Writes the snapshot being saved (off the member thread: a large store's file takes seconds to
  // write and fdatasync, longer than an election timeout).
  std::thread snapshot_thread_;
  // This member's offset for NextSnapshotDue (SnapshotStagger).
  uint64_t snapshot_stagger_ = 0;
  bool snapshot_in_flight_ = false;  // Being serialized here, or written by snapshot_thread_.
  // Gives freed heap pages back to the system (malloc_trim) once a snapshot's compacted log
  // entries are freed; a trim still running when the next is due makes that one unnecessary.
  std::thread trim_thread_;
  std::atomic<bool> trim_running_{false};
  // The snapshot being serialized, a slice per turn (mvcc::MvccStore::SnapshotWriter), so a large
  // store never stops this thread for long; reset when the store is replaced by a leader's.
  struct SnapshotInProgress {
    mvcc::MvccStore::SnapshotWriter writer;
    LogIndex index;
    Generation generation;
    consensus::Membership membership;
    std::chrono::steady_clock::time_point started;
    double member_ms = 0;
    int slices = 0;
    bool serialized = false;  // Complete; waits for `index` to be durable in the local log.
  };
  std::optional<SnapshotInProgress> snapshot_serializing_;
  uint64_t next_request_id_ = 1;
  uint64_t next_read_id_ = 1;
  std::map<uint64_t, PendingWrite> pending_writes_;
  std::map<uint64_t, PendingRead> pending_reads_;
  NodeId last_leader_{};
  SendFn send_;

  // The queue.
  std::mutex mutex_;
  std::condition_variable wake_;
  asio::io_context* io_ = nullptr;  // Run by the member thread, when given.
  std::vector<Event> events_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cairn::server
