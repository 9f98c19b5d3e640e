#include "member/member_storage.h"

#include <fmt/format.h>

#include "base/check.h"
#include "base/coding.h"
#include "base/crc32c.h"

namespace cairn::member {

namespace {

// The part of a stored snapshot before the state machine's data.
std::string SnapshotBlobPrefix(const consensus::Membership& membership) {
  const std::string encoded = consensus::EncodeMembership(membership);
  std::string prefix;
  PutFixed32(&prefix, static_cast<uint32_t>(encoded.size()));
  prefix += encoded;
  return prefix;
}

// The state-machine data of a snapshot file, read in place. Used by one thread at a time.
class StoredSnapshotSource final : public consensus::SnapshotSource {
 public:
  StoredSnapshotSource(SnapshotFile file, uint64_t offset, uint64_t size, uint32_t prefix_crc)
      : file_(std::move(file)), offset_(offset), size_(size), prefix_crc_(prefix_crc) {}
  uint64_t size() const override { return size_; }
  std::string Read(uint64_t offset, uint64_t length) const override {
    CAIRN_CHECK(offset <= size_ && length <= size_ - offset,
                "snapshot read [{}, +{}) beyond its {} bytes", offset, length, size_);
    std::string bytes(length, '\0');
    auto read = file_.file->ReadAt(offset_ + offset, length, bytes.data());
    CAIRN_CHECK(read.ok() && *read == length, "cannot read snapshot {} at {}: {}", file_.path,
                offset_ + offset, read.ok() ? "short read" : read.status().ToString());
    // The checksum covers the file's whole data (membership prefix included): follow it over
    // reads that go through the data in order, from the start.
    if (offset == 0) {
      crc_ = prefix_crc_;
      checked_to_ = 0;
    }
    if (offset == checked_to_) {
      crc_ = crc32c::Extend(crc_, bytes.data(), bytes.size());
      checked_to_ += length;
      CAIRN_CHECK(checked_to_ != size_ || crc_ == file_.data_crc,
                  "snapshot {} on disk fails its data checksum: not sending it", file_.path);
    }
    return bytes;
  }

 private:
  const SnapshotFile file_;
  const uint64_t offset_;  // Of the state machine's data in the file.
  const uint64_t size_;
  const uint32_t prefix_crc_;  // Of the bytes before offset_ in the data.
  mutable uint32_t crc_ = 0;
  mutable uint64_t checked_to_ = 0;
};

}  // namespace

std::string EncodeSnapshotBlob(const consensus::Membership& membership, std::string_view data) {
  std::string blob = SnapshotBlobPrefix(membership);
  blob += data;
  return blob;
}

Result<std::pair<consensus::Membership, std::string>> DecodeSnapshotBlob(std::string_view blob) {
  if (blob.size() < 4 || blob.size() - 4 < DecodeFixed32(blob.data())) {
    return Status::Corruption("stored snapshot too short for its membership");
  }
  const uint32_t size = DecodeFixed32(blob.data());
  CAIRN_ASSIGN_OR_RETURN(consensus::Membership membership,
                         consensus::DecodeMembership(blob.substr(4, size)));
  return std::make_pair(std::move(membership), std::string(blob.substr(4 + size)));
}

Result<std::unique_ptr<MemberStorage>> MemberStorage::Open(FileSystem& fs,
                                                           const std::string& directory,
                                                           MemberStorageOptions options) {
  std::unique_ptr<MemberStorage> storage(new MemberStorage());
  CAIRN_ASSIGN_OR_RETURN(storage->metadata_, MetadataStore::Open(fs, directory));
  CAIRN_ASSIGN_OR_RETURN(storage->log_,
                         wal::WriteAheadLog::Open(fs, JoinPath(directory, "wal"), options.wal));
  CAIRN_ASSIGN_OR_RETURN(storage->snapshots_,
                         SnapshotStore::Open(fs, JoinPath(directory, "snap"), options.snapshots));
  storage->low_water_mark_ = std::make_unique<wal::LowWaterMark>(options.low_water_mark);
  CAIRN_ASSIGN_OR_RETURN(std::optional<Snapshot> newest, storage->snapshots_->LoadNewest());

  consensus::RecoveredState recovered;
  const DurableMetadata durable = storage->metadata_->current();
  recovered.hard_state = {durable.generation, durable.voted_for};
  if (newest) {
    auto blob = DecodeSnapshotBlob(newest->data);
    if (!blob.ok()) return blob.status().WithContext(directory);
    recovered.snapshot_index = newest->meta.index;
    recovered.snapshot_generation = newest->meta.generation;
    recovered.snapshot_membership = std::move(blob->first);
    recovered.snapshot_data = std::move(blob->second);
  }
  wal::WriteAheadLog& log = *storage->log_;
  const LogIndex snapshot_index = recovered.snapshot_index;
  if (log.first_index() > snapshot_index.next()) {
    return Status::Corruption(fmt::format(
        "{}: the log starts at index {} but the newest usable snapshot is at {}: the entries "
        "between them are missing",
        directory, log.first_index(), snapshot_index));
  }
  // The log continues the snapshot when it was restarted right after it (an installed snapshot),
  // or when it holds the snapshot's last entry with the same generation (a local snapshot).
  const bool log_continues_snapshot =
      snapshot_index == LogIndex(0) || log.first_index() == snapshot_index.next() ||
      (log.last_index() >= snapshot_index && snapshot_index >= log.first_index() &&
       log.GenerationAt(snapshot_index) == recovered.snapshot_generation);
  if (!log_continues_snapshot) {
    CAIRN_TRY(log.Reset(snapshot_index.next()));
  } else if (log.last_index() > snapshot_index) {
    CAIRN_ASSIGN_OR_RETURN(recovered.entries,
                           log.Read(std::max(log.first_index(), snapshot_index.next()),
                                    log.last_index()));
  }
  storage->snapshot_index_ = snapshot_index;
  storage->recovered_ = std::move(recovered);
  return storage;
}

consensus::RecoveredState MemberStorage::TakeRecoveredState() {
  CAIRN_CHECK(recovered_.has_value(), "the recovered state is taken once");
  consensus::RecoveredState recovered = std::move(*recovered_);
  recovered_.reset();
  return recovered;
}

Status MemberStorage::Persist(const consensus::Ready& ready) {
  if (ready.hard_state) {
    CAIRN_TRY(metadata_->Save({ready.hard_state->generation, ready.hard_state->voted_for}));
  }
  if (ready.snapshot) {
    const consensus::Snapshot& snapshot = *ready.snapshot;
    {
      std::lock_guard lock(snapshots_mutex_);
      CAIRN_TRY(snapshots_->Save({snapshot.index, snapshot.generation},
                                 {SnapshotBlobPrefix(snapshot.membership), snapshot.data}));
    }
    CAIRN_TRY(log_->Reset(snapshot.index.next()));
    snapshot_index_ = snapshot.index;
  }
  if (ready.truncate_after) CAIRN_TRY(log_->TruncateAfter(*ready.truncate_after));
  if (!ready.entries.empty()) {
    CAIRN_TRY(log_->Append(ready.entries));
    CAIRN_TRY(log_->Sync().status());
  }
  return Status::Ok();
}

Status MemberStorage::SaveSnapshot(LogIndex index, Generation generation,
                                   const consensus::Membership& membership,
                                   std::string_view data) {
  // Durable before the log behind it is released (Low-Water Mark).
  CAIRN_TRY(WriteSnapshot(index, generation, membership, data).status());
  return ReleaseLogThrough(index);
}

Result<std::shared_ptr<const consensus::SnapshotSource>> MemberStorage::WriteSnapshot(
    LogIndex index, Generation generation, const consensus::Membership& membership,
    std::string_view data) {
  // Its own temporary name: nothing else writes this file, so no lock while it is written.
  CAIRN_TRY(snapshots_->WriteTemporary({index, generation}, {SnapshotBlobPrefix(membership), data}));
  std::lock_guard lock(snapshots_mutex_);
  CAIRN_TRY(snapshots_->Publish({index, generation}));
  return OpenSnapshotDataLocked(index, generation);
}

Status MemberStorage::ReleaseLogThrough(LogIndex index) {
  if (index < snapshot_index_) return Status::Ok();  // A leader's newer snapshot restarted the log.
  snapshot_index_ = index;
  return low_water_mark_->OnSnapshotDurable(*log_, index).status();
}

Result<std::shared_ptr<const consensus::SnapshotSource>> MemberStorage::OpenSnapshotData(
    LogIndex index, Generation generation) {
  std::lock_guard lock(snapshots_mutex_);
  return OpenSnapshotDataLocked(index, generation);
}

Result<std::shared_ptr<const consensus::SnapshotSource>> MemberStorage::OpenSnapshotDataLocked(
    LogIndex index, Generation generation) {
  CAIRN_ASSIGN_OR_RETURN(SnapshotFile file, snapshots_->OpenStored({index, generation}));
  char length[4];
  if (file.data_length < sizeof(length)) {
    return Status::Corruption(fmt::format("{}: too short for its membership", file.path));
  }
  CAIRN_ASSIGN_OR_RETURN(size_t read, file.file->ReadAt(file.data_offset, sizeof(length), length));
  const uint64_t prefix = sizeof(length) + uint64_t{DecodeFixed32(length)};
  if (read != sizeof(length) || prefix > file.data_length) {
    return Status::Corruption(fmt::format("{}: too short for its membership", file.path));
  }
  std::string prefix_bytes(prefix, '\0');
  CAIRN_ASSIGN_OR_RETURN(read, file.file->ReadAt(file.data_offset, prefix, prefix_bytes.data()));
  if (read != prefix) {
    return Status::Corruption(fmt::format("{}: short read of its membership", file.path));
  }
  const uint64_t offset = file.data_offset + prefix;
  const uint64_t size = file.data_length - prefix;
  return std::shared_ptr<const consensus::SnapshotSource>(std::make_shared<StoredSnapshotSource>(
      std::move(file), offset, size, crc32c::Value(prefix_bytes)));
}

}  // namespace cairn::member
