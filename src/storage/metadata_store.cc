#include "storage/metadata_store.h"

#include <fmt/format.h>

#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace cairn {
namespace {

// Layout (all little-endian): magic[8] "CAIRNMET" | version u32 | flags u32 | generation u64 |
// voted_for u64 | crc32c u32 over bytes [0, 32).
constexpr std::string_view kMagic = "CAIRNMET";
constexpr uint32_t kVersion = 1;
constexpr size_t kVersionOffset = 8;
constexpr size_t kFlagsOffset = 12;
constexpr size_t kGenerationOffset = 16;
constexpr size_t kVotedForOffset = 24;
constexpr size_t kCrcOffset = 32;
constexpr size_t kRecordBytes = 36;
static_assert(kMagic.size() == kVersionOffset, "the magic fills the first eight bytes");
static_assert(kFlagsOffset == kVersionOffset + 4 && kGenerationOffset == kFlagsOffset + 4);
static_assert(kVotedForOffset == kGenerationOffset + 8 && kCrcOffset == kVotedForOffset + 8);
static_assert(kRecordBytes == kCrcOffset + 4, "the checksum ends the record");

}  // namespace

std::string MetadataStore::Encode(const DurableMetadata& metadata) {
  std::string bytes(kRecordBytes, '\0');
  std::memcpy(bytes.data(), kMagic.data(), kMagic.size());
  EncodeFixed32(bytes.data() + kVersionOffset, kVersion);
  EncodeFixed32(bytes.data() + kFlagsOffset, 0);
  EncodeFixed64(bytes.data() + kGenerationOffset, metadata.generation.value());
  EncodeFixed64(bytes.data() + kVotedForOffset, metadata.voted_for.value());
  EncodeFixed32(bytes.data() + kCrcOffset, crc32c::Value(bytes.data(), kCrcOffset));
  return bytes;
}

Result<DurableMetadata> MetadataStore::Decode(std::string_view bytes) {
  if (bytes.size() != kRecordBytes) {
    return Status::Corruption(
        fmt::format("metadata record is {} bytes, expected {}", bytes.size(), kRecordBytes));
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return Status::Corruption("metadata record has a bad magic");
  }
  if (DecodeFixed32(bytes.data() + kCrcOffset) != crc32c::Value(bytes.data(), kCrcOffset)) {
    return Status::Corruption("metadata record checksum mismatch");
  }
  const uint32_t version = DecodeFixed32(bytes.data() + kVersionOffset);
  if (version > kVersion) {
    return Status::Unsupported(fmt::format(
        "metadata record format version {} is newer than this build reads (up to {})", version,
        kVersion));
  }
  return DurableMetadata{Generation(DecodeFixed64(bytes.data() + kGenerationOffset)),
                         NodeId(DecodeFixed64(bytes.data() + kVotedForOffset))};
}

Result<std::unique_ptr<MetadataStore>> MetadataStore::Open(FileSystem& fs, std::string directory) {
  const std::string path = JoinPath(directory, kFileName);
  CAIRN_ASSIGN_OR_RETURN(FileKind kind, fs.Stat(path));
  DurableMetadata current;
  if (kind == FileKind::kFile) {
    CAIRN_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(fs, path));
    auto decoded = Decode(bytes);
    if (!decoded.ok()) return decoded.status().WithContext(path);
    current = *decoded;
  }
  return std::unique_ptr<MetadataStore>(new MetadataStore(fs, std::move(directory), current));
}

Status MetadataStore::Save(const DurableMetadata& metadata) {
  if (failed_) {
    return Status::Failed(fmt::format("metadata store {} failed earlier and accepts no more saves",
                                      directory_));
  }
  CAIRN_CHECK(metadata.generation >= current_.generation,
              "the generation never goes back (saving {} after {})", metadata.generation,
              current_.generation);
  CAIRN_CHECK(metadata.generation != current_.generation || current_.voted_for == NodeId(0) ||
                  metadata.voted_for == current_.voted_for,
              "a vote cast in generation {} is never changed (from {} to {})",
              metadata.generation, current_.voted_for, metadata.voted_for);
  Status written = WriteFileAtomically(fs_, directory_, kFileName, Encode(metadata));
  if (!written.ok()) {
    failed_ = true;
    return written.WithContext("saving the generation and vote");
  }
  current_ = metadata;
  return Status::Ok();
}

}  // namespace cairn
