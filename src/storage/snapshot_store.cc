#include "storage/snapshot_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "base/coding.h"
#include "base/crc32c.h"

namespace cairn {
namespace {

// Layout (little-endian): magic[8] "CAIRNSNP" | version u32 | flags u32 | index u64 |
// generation u64 | data_length u64 | data_crc32c u32 | header_crc32c u32 over [0, 44) | data.
constexpr std::string_view kMagic = "CAIRNSNP";
constexpr uint32_t kVersion = 1;
constexpr size_t kVersionOffset = 8;
constexpr size_t kFlagsOffset = 12;
constexpr size_t kIndexOffset = 16;
constexpr size_t kGenerationOffset = 24;
constexpr size_t kDataLengthOffset = 32;
constexpr size_t kDataCrcOffset = 40;
constexpr size_t kHeaderCrcOffset = 44;
constexpr size_t kHeaderBytes = 48;
static_assert(kMagic.size() == kVersionOffset);
static_assert(kFlagsOffset == kVersionOffset + 4 && kIndexOffset == kFlagsOffset + 4);
static_assert(kGenerationOffset == kIndexOffset + 8 && kDataLengthOffset == kGenerationOffset + 8);
static_assert(kDataCrcOffset == kDataLengthOffset + 8 && kHeaderCrcOffset == kDataCrcOffset + 4);
static_assert(kHeaderBytes == kHeaderCrcOffset + 4);

constexpr std::string_view kSuffix = ".snap";
constexpr size_t kDigits = 20;

std::optional<SnapshotMeta> ParseFileName(std::string_view name) {
  if (name.size() != kDigits * 2 + 1 + kSuffix.size() || !name.ends_with(kSuffix) ||
      name[kDigits] != '-') {
    return std::nullopt;
  }
  auto digits = [](std::string_view part) {
    return std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  const std::string_view index = name.substr(0, kDigits);
  const std::string_view generation = name.substr(kDigits + 1, kDigits);
  if (!digits(index) || !digits(generation)) return std::nullopt;
  return SnapshotMeta{LogIndex(std::stoull(std::string(index))),
                      Generation(std::stoull(std::string(generation)))};
}

}  // namespace

std::string SnapshotStore::FileName(const SnapshotMeta& meta) {
  return fmt::format("{:020}-{:020}{}", meta.index.value(), meta.generation.value(), kSuffix);
}

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(FileSystem& fs, std::string directory,
                                                           SnapshotOptions options) {
  if (options.retained_snapshots == 0) {
    return Status::InvalidArgument("at least one snapshot must be retained");
  }
  CAIRN_TRY(fs.CreateDirectory(directory));
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDirectory(directory));
  for (const std::string& name : names) {
    if (name.ends_with(".tmp")) {
      spdlog::info("{}: removing {} left by an interrupted snapshot save", directory, name);
      CAIRN_TRY(fs.RemoveFile(JoinPath(directory, name)));
    } else if (!ParseFileName(name)) {
      return Status::Corruption(fmt::format(
          "unexpected file '{}' in the snapshot directory {}: only <index>-<generation>.snap "
          "files belong there",
          name, directory));
    }
  }
  return std::unique_ptr<SnapshotStore>(new SnapshotStore(fs, std::move(directory), options));
}

Result<std::vector<SnapshotMeta>> SnapshotStore::List() {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_.ListDirectory(directory_));
  std::vector<SnapshotMeta> metas;
  for (const std::string& name : names) {
    if (auto meta = ParseFileName(name)) metas.push_back(*meta);
  }
  std::sort(metas.begin(), metas.end(), [](const SnapshotMeta& a, const SnapshotMeta& b) {
    return a.index != b.index ? a.index < b.index : a.generation < b.generation;
  });
  return metas;
}

Status SnapshotStore::Save(const SnapshotMeta& meta,
                           std::initializer_list<std::string_view> data) {
  CAIRN_TRY(WriteTemporary(meta, data));
  return Publish(meta);
}

Status SnapshotStore::WriteTemporary(const SnapshotMeta& meta,
                                     std::initializer_list<std::string_view> data) {
  std::string bytes(kHeaderBytes, '\0');
  std::memcpy(bytes.data(), kMagic.data(), kMagic.size());
  EncodeFixed32(bytes.data() + kVersionOffset, kVersion);
  EncodeFixed32(bytes.data() + kFlagsOffset, 0);
  EncodeFixed64(bytes.data() + kIndexOffset, meta.index.value());
  EncodeFixed64(bytes.data() + kGenerationOffset, meta.generation.value());
  uint64_t data_length = 0;
  uint32_t data_crc = 0;
  for (std::string_view piece : data) {
    data_length += piece.size();
    data_crc = crc32c::Extend(data_crc, piece.data(), piece.size());
  }
  EncodeFixed64(bytes.data() + kDataLengthOffset, data_length);
  EncodeFixed32(bytes.data() + kDataCrcOffset, data_crc);
  EncodeFixed32(bytes.data() + kHeaderCrcOffset, crc32c::Value(bytes.data(), kHeaderCrcOffset));
  std::string_view a = data.size() > 0 ? data.begin()[0] : std::string_view();
  std::string_view b = data.size() > 1 ? data.begin()[1] : std::string_view();
  CAIRN_CHECK(data.size() <= 2, "a snapshot is saved from at most two pieces");
  return WriteFileDurably(fs_, JoinPath(directory_, FileName(meta) + ".tmp"), {bytes, a, b},
                          options_.write_back_every_bytes);
}

Status SnapshotStore::Publish(const SnapshotMeta& meta) {
  CAIRN_TRY(fs_.Rename(JoinPath(directory_, FileName(meta) + ".tmp"),
                       JoinPath(directory_, FileName(meta))));
  CAIRN_TRY(fs_.SyncDirectory(directory_));
  CAIRN_ASSIGN_OR_RETURN(std::vector<SnapshotMeta> metas, List());
  while (metas.size() > options_.retained_snapshots) {
    CAIRN_TRY(fs_.RemoveFile(JoinPath(directory_, FileName(metas.front()))));
    metas.erase(metas.begin());
  }
  return fs_.SyncDirectory(directory_);
}

Result<SnapshotFile> SnapshotStore::OpenStored(const SnapshotMeta& meta) {
  const std::string path = JoinPath(directory_, FileName(meta));
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, fs_.OpenReadable(path));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  auto corrupt = [&](std::string_view what) {
    return Status::Corruption(fmt::format("{}: {}", path, what));
  };
  if (size < kHeaderBytes) return corrupt("shorter than a snapshot header");
  char header[kHeaderBytes];
  CAIRN_ASSIGN_OR_RETURN(size_t read, file->ReadAt(0, kHeaderBytes, header));
  if (read != kHeaderBytes) return corrupt("short read of the header");
  if (std::string_view(header, kMagic.size()) != kMagic) return corrupt("bad magic");
  if (DecodeFixed32(header + kHeaderCrcOffset) != crc32c::Value(header, kHeaderCrcOffset)) {
    return corrupt("header checksum mismatch");
  }
  const uint32_t version = DecodeFixed32(header + kVersionOffset);
  if (version > kVersion) {
    return Status::Unsupported(fmt::format(
        "{}: snapshot format version {} is newer than this build reads (up to {})", path, version,
        kVersion));
  }
  const SnapshotMeta stored{LogIndex(DecodeFixed64(header + kIndexOffset)),
                            Generation(DecodeFixed64(header + kGenerationOffset))};
  if (stored != meta) return corrupt("header disagrees with the file name");
  const uint64_t data_length = DecodeFixed64(header + kDataLengthOffset);
  if (data_length > options_.snapshot_bytes_max || data_length != size - kHeaderBytes) {
    return corrupt(fmt::format("data length {} does not match the file size {}", data_length,
                               size));
  }
  return SnapshotFile{std::move(file), path, kHeaderBytes, data_length,
                      DecodeFixed32(header + kDataCrcOffset)};
}

Result<Snapshot> SnapshotStore::Load(const SnapshotMeta& meta) {
  CAIRN_ASSIGN_OR_RETURN(SnapshotFile stored, OpenStored(meta));
  Snapshot snapshot{meta, std::string(stored.data_length, '\0')};
  CAIRN_ASSIGN_OR_RETURN(size_t read, stored.file->ReadAt(stored.data_offset, stored.data_length,
                                                          snapshot.data.data()));
  if (read != stored.data_length) {
    return Status::Corruption(fmt::format("{}: short read of the data", stored.path));
  }
  if (stored.data_crc != crc32c::Value(snapshot.data)) {
    return Status::Corruption(fmt::format("{}: data checksum mismatch", stored.path));
  }
  return snapshot;
}

Result<std::optional<Snapshot>> SnapshotStore::LoadNewest() {
  CAIRN_ASSIGN_OR_RETURN(std::vector<SnapshotMeta> metas, List());
  for (auto it = metas.rbegin(); it != metas.rend(); ++it) {
    Result<Snapshot> loaded = Load(*it);
    if (loaded.ok()) return std::optional<Snapshot>(std::move(loaded).value());
    if (loaded.status().code() != StatusCode::kCorruption) return loaded.status();
    spdlog::error("skipping damaged snapshot: {}", loaded.status().ToString());
  }
  return std::optional<Snapshot>();
}

}  // namespace cairn
