// Low-Water Mark in the protocol: compacting the log behind a snapshot, and sending the snapshot
// in chunks to a follower that needs entries the leader no longer holds.
#include <fmt/format.h>

#include "base/check.h"
#include "consensus/replica.h"

namespace cairn::consensus {
namespace {

class InMemorySnapshotSource final : public SnapshotSource {
 public:
  explicit InMemorySnapshotSource(std::string data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_.size(); }
  std::string Read(uint64_t offset, uint64_t length) const override {
    return data_.substr(offset, length);
  }

 private:
  const std::string data_;
};

}  // namespace

std::shared_ptr<const SnapshotSource> InMemorySnapshot(std::string data) {
  return std::make_shared<InMemorySnapshotSource>(std::move(data));
}

Status Replica::CompactLog(LogIndex index, std::shared_ptr<const SnapshotSource> data) {
  CheckNoReadyOutstanding();
  CAIRN_CHECK(data != nullptr, "a compaction comes with its snapshot's data");
  if (index > log_.applied_index()) {
    return Status::InvalidArgument(fmt::format(
        "a snapshot at {} covers entries not applied yet (applied {})", index,
        log_.applied_index()));
  }
  if (index <= log_.snapshot_index()) return Status::Ok();  // Nothing newer to compact.
  snapshot_membership_ = MembershipAt(index);
  membership_entries_.erase(membership_entries_.begin(), membership_entries_.upper_bound(index));
  log_.CompactTo(index);
  snapshot_data_ = std::move(data);
  // Followers part-way through receiving an older snapshot start again with this one.
  for (auto& [peer, progress] : progress_) {
    if (progress.state == Progress::State::kSnapshot && progress.snapshot_index != index) {
      progress.BecomeSnapshot(index);
    }
  }
  return Status::Ok();
}

void Replica::SendSnapshotChunk(NodeId peer) {
  Progress& progress = progress_.at(peer);
  if (progress.state != Progress::State::kSnapshot ||
      progress.snapshot_index != log_.snapshot_index()) {
    progress.BecomeSnapshot(log_.snapshot_index());
  }
  if (progress.snapshot_chunk_sent) return;
  const uint64_t total = snapshot_data_->size();
  const uint64_t offset = std::min<uint64_t>(progress.snapshot_offset, total);
  const uint64_t size = std::min<uint64_t>(options_.snapshot_chunk_bytes, total - offset);
  progress.snapshot_chunk_sent = true;
  Send(Message{.type = MessageType::kSnapshot,
               .to = peer,
               .log_index = log_.snapshot_index(),
               .log_generation = *log_.GenerationAt(log_.snapshot_index()),
               .snapshot_offset = offset,
               .snapshot_chunk = snapshot_data_->Read(offset, size),
               .snapshot_membership = EncodeMembership(snapshot_membership_),
               .snapshot_done = offset + size == total});
}

void Replica::HandleSnapshotResponse(const Message& message) {
  auto found = progress_.find(message.from);
  if (found == progress_.end()) return;
  Progress& progress = found->second;
  if (progress.state != Progress::State::kSnapshot ||
      message.log_index != progress.snapshot_index) {
    return;  // About a snapshot we are no longer sending.
  }
  progress.snapshot_chunk_sent = false;
  progress.snapshot_offset = message.rejected ? 0 : message.snapshot_offset;
  SendSnapshotChunk(message.from);
}

void Replica::HandleSnapshotChunk(const Message& message) {
  auto respond = [&](bool rejected, uint64_t offset) {
    Send(Message{.type = MessageType::kSnapshotResponse,
                 .to = message.from,
                 .log_index = message.log_index,
                 .rejected = rejected,
                 .snapshot_offset = offset});
  };
  if (message.log_index <= log_.commit_index()) {
    // We already hold all of it: say how far we are, as an append would.
    incoming_snapshot_.reset();
    Send(Message{.type = MessageType::kAppendResponse,
                 .to = message.from,
                 .log_index = message.log_index,
                 .match_index = log_.commit_index()});
    return;
  }
  const bool same_snapshot = incoming_snapshot_ && incoming_snapshot_->from == message.from &&
                             incoming_snapshot_->index == message.log_index &&
                             incoming_snapshot_->generation == message.log_generation;
  if (!same_snapshot) {
    if (message.snapshot_offset != 0) {
      respond(/*rejected=*/true, 0);  // We hold nothing of this snapshot: start from the top.
      return;
    }
    incoming_snapshot_ = IncomingSnapshot{message.from, message.log_index, message.log_generation,
                                          std::string()};
  }
  if (message.snapshot_offset != incoming_snapshot_->data.size()) {
    // A duplicate or a chunk after a lost one: tell the leader where we are.
    respond(/*rejected=*/false, incoming_snapshot_->data.size());
    return;
  }
  if (incoming_snapshot_->data.size() + message.snapshot_chunk.size() >
      options_.snapshot_bytes_max) {
    incoming_snapshot_.reset();
    respond(/*rejected=*/true, 0);
    return;
  }
  incoming_snapshot_->data += message.snapshot_chunk;
  if (!message.snapshot_done) {
    respond(/*rejected=*/false, incoming_snapshot_->data.size());
    return;
  }
  IncomingSnapshot snapshot = std::move(*incoming_snapshot_);
  incoming_snapshot_.reset();
  if (log_.Matches(snapshot.index, snapshot.generation)) {
    // Our log already holds the snapshot's last entry: it is committed, so just say so; the
    // entries will be applied from the log as usual.
    log_.CommitTo(snapshot.index);
  } else {
    auto membership = DecodeMembership(message.snapshot_membership);
    if (!membership.ok()) {
      respond(/*rejected=*/true, 0);  // A snapshot without a readable membership is unusable.
      return;
    }
    log_.RestoreSnapshot(snapshot.index, snapshot.generation);
    snapshot_membership_ = *membership;
    membership_entries_.clear();
    membership_ = *membership;
    OnMembershipChanged();
    snapshot_to_install_ =
        Snapshot{snapshot.index, snapshot.generation, snapshot.data, *membership};
    snapshot_data_ = InMemorySnapshot(std::move(snapshot.data));
    durable_index_ = std::min(durable_index_, snapshot.index);
  }
  Send(Message{.type = MessageType::kAppendResponse,
               .to = message.from,
               .log_index = snapshot.index,
               .match_index = snapshot.index});
}

}  // namespace cairn::consensus
