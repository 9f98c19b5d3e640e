#include "server/member_node.h"

#include <malloc.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <random>

#include "base/check.h"
#include "consensus/message.h"
#include "storage/data_directory.h"
#include "storage/value_files.h"

namespace cairn::server {
namespace {

using Clock = std::chrono::steady_clock;
using transport::ForwardedWrite;
using transport::ForwardRejected;
using transport::PeerFrame;

// Events taken from the queue per turn; the rest wait for the next turn (bounded batches).
constexpr size_t kEventsPerTurnMax = 16'384;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Status NoLeaderOr(const Status& status) {
  return status.code() == StatusCode::kNotLeader ? Status::Unavailable(std::string(kErrorNoLeader))
                                                 : status;
}

}  // namespace

MemberNode::MemberNode(MemberNodeOptions options, Metrics* metrics)
    : options_(std::move(options)),
      metrics_(metrics),
      request_timeout_(options_.request_timeout_ms != 0
                           ? options_.request_timeout_ms
                           : 5000 + 2 * options_.election_timeout_ms),
      store_(options_.mvcc),
      snapshot_stagger_(SnapshotStagger(options_.cluster, options_.snapshot_count)) {}

uint64_t SnapshotStagger(const ClusterConfig& cluster, uint64_t snapshot_count) {
  const auto self = cluster.members.find(cluster.self);  // Members are ordered by id.
  if (snapshot_count == 0 || self == cluster.members.end()) return 0;
  const auto position = static_cast<uint64_t>(std::distance(cluster.members.begin(), self));
  // position * snapshot_count / n without the product, which --snapshot-count (any u64) could
  // overflow.
  const uint64_t n = cluster.members.size();
  return snapshot_count / n * position + snapshot_count % n * position / n;
}

LogIndex NextSnapshotDue(LogIndex last_snapshot, uint64_t snapshot_count, uint64_t stagger) {
  CAIRN_CHECK(snapshot_count > 0 && stagger < snapshot_count,
              "a stagger ({}) lies within the snapshot count ({})", stagger, snapshot_count);
  const uint64_t last = last_snapshot.value();
  const uint64_t cycle = last < stagger ? 0 : (last - stagger) / snapshot_count + 1;
  return LogIndex(cycle * snapshot_count + stagger);  // Never 0: cycle is 0 only below a stagger.
}

MemberNode::~MemberNode() { Stop(); }

Result<std::unique_ptr<MemberNode>> MemberNode::Open(FileSystem& fs, MemberNodeOptions options,
                                                     Metrics* metrics) {
  CAIRN_CHECK(options.heartbeat_interval_ms > 0 &&
                  options.election_timeout_ms >= 5 * options.heartbeat_interval_ms,
              "the caller validated the timeouts");
  CAIRN_ASSIGN_OR_RETURN(DataDirectory directory, DataDirectory::Open(fs, options.data_dir));
  if (options.values_in_files && !options.mvcc.value_storage) {
    CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<ValueFiles> files,
                           ValueFiles::Open(fs, directory.values_path()));
    options.mvcc.value_storage = [files] { return files->NewStorage(); };
  }
  std::unique_ptr<MemberNode> node(new MemberNode(std::move(options), metrics));
  const MemberNodeOptions& opts = node->options_;
  // The ids derive from the flags (cluster_config.h). A data directory keeps the ids it was
  // created with: restarting it under other ids would let one log speak for two members.
  const std::string identity = fmt::format("member_id {:016x}\ncluster_id {:016x}\n",
                                           opts.cluster.self.value(), opts.cluster.cluster_id);
  auto stored_identity = ReadWholeFile(fs, JoinPath(directory.path(), "identity"));
  if (stored_identity.ok()) {
    if (*stored_identity != identity) {
      return Status::InvalidArgument(fmt::format(
          "data directory {} belongs to another member or cluster ({}); this member is {} "
          "(--name, --initial-cluster and --initial-cluster-token must be as when it was created)",
          directory.path(), *stored_identity, identity));
    }
  } else if (stored_identity.status().code() == StatusCode::kNotFound) {
    CAIRN_TRY(WriteFileAtomically(fs, directory.path(), "identity", identity));
  } else {
    return stored_identity.status();
  }
  CAIRN_ASSIGN_OR_RETURN(
      node->storage_,
      member::MemberStorage::Open(fs, directory.path(),
                                  {.wal = {.segment_bytes_target = opts.wal_segment_bytes,
                                           .preallocation = opts.wal_preallocated_segments
                                                                ? wal::Preallocation::kBackground
                                                                : wal::Preallocation::kOff},
                                   .snapshots = {},
                                   .low_water_mark = {}}));
  consensus::RecoveredState recovered = node->storage_->TakeRecoveredState();
  if (recovered.snapshot_index != LogIndex(0)) {
    CAIRN_ASSIGN_OR_RETURN(node->store_,
                           mvcc::MvccStore::Restore(recovered.snapshot_data, opts.mvcc));
    // Loaded: from here the core reads the snapshot from its file when a follower needs it.
    CAIRN_ASSIGN_OR_RETURN(recovered.snapshot_source,
                           node->storage_->OpenSnapshotData(recovered.snapshot_index,
                                                            recovered.snapshot_generation));
    std::string().swap(recovered.snapshot_data);
  }
  node->applied_index_ = recovered.snapshot_index;
  node->snapshot_index_ = recovered.snapshot_index;
  spdlog::info("member {:x}: recovered generation {}, snapshot at index {} (revision {}), {} log "
               "entries after it",
               opts.cluster.self.value(), recovered.hard_state.generation,
               recovered.snapshot_index, node->store_.current_revision(),
               recovered.entries.size());

  consensus::ReplicaOptions replica_options;
  replica_options.id = opts.cluster.self;
  for (const auto& [id, member] : opts.cluster.members) replica_options.voters.insert(id);
  replica_options.heartbeat_interval_ticks = 1;
  replica_options.election_timeout_ticks =
      opts.election_timeout_ms / opts.heartbeat_interval_ms;
  replica_options.random_seed =
      opts.random_seed != 0
          ? opts.random_seed
          : opts.cluster.self.value() ^
                static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  // Frames must stay well under the transport's bound even with one maximal entry in them.
  replica_options.append_bytes_max = 1u << 20;
  replica_options.log_durability_reported = true;
  node->durable_index_ = recovered.entries.empty() ? recovered.snapshot_index
                                                   : recovered.entries.back().index;
  node->replica_ = std::make_unique<consensus::Replica>(replica_options, std::move(recovered));
  return node;
}

void MemberNode::Start(SendFn send, asio::io_context* io) {
  send_ = std::move(send);
  io_ = io;
  log_writer_ = std::make_unique<LogWriter>(
      *storage_,
      [this](LogWriter::Frames frames) { SendFrames(std::move(frames)); },
      [this](LogIndex index, Generation generation) {
        Enqueue(DurableEvent{index, generation}, Source::kInternal);
      },
      metrics_);
  log_writer_->Start();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "cairn-member");  // Visible in top -H, perf, gdb.
    Run();
  });
}

void MemberNode::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    WakeLocked();
  }
  if (thread_.joinable()) thread_.join();
  // A snapshot being written finishes (its report is dropped: the member has stopped).
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  if (trim_thread_.joinable()) trim_thread_.join();
  // Whatever the member handed to the writer is written before the member is gone.
  if (log_writer_) log_writer_->Stop();
}

namespace {
// The member whose wake-ups this thread holds (HoldWakes), and whether one is owed.
thread_local MemberNode* wakes_held_for = nullptr;
thread_local bool wake_owed = false;
}  // namespace

void MemberNode::HoldWakes() {
  CAIRN_CHECK(wakes_held_for == nullptr, "HoldWakes does not nest");
  wakes_held_for = this;
  wake_owed = false;
}

void MemberNode::ReleaseWakes() {
  CAIRN_CHECK(wakes_held_for == this, "ReleaseWakes on the thread that holds them");
  wakes_held_for = nullptr;
  if (!wake_owed) return;
  wake_owed = false;
  std::lock_guard lock(mutex_);
  if (!events_.empty()) WakeLocked();
}

bool MemberNode::Enqueue(Event event, Source source) {
  const bool is_client = source == Source::kClient;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ &&
        (source == Source::kInternal || events_.size() < options_.queue_events_max)) {
      events_.push_back(std::move(event));
      if (events_.size() == 1) {
        if (wakes_held_for == this) {
          wake_owed = true;
        } else {
          WakeLocked();
        }
      }
      return true;
    }
  }
  if (is_client) metrics_->client_requests_refused.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void MemberNode::WakeLocked() {
  if (io_ != nullptr) {
    asio::post(*io_, [] {});  // run_one_until in Run returns.
  } else {
    wake_.notify_one();
  }
}

void MemberNode::SubmitWrite(cairnpb::Command command, WriteDone done) {
  auto refuse = done;
  // Room for proposer, request_id and hybrid_time (three tags and varints of up to 10 bytes).
  constexpr size_t kProposalFieldBytesMax = 3 * (1 + 10);
  std::string payload;
  payload.reserve(command.ByteSizeLong() + kProposalFieldBytesMax);
  command.AppendToString(&payload);
  if (!Enqueue(WriteEvent{std::move(command), std::move(done), std::move(payload)},
               Source::kClient)) {
    refuse(Status::Busy(std::string(kErrorTooManyRequests)), nullptr, nullptr, ReplyHeader{});
  }
}

void MemberNode::SubmitRead(bool linearizable, ReadDone done) {
  auto refuse = done;
  if (!Enqueue(ReadEvent{linearizable, std::move(done)}, Source::kClient)) {
    refuse(Status::Busy(std::string(kErrorTooManyRequests)), nullptr, ReplyHeader{});
  }
}

void MemberNode::SubmitStatus(StatusDone done) {
  auto refuse = done;
  if (!Enqueue(StatusEvent{std::move(done)}, Source::kClient)) refuse(MemberStatus{});
}

void MemberNode::DeliverPeerFrame(NodeId from, PeerFrame frame) {
  if (!Enqueue(PeerEvent{from, std::move(frame)}, Source::kPeer)) {
    metrics_->peer_frames_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

void MemberNode::Run() {
  const auto heartbeat = std::chrono::milliseconds(options_.heartbeat_interval_ms);
  auto next_tick = Clock::now() + heartbeat;
  std::vector<Event> events;
  if (options_.cluster.members.size() == 1) {
    // A lone member has nobody to wait for: let its election timeout pass at once (as etcd does),
    // so a single-member cluster serves right after start instead of after 1-2 s.
    const uint32_t election_ticks = options_.election_timeout_ms / options_.heartbeat_interval_ms;
    for (uint32_t i = 0; i < 2 * election_ticks; ++i) replica_->Tick();
    while (replica_->HasReady()) HandleReady();
  }
  while (true) {
    if (io_ != nullptr) {
      // Peer I/O runs here: wait for a handler (a socket, a timer, or a wake-up posted by
      // Enqueue) or the next tick, then run whatever else is ready.
      bool idle = false;
      {
        std::lock_guard lock(mutex_);
        idle = events_.empty() && !stopping_ && !BackgroundWorkLeft();
      }
      if (idle) io_->run_one_until(next_tick);
      io_->poll();
      if (io_->stopped()) io_->restart();
    }
    {
      std::unique_lock lock(mutex_);
      if (io_ == nullptr) {
        // A snapshot being serialized is work too: its next slice runs without waiting.
        wake_.wait_until(lock, next_tick, [&] {
          return stopping_ || !events_.empty() || BackgroundWorkLeft();
        });
      }
      if (stopping_) break;
      if (events_.size() <= kEventsPerTurnMax) {
        events.swap(events_);
      } else {
        events.assign(std::make_move_iterator(events_.begin()),
                      std::make_move_iterator(events_.begin() + kEventsPerTurnMax));
        events_.erase(events_.begin(), events_.begin() + kEventsPerTurnMax);
      }
    }
    HandleEvents(events);
    events.clear();
    const auto now = Clock::now();
    if (now >= next_tick) {
      replica_->Tick();
      next_tick += heartbeat;
      if (next_tick <= now) next_tick = now + heartbeat;  // Overslept: do not tick in a burst.
      ExpireRequests(now);
    }
    while (replica_->HasReady()) HandleReady();
    MaybeSnapshot();
    UpdateMetrics();
  }
  FailAllPending(Status::Unavailable(std::string(kErrorStopped)));
  // Events still queued were accepted: answer them too.
  std::vector<Event> leftover;
  {
    std::lock_guard lock(mutex_);
    leftover.swap(events_);
  }
  const Status stopped = Status::Unavailable(std::string(kErrorStopped));
  for (Event& event : leftover) {
    if (auto* write = std::get_if<WriteEvent>(&event)) {
      write->done(stopped, nullptr, nullptr, ReplyHeader{});
    } else if (auto* read = std::get_if<ReadEvent>(&event)) {
      read->done(stopped, nullptr, ReplyHeader{});
    } else if (auto* status = std::get_if<StatusEvent>(&event)) {
      status->done(MemberStatus{});
    }
  }
}

void MemberNode::HandleEvents(std::vector<Event>& events) {
  std::vector<WriteEvent> writes;
  for (Event& event : events) {
    if (auto* write = std::get_if<WriteEvent>(&event)) {
      writes.push_back(std::move(*write));
    } else if (auto* read = std::get_if<ReadEvent>(&event)) {
      HandleRead(*read);
    } else if (auto* status = std::get_if<StatusEvent>(&event)) {
      MemberStatus member_status;
      member_status.header = Header();
      member_status.leader = replica_->leader();
      member_status.commit_index = replica_->log().commit_index();
      member_status.applied_index = applied_index_;
      member_status.bytes_used = store_.bytes_used();
      member_status.is_learner = replica_->membership().learners.count(id()) != 0;
      status->done(member_status);
    } else if (auto* saved = std::get_if<SnapshotSavedEvent>(&event)) {
      SnapshotSaved(*saved);
    } else if (auto* durable = std::get_if<DurableEvent>(&event)) {
      durable_index_ = std::max(durable_index_, durable->index);
      replica_->LogDurable(durable->index, durable->generation);
    } else {
      auto& peer = std::get<PeerEvent>(event);
      metrics_->peer_frames_received.fetch_add(1, std::memory_order_relaxed);
      if (auto* message = std::get_if<consensus::Message>(&peer.frame)) {
        // Peer messages may arrive between client events: keep the client writes of this turn
        // in one batch, but a Step must never meet an outstanding Ready (HandleReady is below).
        replica_->Step(*message);
      } else if (auto* forwarded = std::get_if<ForwardedWrite>(&peer.frame)) {
        HandleForwardedWrite(*forwarded);
      } else if (auto* rejected = std::get_if<ForwardRejected>(&peer.frame)) {
        FinishWrite(rejected->request_id, NoLeaderOr(Status(rejected->code, rejected->message)),
                    nullptr);
      }
    }
  }
  if (!writes.empty()) ProposeOrForward(writes);
}

void MemberNode::ProposeOrForward(std::vector<WriteEvent>& writes) {
  const auto deadline = Clock::now() + request_timeout_;
  const bool leader = replica_->role() == consensus::Role::kLeader;
  const NodeId leader_id = replica_->leader();
  if (!leader && leader_id == NodeId(0)) {
    const Status no_leader = Status::Unavailable(std::string(kErrorNoLeader));
    for (WriteEvent& write : writes) write.done(no_leader, nullptr, nullptr, Header());
    metrics_->proposals_failed.fetch_add(writes.size(), std::memory_order_relaxed);
    return;
  }
  std::vector<std::string> payloads;
  std::vector<std::pair<NodeId, std::string>> forwards;
  std::vector<uint64_t> request_ids;
  for (WriteEvent& write : writes) {
    const uint64_t request_id = next_request_id_++;
    write.command.set_proposer(id().value());
    write.command.set_request_id(request_id);
    if (leader) {
      write.command.set_hybrid_time(hybrid_clock_.Now().packed());
      // The fields the submitter left unset, appended to its serialization (a later occurrence
      // of a field wins when parsing, and these were absent): the same bytes' meaning as
      // serializing the whole command here, without copying the key and value again.
      cairnpb::Command fields;
      fields.set_proposer(write.command.proposer());
      fields.set_request_id(write.command.request_id());
      fields.set_hybrid_time(write.command.hybrid_time());
      fields.AppendToString(&write.payload);  // Within the room the submitter reserved.
      payloads.push_back(std::move(write.payload));
    } else {
      forwards.emplace_back(leader_id, transport::EncodeFrame(ForwardedWrite{
                                           id(), request_id, write.command.SerializeAsString()}));
    }
    pending_writes_.emplace(request_id, PendingWrite{std::move(write.done), deadline});
    request_ids.push_back(request_id);
  }
  if (!leader) {
    SendFrames(std::move(forwards));
    return;
  }
  Result<LogIndex> proposed = replica_->ProposeBatch(std::move(payloads));
  if (!proposed.ok()) {
    for (uint64_t request_id : request_ids) {
      FinishWrite(request_id, NoLeaderOr(proposed.status()), nullptr);
    }
  }
}

void MemberNode::HandleForwardedWrite(const ForwardedWrite& write) {
  auto reject = [&](const Status& status) {
    SendFrames({{write.from, transport::EncodeFrame(ForwardRejected{
                                 id(), write.request_id, status.code(), status.message()})}});
  };
  cairnpb::Command command;
  if (!command.ParseFromString(write.command) || command.proposer() != write.from.value() ||
      command.request_case() == cairnpb::Command::REQUEST_NOT_SET) {
    spdlog::warn("member {:x}: refused a malformed forwarded write from {:x}", id().value(),
                 write.from.value());
    return reject(Status::InvalidArgument("etcdserver: malformed forwarded request"));
  }
  if (replica_->role() != consensus::Role::kLeader) {
    return reject(Status::NotLeader(std::string(kErrorNoLeader)));
  }
  command.set_hybrid_time(hybrid_clock_.Now().packed());
  std::vector<std::string> payloads;
  payloads.push_back(command.SerializeAsString());
  Result<LogIndex> proposed = replica_->ProposeBatch(std::move(payloads));
  if (!proposed.ok()) reject(NoLeaderOr(proposed.status()));
}

void MemberNode::HandleRead(ReadEvent& read) {
  if (!read.linearizable) {
    read.done(Status::Ok(), &store_, Header());
    return;
  }
  const uint64_t read_id = next_read_id_++;
  const Status asked = replica_->ReadIndex(read_id);
  if (!asked.ok()) {
    read.done(NoLeaderOr(asked.code() == StatusCode::kBusy
                             ? Status::Busy(std::string(kErrorTooManyRequests))
                             : asked),
              nullptr, Header());
    return;
  }
  pending_reads_.emplace(read_id, PendingRead{std::move(read.done), Clock::now() + request_timeout_});
}

void MemberNode::HandleReady() {
  consensus::Ready ready = replica_->TakeReady();
  // See the design note: a leader's appends do not promise its own durability, so they leave at
  // once; anything else (votes, acknowledgements) waits for the log writer's fdatasync.
  // A Ready that persists nothing, after every earlier job is durable, promises nothing that is
  // not on disk already: its messages (heartbeat and read-index answers, mostly) leave at once
  // too, without two hand-offs through the writer.
  const bool persists_nothing = !ready.hard_state && !ready.snapshot && !ready.truncate_after &&
                                ready.entries.empty();
  const bool send_first =
      (replica_->role() == consensus::Role::kLeader && !ready.hard_state && !ready.snapshot) ||
      (persists_nothing && log_writer_->AllJobsDone());
  LogWriter::Job job;
  if (send_first) {
    SendFrames(Encode(ready.messages));
  } else {
    job.messages_after = Encode(ready.messages);
  }
  job.storage.hard_state = ready.hard_state;
  job.storage.truncate_after = ready.truncate_after;
  job.storage.entries = std::move(ready.entries);
  if (ready.snapshot) {
    // Installing the leader's snapshot: it must be on disk before this member acknowledges it
    // or applies anything after it, so wait for the writer here (rare).
    const consensus::Snapshot& snapshot = *ready.snapshot;
    auto restored = mvcc::MvccStore::Restore(snapshot.data, options_.mvcc);
    // The leader's snapshot passed the transport's checksum; a store that does not decode is
    // a bug or a peer of another format version, never something to half-apply.
    CAIRN_CHECK(restored.ok(), "an installed snapshot decodes: {}", restored.status().ToString());
    if (snapshot_serializing_) {  // Its writer reads the store being replaced.
      snapshot_serializing_.reset();
      snapshot_in_flight_ = false;
    }
    store_ = std::move(restored).value();
    applied_index_ = snapshot.index;
    snapshot_index_ = snapshot.index;
    job.storage.snapshot = std::move(ready.snapshot);
    auto messages = std::move(job.messages_after);
    job.messages_after.clear();
    log_writer_->Submit(std::move(job));
    CAIRN_CHECK(log_writer_->RunAndWait([] { return Status::Ok(); }).ok(), "a barrier succeeds");
    durable_index_ = std::max(durable_index_, snapshot_index_);
    SendFrames(std::move(messages));
    spdlog::info("member {:x}: installed the leader's snapshot at index {} (revision {})",
                 id().value(), snapshot_index_, store_.current_revision());
  } else if (job.storage.hard_state || job.storage.truncate_after || !job.storage.entries.empty() ||
             !job.messages_after.empty()) {
    log_writer_->Submit(std::move(job));
  }
  if (!ready.committed.empty()) {
    const auto apply_start = Clock::now();
    Apply(ready.committed);
    metrics_->apply_seconds.Observe(SecondsSince(apply_start));
  }
  ServeReads(ready.reads);
  replica_->Advance();
}

std::vector<std::pair<NodeId, std::string>> MemberNode::Encode(
    const std::vector<consensus::Message>& messages) {
  std::vector<std::pair<NodeId, std::string>> frames;
  frames.reserve(messages.size());
  for (const consensus::Message& message : messages) {
    frames.emplace_back(message.to, transport::EncodeFrame(message));
  }
  return frames;
}

void MemberNode::Apply(const std::vector<wal::Entry>& committed) {
  for (const wal::Entry& entry : committed) {
    if (entry.index <= applied_index_) continue;
    CAIRN_CHECK(entry.index == applied_index_.next(), "entries apply in order: {} after {}",
                entry.index, applied_index_);
    if (entry.type == static_cast<uint8_t>(consensus::EntryType::kCommand)) {
      cairnpb::Command command;
      if (command.ParseFromString(entry.payload)) {
        ApplyCommand(command);
      } else {
        // Leaders only propose commands they parsed, so this is a bug; every member skips it
        // the same way, so the stores stay identical.
        spdlog::error("member {:x}: entry {} is not a command; skipped", id().value(), entry.index);
      }
    }
    applied_index_ = entry.index;
    metrics_->proposals_committed.fetch_add(1, std::memory_order_relaxed);
  }
}

void MemberNode::ApplyCommand(const cairnpb::Command& command) {
  const HybridTimestamp timestamp = HybridTimestamp::FromPacked(command.hybrid_time());
  // Hybrid Clock: a member that applies the leader's stamp moves its clock past it, so a later
  // leader stamps later revisions with later times. A stamp too far ahead is not believed for the
  // clock (the revision keeps it).
  (void)hybrid_clock_.Update(timestamp);
  Status status;
  mvcc::ResponseOp response;
  bool has_response = true;
  switch (command.request_case()) {
    case cairnpb::Command::kPut: {
      auto put = store_.Put(FromProto(command.put()), timestamp);
      if (put.ok()) response.response = std::move(put).value(); else status = put.status();
      break;
    }
    case cairnpb::Command::kDeleteRange: {
      auto deleted = store_.DeleteRange(FromProto(command.delete_range()), timestamp);
      if (deleted.ok()) response.response = std::move(deleted).value(); else status = deleted.status();
      break;
    }
    case cairnpb::Command::kTxn: {
      auto txn = store_.Txn(FromProto(command.txn()), timestamp);
      if (txn.ok()) response.response = std::move(txn).value(); else status = txn.status();
      break;
    }
    case cairnpb::Command::kCompaction: {
      auto compacted = store_.Compact({Revision(command.compaction().revision())});
      status = compacted.status();
      has_response = false;
      break;
    }
    case cairnpb::Command::REQUEST_NOT_SET:
      status = Status::InvalidArgument("etcdserver: empty request");
      break;
  }
  if (command.proposer() == id().value()) {
    FinishWrite(command.request_id(), status, has_response && status.ok() ? &response : nullptr);
  }
}

void MemberNode::FinishWrite(uint64_t request_id, const Status& status,
                             const mvcc::ResponseOp* response) {
  auto it = pending_writes_.find(request_id);
  if (it == pending_writes_.end()) return;  // Timed out already, or from an earlier run.
  WriteDone done = std::move(it->second.done);
  pending_writes_.erase(it);
  if (!status.ok()) metrics_->proposals_failed.fetch_add(1, std::memory_order_relaxed);
  done(status, status.ok() ? &store_ : nullptr, response, Header());
}

void MemberNode::ServeReads(const std::vector<consensus::ReadState>& reads) {
  for (const consensus::ReadState& read : reads) {
    auto it = pending_reads_.find(read.read_id);
    if (it == pending_reads_.end()) continue;
    ReadDone done = std::move(it->second.done);
    pending_reads_.erase(it);
    if (read.status.ok()) {
      CAIRN_CHECK(read.index <= applied_index_, "a read is served at or below the applied index");
      done(Status::Ok(), &store_, Header());
    } else {
      done(Status::Unavailable(std::string(replica_->leader() == NodeId(0) ? kErrorNoLeader
                                                                          : kErrorLeaderChanged)),
           nullptr, Header());
    }
  }
}

// One slice of snapshot serialization per member turn: about a millisecond of copying, so the
// requests of the turn wait at most that long for it (a 60 MiB store serialized at once held the
// thread for ~90 ms).
constexpr size_t kSnapshotSliceBytes = 512u << 10;
// Log entries a snapshot compacted away, freed per member turn (about a millisecond's worth).
constexpr size_t kEntriesFreedPerTurn = 8192;

void MemberNode::MaybeSnapshot() {
  if (replica_->log().compacted_held() > 0) FreeCompactedEntries();
  if (snapshot_serializing_) return ContinueSnapshot();
  if (snapshot_in_flight_ || options_.snapshot_count == 0 ||
      applied_index_ < NextSnapshotDue(snapshot_index_, options_.snapshot_count, snapshot_stagger_)) {
    return;
  }
  // The snapshot holds the store as applied, so it is labelled with the applied index (a leader,
  // or a follower, can apply an entry its own log has not synced yet: a quorum has). It is handed
  // on only once that index is durable here too (ContinueSnapshot), since it lets the log
  // behind it go.
  const LogIndex index = applied_index_;
  const std::optional<Generation> generation = replica_->log().GenerationAt(index);
  if (!generation) return;
  snapshot_in_flight_ = true;
  snapshot_serializing_.emplace(SnapshotInProgress{store_.BeginSnapshot(), index, *generation,
                                                   replica_->MembershipAt(index), Clock::now()});
  ContinueSnapshot();
}

void MemberNode::ContinueSnapshot() {
  SnapshotInProgress& job = *snapshot_serializing_;
  if (job.serialized) {
    if (durable_index_ >= job.index) SaveSnapshot();
    return;  // The log writer's next durability report wakes this thread again.
  }
  if (job.writer.stale()) {  // A compaction applied meanwhile: start again at a later turn.
    spdlog::info("member {:x}: snapshot at index {} abandoned after a compaction", id().value(),
                 job.index);
    snapshot_serializing_.reset();
    snapshot_in_flight_ = false;
    return;
  }
  const auto slice_start = Clock::now();
  const bool complete = job.writer.Continue(kSnapshotSliceBytes);
  job.member_ms += SecondsSince(slice_start) * 1e3;
  ++job.slices;
  if (!complete) return;
  job.serialized = true;
  if (durable_index_ >= job.index) SaveSnapshot();
}

void MemberNode::SaveSnapshot() {
  SnapshotInProgress& job = *snapshot_serializing_;
  // Writing, checksumming and syncing the file, the slow part, happen on the snapshot thread.
  mvcc::MvccStore::SnapshotWriter::Pending pending = job.writer.TakePending();
  const LogIndex index = job.index;
  const Generation generation = job.generation;
  const consensus::Membership membership = job.membership;
  const Revision revision = job.writer.revision();
  const double serialize_ms = job.member_ms;
  const int slices = job.slices;
  const double serialize_span_ms = SecondsSince(job.started) * 1e3;
  snapshot_serializing_.reset();
  if (snapshot_thread_.joinable()) snapshot_thread_.join();  // The previous one has reported.
  snapshot_thread_ = std::thread([this, index, generation, membership, revision, serialize_ms,
                                  slices, serialize_span_ms,
                                  pending = std::move(pending)]() mutable {
    pthread_setname_np(pthread_self(), "cairn-snapshot");
    const auto write_start = Clock::now();
    // The values are read in from the value log here, off the member thread.
    std::string data = std::move(pending).Finish();
    auto source = storage_->WriteSnapshot(index, generation, membership, data);
    SnapshotSavedEvent saved{index, source.status(), nullptr};
    if (source.ok()) saved.source = std::move(source).value();
    const double write_ms = SecondsSince(write_start) * 1e3;
    const double mib = static_cast<double>(data.size()) / (1 << 20);
    std::string().swap(data);  // The core reads the file back: no copy stays in memory.
    if (saved.status.ok()) {
      spdlog::info("member {:x}: snapshot at index {} (revision {}) saved: {:.1f} MiB, "
                   "serialized on the member thread in {:.1f} ms over {} slices ({:.0f} ms "
                   "apart), values read in, sealed, written and synced in {:.0f} ms",
                   id().value(), index, revision, mib, serialize_ms, slices, serialize_span_ms,
                   write_ms);
    }
    Enqueue(std::move(saved), Source::kInternal);  // Dropped if the member has stopped.
  });
}

void MemberNode::SnapshotSaved(SnapshotSavedEvent& saved) {
  snapshot_in_flight_ = false;
  if (!saved.status.ok()) StorageFailed(saved.status);
  const LogIndex index = saved.index;
  if (index <= snapshot_index_) return;  // A leader's snapshot, installed meanwhile, is newer.
  const auto start = Clock::now();
  snapshot_index_ = index;
  // The entries the snapshot covers leave memory a slice per turn (FreeCompactedEntries); their
  // segments are deleted by the log writer after what is queued before (Low-Water Mark): the
  // snapshot is durable, so neither has to happen before this thread goes on.
  CAIRN_CHECK(replica_->CompactLog(index, std::move(saved.source)).ok(),
              "compaction at an applied index is accepted");
  log_writer_->RunLater([this, index] {
    const auto release_start = Clock::now();
    Status released = storage_->ReleaseLogThrough(index);
    spdlog::info("member {:x}: log segments through {} released in {:.1f} ms", id().value(), index,
                 SecondsSince(release_start) * 1e3);
    return released;
  });
  spdlog::info("member {:x}: log compacted through {} in {:.1f} ms; {} entries to free", id().value(),
               index, SecondsSince(start) * 1e3, replica_->log().compacted_held());
  metrics_->snapshots_saved.fetch_add(1, std::memory_order_relaxed);
}

void MemberNode::FreeCompactedEntries() {
  if (replica_->FreeCompactedEntries(kEntriesFreedPerTurn) == 0) {
    // The freed entries lie scattered through the heap, between allocations that live on, so
    // malloc cannot give their pages back by shrinking the heap: malloc_trim returns the free
    // pages wherever they are. It takes 10-20 ms with a large heap: another thread does it.
    if (!trim_running_.exchange(true)) {
      if (trim_thread_.joinable()) trim_thread_.join();  // Done: it cleared trim_running_.
      trim_thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "cairn-trim");
        const auto trim_start = Clock::now();
        malloc_trim(0);
        spdlog::info("member {:x}: heap trimmed after freeing compacted log entries in {:.1f} ms",
                     id().value(), SecondsSince(trim_start) * 1e3);
        trim_running_.store(false);
      });
    }
  }
}

void MemberNode::ExpireRequests(Clock::time_point now) {
  const Status timed_out = Status::TimedOut(std::string(kErrorTimeout));
  // Removes the requests whose deadline passed, then answers each (a callback may not see the
  // map mid-erase).
  auto take_expired = [now](auto& pending) {
    std::vector<decltype(pending.begin()->second.done)> expired;
    std::erase_if(pending, [&](auto& entry) {
      if (entry.second.deadline > now) return false;
      expired.push_back(std::move(entry.second.done));
      return true;
    });
    return expired;
  };
  for (WriteDone& done : take_expired(pending_writes_)) {
    metrics_->proposals_failed.fetch_add(1, std::memory_order_relaxed);
    done(timed_out, nullptr, nullptr, Header());
  }
  for (ReadDone& done : take_expired(pending_reads_)) done(timed_out, nullptr, Header());
}

void MemberNode::FailAllPending(const Status& status) {
  auto writes = std::move(pending_writes_);
  pending_writes_.clear();
  for (auto& [request_id, write] : writes) write.done(status, nullptr, nullptr, ReplyHeader{});
  auto reads = std::move(pending_reads_);
  pending_reads_.clear();
  for (auto& [read_id, read] : reads) read.done(status, nullptr, ReplyHeader{});
}

void MemberNode::UpdateMetrics() {
  const NodeId leader = replica_->leader();
  if (leader != last_leader_) {
    if (leader != NodeId(0)) {
      metrics_->leader_changes.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("member {:x}: leader is {:x} (generation {})", id().value(), leader.value(),
                   replica_->generation());
    } else {
      spdlog::info("member {:x}: no leader (generation {})", id().value(),
                   replica_->generation());
    }
    last_leader_ = leader;
  }
  metrics_->has_leader.store(leader != NodeId(0) ? 1 : 0, std::memory_order_relaxed);
  metrics_->is_leader.store(replica_->role() == consensus::Role::kLeader ? 1 : 0,
                            std::memory_order_relaxed);
  metrics_->proposals_pending.store(static_cast<int64_t>(pending_writes_.size()),
                                    std::memory_order_relaxed);
  metrics_->applied_index.store(applied_index_.value(), std::memory_order_relaxed);
  metrics_->revision.store(store_.current_revision().value(), std::memory_order_relaxed);
  const mvcc::ValueLog& values = store_.value_log();
  metrics_->value_log_live_bytes.store(values.live_bytes(), std::memory_order_relaxed);
  metrics_->value_log_garbage_bytes.store(values.garbage_bytes(), std::memory_order_relaxed);
  metrics_->value_log_segments.store(values.segment_count(), std::memory_order_relaxed);
  metrics_->generation.store(replica_->generation().value(), std::memory_order_relaxed);
}

void MemberNode::SendFrames(std::vector<std::pair<NodeId, std::string>> frames) {
  if (frames.empty()) return;
  metrics_->peer_frames_sent.fetch_add(frames.size(), std::memory_order_relaxed);
  send_(std::move(frames));
}

ReplyHeader MemberNode::Header() const {
  const Revision revision = store_.current_revision();
  auto timestamp = store_.TimestampOf(revision);
  return ReplyHeader{.cluster_id = options_.cluster.cluster_id,
                     .member_id = id().value(),
                     .revision = revision,
                     .raft_term = replica_->generation().value(),
                     .hybrid_time = timestamp.ok() ? *timestamp : HybridTimestamp{}};
}

void MemberNode::StorageFailed(const Status& status) {
  // fsync-failure-is-final: the page cache may have dropped what we wrote. Stop here and let a
  // restart recover from what is durable.
  spdlog::critical("member {:x}: storage failed, stopping: {}", id().value(), status.ToString());
  spdlog::shutdown();
  std::abort();
}

}  // namespace cairn::server
