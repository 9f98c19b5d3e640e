#include "wal/write_ahead_log.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "base/coding.h"
#include "base/crc32c.h"
#include "wal/log_format.h"

namespace cairn::wal {

struct WriteAheadLog::Segment {
  LogIndex first_index;
  std::string path;
  std::vector<RecordLocation> records;
  uint64_t size_bytes = 0;  // Header plus records written so far.
  // Open while the segment is active, or sealed but not yet synced.
  std::unique_ptr<WritableFile> writer;
  bool preallocated = false;  // Created from a spare (its file may run past size_bytes in zeros).
  bool needs_sync = false;
  std::unique_ptr<ReadableFile> reader;  // Opened on first read.

  LogIndex last_index() const { return LogIndex(first_index.value() + records.size() - 1); }
  uint64_t RecordEnd(size_t position) const {
    return position + 1 < records.size() ? records[position + 1].offset : size_bytes;
  }
};

namespace {

std::string EncodeSegmentHeader(LogIndex first_index, bool preallocated) {
  std::string header(kSegmentHeaderBytes, '\0');
  std::memcpy(header.data() + kSegmentMagicOffset, kSegmentMagic.data(), kSegmentMagic.size());
  EncodeFixed32(header.data() + kSegmentVersionOffset, kFormatVersion);
  EncodeFixed32(header.data() + kSegmentFlagsOffset,
                preallocated ? kSegmentFlagPreallocated : 0);
  EncodeFixed64(header.data() + kSegmentFirstIndexOffset, first_index.value());
  EncodeFixed32(header.data() + kSegmentReservedOffset, 0);
  EncodeFixed32(header.data() + kSegmentHeaderCrcOffset,
                crc32c::Value(header.data(), kSegmentHeaderCrcOffset));
  return header;
}

void EncodeRecord(const Entry& entry, std::string* out) {
  const size_t start = out->size();
  out->resize(start + kRecordHeaderBytes);
  out->append(entry.payload);
  out->push_back(static_cast<char>(kRecordTrailer));
  char* record = out->data() + start;
  EncodeFixed32(record + kRecordLengthOffset, static_cast<uint32_t>(entry.payload.size()));
  record[kRecordTypeOffset] = static_cast<char>(entry.type);
  std::memset(record + kRecordReservedOffset, 0, 3);
  EncodeFixed64(record + kRecordIndexOffset, entry.index.value());
  EncodeFixed64(record + kRecordGenerationOffset, entry.generation.value());
  const uint32_t header_crc = crc32c::Value(record + kRecordChecksummedOffset,
                                            kRecordHeaderBytes - kRecordChecksummedOffset);
  EncodeFixed32(record + kRecordHeaderCrcOffset, header_crc);
  const uint32_t record_crc =
      crc32c::Value(record + kRecordChecksummedOffset,
                    kRecordHeaderBytes - kRecordChecksummedOffset + entry.payload.size());
  EncodeFixed32(record + kRecordCrcOffset, record_crc);
}

struct RecordHeader {
  uint32_t record_crc;
  uint32_t header_crc;
  uint32_t payload_length;
  uint8_t type;
  bool reserved_zero;
  uint64_t index;
  uint64_t generation;
};

RecordHeader DecodeRecordHeader(const char* record) {
  RecordHeader header;
  header.record_crc = DecodeFixed32(record + kRecordCrcOffset);
  header.header_crc = DecodeFixed32(record + kRecordHeaderCrcOffset);
  header.payload_length = DecodeFixed32(record + kRecordLengthOffset);
  header.type = static_cast<uint8_t>(record[kRecordTypeOffset]);
  header.reserved_zero = record[kRecordReservedOffset] == 0 &&
                         record[kRecordReservedOffset + 1] == 0 &&
                         record[kRecordReservedOffset + 2] == 0;
  header.index = DecodeFixed64(record + kRecordIndexOffset);
  header.generation = DecodeFixed64(record + kRecordGenerationOffset);
  return header;
}

bool HeaderChecksumMatches(const char* record) {
  return DecodeFixed32(record + kRecordHeaderCrcOffset) ==
         crc32c::Value(record + kRecordChecksummedOffset,
                       kRecordHeaderBytes - kRecordChecksummedOffset);
}

// The record checksum and the trailer; `record` holds RecordBytes(payload_length) bytes.
bool RecordIsSound(const char* record, uint32_t payload_length) {
  return static_cast<uint8_t>(record[kRecordHeaderBytes + payload_length]) == kRecordTrailer &&
         DecodeFixed32(record + kRecordCrcOffset) ==
             crc32c::Value(record + kRecordChecksummedOffset,
                           kRecordHeaderBytes - kRecordChecksummedOffset + payload_length);
}

// The first offset >= `start` where a record with a sound header begins, if any. Recovery uses
// it to tell a torn tail (nothing valid after the bad spot) from damage in the middle of the log.
std::optional<uint64_t> FindSoundRecordHeader(std::string_view data, uint64_t start) {
  for (uint64_t offset = start; offset + kRecordHeaderBytes <= data.size(); ++offset) {
    const char* record = data.data() + offset;
    // Cheap filters first: reserved bytes are zero and the type is not.
    if (record[kRecordReservedOffset] != 0 || record[kRecordReservedOffset + 1] != 0 ||
        record[kRecordReservedOffset + 2] != 0 || record[kRecordTypeOffset] == 0) {
      continue;
    }
    if (DecodeFixed32(record + kRecordLengthOffset) > kPayloadBytesMax) continue;
    if (HeaderChecksumMatches(record)) return offset;
  }
  return std::nullopt;
}

// True when the file's end, from `bad_offset` or from a sector boundary before `bad_end`, is all
// zero bytes: the signature of a file whose new length reached the disk before its data did.
// Sound records end in a non-zero trailer, so genuine content never looks like this.
// `nonzero_end` is NonZeroEnd(data), which recovery computes once per segment.
bool TailIsZeroFilled(std::string_view data, uint64_t nonzero_end, uint64_t bad_offset,
                      uint64_t bad_end) {
  const uint64_t zeros_from = std::max(nonzero_end, bad_offset);
  if (zeros_from >= data.size()) return false;  // No zero bytes at the end at all.
  if (zeros_from == bad_offset) return true;
  const uint64_t boundary = (zeros_from + kSectorBytes - 1) / kSectorBytes * kSectorBytes;
  return boundary < data.size() && boundary < bad_end;
}

bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// One past the last non-zero byte of `data` (0 when it is all zeros).
uint64_t NonZeroEnd(std::string_view data) {
  uint64_t end = data.size();
  while (end > 0 && data[end - 1] == 0) --end;
  return end;
}

// True when a sector's share of the bad record [begin, end) is all zeros where the record's own
// bytes cannot be: the mark a sector that reverted to a preallocated segment's zeros leaves in a
// record written over it. Telling shares, with a sound header (known length): the first (the
// record checksum, which the header checksum does not cover), the one holding the trailer (never
// zero) and any whole sector (zero only in a value of zeros). With a damaged
// header: the first share (it starts with the record checksum), the one holding the type byte
// (never zero), one holding a byte of the expected index that is not zero, or one holding all of
// the generation when the previous record's was not zero. Not telling: a share of only the
// header's later fields, whose high bytes are zero in most records.
bool HasRevertedSector(std::string_view data, uint64_t begin, uint64_t end, bool header_sound,
                       LogIndex expected_index, Generation previous_generation) {
  end = std::min<uint64_t>(end, data.size());
  for (uint64_t piece = begin; piece < end;) {
    const uint64_t piece_end = std::min(end, (piece / kSectorBytes + 1) * kSectorBytes);
    auto covers = [&](uint64_t at) { return piece <= at && at < piece_end; };
    bool telling = false;
    if (header_sound) {
      // The first share holds the record checksum, which the header checksum does not cover.
      telling = piece == begin || piece_end == end || piece_end - piece == kSectorBytes;
    } else {
      telling = piece == begin || covers(begin + kRecordTypeOffset);
      for (int byte = 0; byte < 8; ++byte) {
        if (((expected_index.value() >> (8 * byte)) & 0xff) != 0 &&
            covers(begin + kRecordIndexOffset + byte)) {
          telling = true;
        }
      }
      if (previous_generation.value() != 0 && piece <= begin + kRecordGenerationOffset &&
          begin + kRecordHeaderBytes <= piece_end) {
        telling = true;
      }
    }
    if (telling && AllZero(data.substr(piece, piece_end - piece))) return true;
    piece = piece_end;
  }
  return false;
}

}  // namespace

std::string SegmentFileName(LogIndex first_index) {
  return fmt::format("{:020}{}", first_index.value(), kSegmentSuffix);
}

WriteAheadLog::WriteAheadLog(FileSystem& fs, std::string directory, WalOptions options)
    : fs_(fs), directory_(std::move(directory)), options_(options) {}

WriteAheadLog::~WriteAheadLog() = default;

Result<std::unique_ptr<WriteAheadLog>> WriteAheadLog::Open(FileSystem& fs, std::string directory,
                                                           WalOptions options) {
  if (options.first_index_of_new_log.value() == 0) {
    return Status::InvalidArgument("the first index of a new log is at least 1");
  }
  std::unique_ptr<WriteAheadLog> log(new WriteAheadLog(fs, std::move(directory), options));
  CAIRN_TRY(log->Recover().WithContext("opening write-ahead log " + log->directory_));
  return log;
}

std::string WriteAheadLog::PathOf(LogIndex first_index) const {
  return JoinPath(directory_, SegmentFileName(first_index));
}

Status WriteAheadLog::Recover() {
  CAIRN_TRY(fs_.CreateDirectory(directory_));
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_.ListDirectory(directory_));
  std::vector<LogIndex> first_indexes;
  for (const std::string& name : names) {
    if (name == kSpareSegmentName) {
      // A spare made before the last stop: it may be incomplete, and it is cheap to make again.
      CAIRN_TRY(fs_.RemoveFile(JoinPath(directory_, name)));
      directory_dirty_ = true;
      continue;
    }
    const bool digits = name.size() == kSegmentNameDigits + kSegmentSuffix.size() &&
                        name.ends_with(kSegmentSuffix) &&
                        std::all_of(name.begin(), name.begin() + kSegmentNameDigits,
                                    [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
      return Status::Corruption(fmt::format(
          "unexpected file '{}' in the log directory: only segment files "
          "(<20 digits>.wal) belong there",
          name));
    }
    first_indexes.emplace_back(std::stoull(name.substr(0, kSegmentNameDigits)));
  }
  std::sort(first_indexes.begin(), first_indexes.end());
  if (options_.preallocation != Preallocation::kOff) {
    preallocator_ = std::make_unique<SegmentPreallocator>(
        fs_, directory_, options_.segment_bytes_target,
        options_.preallocation == Preallocation::kInline ? SegmentPreallocator::Mode::kInline
                                                         : SegmentPreallocator::Mode::kBackground);
  }

  if (first_indexes.empty()) {
    recovery_.created_new_log = true;
    CAIRN_TRY(CreateSegment(options_.first_index_of_new_log, /*sync_now=*/true));
    recovery_.segments = 1;
    last_index_ = options_.first_index_of_new_log.prev();
    durable_index_ = last_index_;
    return Status::Ok();
  }

  for (size_t position = 0; position < first_indexes.size(); ++position) {
    auto segment = std::make_unique<Segment>();
    segment->first_index = first_indexes[position];
    segment->path = PathOf(first_indexes[position]);
    segments_.push_back(std::move(segment));
    TailDamage damage;
    CAIRN_TRY(RecoverSegment(position, position + 1 == first_indexes.size(), &damage));
    if (damage.present) {
      CAIRN_TRY(RepairTornTail(first_indexes, position, damage));
      break;
    }
  }

  // What was read may so far live only in the page cache (a process restart is not a machine
  // restart): make all of it durable before anything built on it is acknowledged.
  for (auto& segment : segments_) {
    CAIRN_ASSIGN_OR_RETURN(segment->writer,
                           fs_.OpenWritable(segment->path, OpenMode::kAppendExisting));
    CAIRN_CHECK(segment->writer->Size() >= segment->size_bytes,
                "a recovered segment's file holds what recovery scanned ({} < {} in {})",
                segment->writer->Size(), segment->size_bytes, segment->path);
    if (segment != segments_.back() && segment->writer->Size() > segment->size_bytes) {
      // A segment sealed just before a crash, still with its padding: cut it to its records.
      CAIRN_TRY(segment->writer->Truncate(segment->size_bytes));
    }
    if (segment == segments_.back()) {
      recovery_.padding_bytes = segment->writer->Size() - segment->size_bytes;
    }
    CAIRN_TRY(segment->writer->Sync());
    if (segment != segments_.back()) {
      CAIRN_TRY(segment->writer->Close());
      segment->writer.reset();
    }
    recovery_.entries += segment->records.size();
  }
  CAIRN_TRY(SyncDirectory());
  recovery_.segments = segments_.size();
  last_index_ = segments_.back()->last_index();
  durable_index_ = last_index_;
  return Status::Ok();
}

Status WriteAheadLog::RepairTornTail(const std::vector<LogIndex>& first_indexes, size_t position,
                                     const TailDamage& damage) {
  Segment& segment = *segments_[position];
  // A torn tail may span segments when one unsynced batch rolled over a segment boundary; the
  // later segments must then hold nothing sound at all.
  for (size_t later = position + 1; later < first_indexes.size(); ++later) {
    const std::string path = PathOf(first_indexes[later]);
    CAIRN_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(fs_, path));
    if (auto sound = FindSoundRecordHeader(data, 0)) {
      return Status::Corruption(fmt::format(
          "{} offset {}: {}, followed by a sound record in {} at offset {}", segment.path,
          damage.offset, damage.what, path, *sound));
    }
  }
  if (!damage.torn) {
    return Status::Corruption(fmt::format(
        "{} offset {}: {} in a complete record that is not zero-filled: a crash cannot tear a "
        "record that way, so it is damage to a record that may have been acknowledged",
        segment.path, damage.offset, damage.what));
  }
  uint64_t dropped = damage.file_bytes - damage.offset;
  for (size_t later = first_indexes.size() - 1; later > position; --later) {
    const std::string path = PathOf(first_indexes[later]);
    CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, fs_.OpenReadable(path));
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
    dropped += size;
    spdlog::warn("{}: removing segment after a torn tail (holds no sound record)", path);
    CAIRN_TRY(fs_.RemoveFile(path));
    CAIRN_TRY(SyncDirectory());
  }
  spdlog::warn("{}: torn tail at offset {} ({}); truncating {} bytes", segment.path,
               damage.offset, damage.what, dropped);
  recovery_.torn_tail_truncated = true;
  recovery_.torn_tail_file = segment.path;
  recovery_.torn_tail_offset = damage.offset;
  recovery_.torn_tail_bytes_dropped = dropped;
  if (damage.offset == 0) {
    // The segment's own header was torn: nothing in it was ever acknowledged. Rewrite it empty.
    CAIRN_ASSIGN_OR_RETURN(auto writer,
                           fs_.OpenWritable(segment.path, OpenMode::kCreateOrTruncate));
    CAIRN_TRY(writer->Append(EncodeSegmentHeader(segment.first_index, /*preallocated=*/false)));
    CAIRN_TRY(writer->Sync());
    CAIRN_TRY(writer->Close());
    segment.records.clear();
    segment.size_bytes = kSegmentHeaderBytes;
    if (position > 0) {
      const LogIndex expected = segments_[position - 1]->last_index().next();
      if (segment.first_index != expected) {
        return Status::Corruption(fmt::format(
            "{}: starts at index {} but the previous segment ends at {}", segment.path,
            segment.first_index, segments_[position - 1]->last_index()));
      }
    }
    return Status::Ok();
  }
  CAIRN_ASSIGN_OR_RETURN(auto writer, fs_.OpenWritable(segment.path, OpenMode::kAppendExisting));
  CAIRN_TRY(writer->Truncate(damage.offset));
  CAIRN_TRY(writer->Sync());
  CAIRN_TRY(writer->Close());
  segment.size_bytes = damage.offset;
  return Status::Ok();
}

Status WriteAheadLog::RecoverSegment(size_t position, bool last, TailDamage* damage) {
  Segment& segment = *segments_[position];
  const std::string& path = segment.path;
  CAIRN_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(fs_, path));
  auto corrupt = [&](uint64_t offset, std::string_view what) {
    return Status::Corruption(fmt::format("{} offset {}: {}", path, offset, what));
  };
  damage->file_bytes = data.size();

  // The segment header.
  const std::string_view header_bytes(data.data(), std::min(data.size(), kSegmentHeaderBytes));
  if (data.size() < kSegmentHeaderBytes || AllZero(header_bytes)) {
    // A crash while creating the segment, if nothing sound follows (RepairTornTail checks); in
    // the last segment, a write over a spare whose first sector did not reach the disk while
    // later ones did (its header is synced with its first records, so nothing after it was).
    const bool interrupted = last && NonZeroEnd(data) <= kUnsyncedBytesMax;
    if (auto sound = FindSoundRecordHeader(data, 0); sound && !interrupted) {
      return corrupt(0, fmt::format("torn segment header followed by a sound record at offset {}",
                                    *sound));
    }
    *damage = {true, 0, "segment header torn by a crash", /*torn=*/true, data.size()};
    return Status::Ok();
  }
  if (std::string_view(data.data(), kSegmentMagic.size()) != kSegmentMagic) {
    return corrupt(0, "not a Cairn log segment (bad magic)");
  }
  const uint32_t version = DecodeFixed32(data.data() + kSegmentVersionOffset);
  if (DecodeFixed32(data.data() + kSegmentHeaderCrcOffset) !=
      crc32c::Value(data.data(), kSegmentHeaderCrcOffset)) {
    return corrupt(0, "segment header checksum mismatch");
  }
  if (version > kFormatVersion) {
    return Status::Unsupported(fmt::format(
        "{}: segment format version {} is newer than this build reads (up to {}); "
        "run a newer Cairn",
        path, version, kFormatVersion));
  }
  if (version == 0) return corrupt(kSegmentVersionOffset, "segment format version 0");
  const uint32_t flags = DecodeFixed32(data.data() + kSegmentFlagsOffset);
  if ((flags & ~kSegmentFlagsKnown) != 0) {
    return Status::Unsupported(fmt::format(
        "{}: segment flags {:#x} include ones this build does not know; run a newer Cairn", path,
        flags));
  }
  segment.preallocated = (flags & kSegmentFlagPreallocated) != 0;
  const LogIndex header_first(DecodeFixed64(data.data() + kSegmentFirstIndexOffset));
  if (header_first != segment.first_index) {
    return corrupt(kSegmentFirstIndexOffset,
                   fmt::format("header says first index {} but the file name says {}",
                               header_first, segment.first_index));
  }
  Generation previous_generation(0);
  if (position > 0) {
    const Segment& previous = *segments_[position - 1];
    const LogIndex expected = previous.last_index().next();
    if (segment.first_index != expected) {
      return Status::Corruption(fmt::format(
          "{}: starts at index {} but the previous segment ends at {}: {}", path,
          segment.first_index, previous.last_index(),
          segment.first_index > expected ? "a gap (a segment is missing)"
                                         : "a repeat (segments overlap)"));
    }
    if (!previous.records.empty()) previous_generation = previous.records.back().generation;
  }

  // The records.
  const uint64_t nonzero_end = NonZeroEnd(data);
  uint64_t offset = kSegmentHeaderBytes;
  LogIndex expected_index = segment.first_index;
  while (offset < nonzero_end) {  // Past nonzero_end lies only padding: the clean end.
    std::string_view bad;  // Why the record at `offset` is unreadable, if it is.
    bool incomplete = false;
    uint64_t bad_end = data.size();
    uint64_t shape_end = offset + kRecordHeaderBytes;  // The bad record's bytes, as far as known.
    bool header_sound = false;
    RecordHeader header{};
    const char* record = data.data() + offset;
    if (data.size() - offset < kRecordHeaderBytes) {
      bad = "incomplete record header";
      incomplete = true;
    } else if (!HeaderChecksumMatches(record)) {
      bad = "record header checksum mismatch";
    } else {
      header = DecodeRecordHeader(record);
      if (header.payload_length > kPayloadBytesMax || header.type == 0 || !header.reserved_zero) {
        return corrupt(offset, "record header has a sound checksum but invalid fields");
      }
      bad_end = offset + RecordBytes(header.payload_length);
      shape_end = bad_end;
      header_sound = true;
      if (bad_end > data.size()) {
        bad = "record extends past the end of the file (partial payload)";
        incomplete = true;
      } else if (!RecordIsSound(record, header.payload_length)) {
        bad = "record checksum mismatch";
      }
    }
    if (bad.empty()) {
      if (header.index != expected_index.value()) {
        return corrupt(offset, fmt::format("record has index {} where {} was expected: {}",
                                           header.index, expected_index,
                                           header.index > expected_index.value() ? "a gap"
                                                                                 : "a repeat"));
      }
      if (Generation(header.generation) < previous_generation) {
        return corrupt(offset, fmt::format("generation goes back from {} to {}",
                                           previous_generation, header.generation));
      }
      previous_generation = Generation(header.generation);
      segment.records.push_back({offset, previous_generation});
      expected_index = expected_index.next();
      offset = bad_end;
      continue;
    }
    // An interrupted write over a preallocated segment (crash rules in the header).
    const bool interrupted =
        last && segment.preallocated && nonzero_end - offset <= kUnsyncedBytesMax &&
        HasRevertedSector(data, offset, shape_end, header_sound, expected_index,
                          previous_generation);
    if (auto later = FindSoundRecordHeader(data, offset + 1)) {
      if (!interrupted) {
        return corrupt(offset,
                       fmt::format("{}, followed by a sound record at offset {}", bad, *later));
      }
      spdlog::warn("{} offset {}: {}, with sound records after it up to offset {}: a write the "
                   "crash interrupted, never synced; they are dropped with it",
                   path, offset, bad, nonzero_end);
    }
    // Cut short by the zeros after it: a write over zeros that stopped inside this record (the
    // preallocated counterpart of a file that ends inside it). A sound record ends in a non-zero
    // trailer, so it never looks like this.
    const bool cut_short = nonzero_end < shape_end;
    *damage = {true, offset, std::string(bad),
               incomplete || cut_short || interrupted || TailIsZeroFilled(data, nonzero_end, offset, shape_end),
               data.size()};
    break;
  }
  segment.size_bytes = offset;
  return Status::Ok();
}

Status WriteAheadLog::CreateSegment(LogIndex first_index, bool sync_now) {
  auto segment = std::make_unique<Segment>();
  segment->first_index = first_index;
  segment->path = PathOf(first_index);
  // Listed before its file exists, so that a failure below is undone by RollBack like the rest.
  segments_.push_back(std::move(segment));
  Segment& created = *segments_.back();
  if (preallocator_) {
    Result<bool> taken = preallocator_->TakeAs(created.path);
    if (!taken.ok()) {
      spdlog::warn("{}: the spare segment could not be renamed into place, a plain one is "
                   "created: {}", created.path, taken.status().ToString());
    }
    created.preallocated = taken.ok() && *taken;
  }
  if (created.preallocated) {
    CAIRN_ASSIGN_OR_RETURN(created.writer,
                           fs_.OpenWritable(created.path, OpenMode::kAppendExisting));
    ++preallocated_segments_;
  } else {
    CAIRN_ASSIGN_OR_RETURN(created.writer, fs_.OpenWritable(created.path, OpenMode::kCreateNew));
  }
  directory_dirty_ = true;
  created.size_bytes = 0;
  CAIRN_TRY(WriteToActive(EncodeSegmentHeader(first_index, created.preallocated)));
  if (sync_now) {
    CAIRN_TRY(created.writer->Sync());
    created.needs_sync = false;
    unsynced_bytes_ = 0;
    CAIRN_TRY(SyncDirectory());
  }
  return Status::Ok();
}

Status WriteAheadLog::WriteToActive(std::string_view bytes) {
  Segment& active = *segments_.back();
  if (unsynced_bytes_ > 0 && unsynced_bytes_ + bytes.size() > kUnsyncedBytesMax) {
    CAIRN_TRY(Sync().status());
  }
  Status written = active.writer->WriteAt(active.size_bytes, bytes);
  if (!written.ok()) return written;
  active.size_bytes += bytes.size();
  active.needs_sync = true;
  unsynced_bytes_ += bytes.size();
  CAIRN_CHECK(unsynced_bytes_ <= kUnsyncedBytesMax,
              "the log never holds more than {} unsynced bytes (has {})", kUnsyncedBytesMax,
              unsynced_bytes_);
  return Status::Ok();
}

bool WriteAheadLog::ShouldRoll() const {
  const Segment& active = *segments_.back();
  if (active.records.empty()) return false;
  if (active.size_bytes >= options_.segment_bytes_target) return true;
  // A plain segment (or a preallocated one written past its zeros) rolls early to a ready spare.
  return preallocator_ && active.writer && active.writer->Size() <= active.size_bytes &&
         preallocator_->ready();
}

Status WriteAheadLog::RemoveSegmentFile(size_t position) {
  // One directory sync per removal: without it the kernel may persist removals in any order, and
  // a crash could then leave a gap in the middle of the log instead of a shorter log.
  Segment& doomed = *segments_[position];
  if (doomed.writer) (void)doomed.writer->Close();
  Status removed = fs_.RemoveFile(doomed.path);
  if (!removed.ok()) return Fail(removed);
  segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(position));
  Status synced = SyncDirectory();
  if (!synced.ok()) return Fail(synced);
  return Status::Ok();
}

Status WriteAheadLog::SyncDirectory() {
  CAIRN_TRY(fs_.SyncDirectory(directory_));
  directory_dirty_ = false;
  return Status::Ok();
}

Status WriteAheadLog::Fail(const Status& cause) {
  if (!failed_) {
    failed_ = true;
    failure_ = cause.ToString();
    spdlog::error("write-ahead log {} stopped for good: {}", directory_, failure_);
  }
  return Status::Failed(fmt::format("write-ahead log {} has failed and accepts no more calls: {}",
                                    directory_, failure_));
}

Status WriteAheadLog::CheckUsable() const {
  if (failed_) {
    return Status::Failed(fmt::format(
        "write-ahead log {} has failed and accepts no more calls: {}", directory_, failure_));
  }
  return Status::Ok();
}

LogIndex WriteAheadLog::first_index() const { return segments_.front()->first_index; }

Generation WriteAheadLog::last_generation() const {
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    if (!(*it)->records.empty()) return (*it)->records.back().generation;
  }
  return Generation(0);
}

WriteAheadLog::Segment& WriteAheadLog::SegmentFor(LogIndex index) {
  CAIRN_CHECK(index >= first_index() && index <= last_index_,
              "index {} lies in the log [{}, {}]", index, first_index(), last_index_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), index,
                             [](LogIndex i, const std::unique_ptr<Segment>& segment) {
                               return i < segment->first_index;
                             });
  CAIRN_CHECK(it != segments_.begin(), "a segment starts at or before index {}", index);
  return **std::prev(it);
}

Generation WriteAheadLog::GenerationAt(LogIndex index) const {
  const Segment& segment = const_cast<WriteAheadLog*>(this)->SegmentFor(index);
  return segment.records[index.value() - segment.first_index.value()].generation;
}

Status WriteAheadLog::Append(std::span<const Entry> entries) {
  CAIRN_TRY(CheckUsable());
  if (entries.empty()) return Status::Ok();
  Generation previous_generation = last_generation();
  LogIndex expected = last_index_.next();
  for (const Entry& entry : entries) {
    CAIRN_CHECK(entry.index == expected, "appended indexes are contiguous (got {}, expected {})",
                entry.index, expected);
    CAIRN_CHECK(entry.generation >= previous_generation,
                "appended generations never go back (got {} after {})", entry.generation,
                previous_generation);
    CAIRN_CHECK(entry.type != 0, "entry type 0 is reserved (index {})", entry.index);
    if (entry.payload.size() > kPayloadBytesMax) {
      return Status::InvalidArgument(fmt::format(
          "entry {} has a {}-byte payload; the most a log entry holds is {} bytes", entry.index,
          entry.payload.size(), kPayloadBytesMax));
    }
    previous_generation = entry.generation;
    expected = expected.next();
  }

  const size_t segments_before = segments_.size();
  const uint64_t active_size_before = segments_.back()->size_bytes;
  const LogIndex last_before = last_index_;
  const uint64_t syncs_before = syncs_;
  std::string buffer;
  size_t next = 0;
  while (next < entries.size()) {
    Segment* active = segments_.back().get();
    if (ShouldRoll()) {
      if (preallocator_ && unsynced_bytes_ > 0) {
        // Only the last segment may hold unsynced bytes: the new segment's name can become
        // durable before the log's own Sync (any journal commit carries the rename), and writes
        // over a spare reach the disk in no order, so a sealed segment with holes would refuse
        // to open.
        Result<LogIndex> synced = Sync();
        if (!synced.ok()) return synced.status();
      }
      // Roll: seal the active segment (it stays open until the next Sync makes it durable).
      Status created = CreateSegment(entries[next].index, /*sync_now=*/false);
      if (!created.ok()) {
        Status undone = RollBack(segments_before, active_size_before, last_before, syncs_before);
        return undone.ok() ? created : undone;
      }
      active = segments_.back().get();
    }
    buffer.clear();
    uint64_t offset = active->size_bytes;
    std::vector<RecordLocation> locations;
    while (next < entries.size() &&
           (locations.empty() ||
            (offset < options_.segment_bytes_target &&
             buffer.size() + RecordBytes(entries[next].payload.size()) <= kWriteBytesMax))) {
      const size_t before = buffer.size();
      EncodeRecord(entries[next], &buffer);
      locations.push_back({offset, entries[next].generation});
      offset += buffer.size() - before;
      ++next;
    }
    Status written = WriteToActive(buffer);
    if (!written.ok()) {
      Status undone = RollBack(segments_before, active_size_before, last_before, syncs_before);
      return undone.ok() ? written : undone;
    }
    CAIRN_CHECK(active->size_bytes == offset, "the records end where they were placed ({} vs {})",
                active->size_bytes, offset);
    active->records.insert(active->records.end(), locations.begin(), locations.end());
    last_index_ = active->last_index();
  }
  return Status::Ok();
}

Status WriteAheadLog::RollBack(size_t segments_before, uint64_t active_size_before,
                               LogIndex last_before, uint64_t syncs_before) {
  // Undo a failed Append: remove the segments it created, cut the partial bytes off the segment
  // that was active. If undoing fails too, the files no longer match memory: stop for good.
  while (segments_.size() > segments_before) {
    Segment& created = *segments_.back();
    if (created.writer) (void)created.writer->Close();
    Status removed = fs_.RemoveFile(created.path);
    if (!removed.ok() && removed.code() != StatusCode::kNotFound) return Fail(removed);
    segments_.pop_back();
  }
  Segment& active = *segments_.back();
  if (!active.writer) {
    // Sealed, then synced and closed by a sync inside the failed Append: active again.
    auto reopened = fs_.OpenWritable(active.path, OpenMode::kAppendExisting);
    if (!reopened.ok()) return Fail(reopened.status());
    active.writer = std::move(reopened).value();
  }
  if (active.writer->Size() != active_size_before) {
    // Also cuts a preallocated segment's zeros (the partial bytes lie among them): it goes on as
    // a plain segment and rolls early to the next spare.
    Status truncated = active.writer->Truncate(active_size_before);
    if (!truncated.ok()) return Fail(truncated);
  }
  while (!active.records.empty() && active.records.back().offset >= active_size_before) {
    active.records.pop_back();
  }
  active.size_bytes = active_size_before;
  last_index_ = last_before;
  if (syncs_ != syncs_before) {
    // Append synced part of the batch (and perhaps a new segment's name) before failing: none of
    // it was reported durable, but it is on disk, so its removal must be too before anything
    // new is written over it.
    Status synced = active.writer->Sync();
    if (!synced.ok()) return Fail(synced);
    active.needs_sync = false;
    synced = SyncDirectory();
    if (!synced.ok()) return Fail(synced);
    durable_index_ = std::min(durable_index_, last_index_);
  }
  return Status::Ok();
}

Result<LogIndex> WriteAheadLog::Sync() {
  CAIRN_TRY(CheckUsable());
  for (auto& segment : segments_) {
    if (!segment->needs_sync) continue;
    if (segment != segments_.back() && segment->writer->Size() > segment->size_bytes) {
      // Sealed: its unused zeros go, in the same fdatasync.
      Status truncated = segment->writer->Truncate(segment->size_bytes);
      if (!truncated.ok()) return Fail(truncated);
    }
    Status synced = segment->writer->Sync();
    if (!synced.ok()) return Fail(synced);
    segment->needs_sync = false;
    if (segment != segments_.back()) {
      // Sealed and durable: no more writes will come to it.
      Status closed = segment->writer->Close();
      if (!closed.ok()) return Fail(closed);
      segment->writer.reset();
    }
  }
  if (directory_dirty_) {
    Status synced = SyncDirectory();
    if (!synced.ok()) return Fail(synced);
  }
  CAIRN_CHECK(!segments_.back()->needs_sync, "after Sync no segment waits for an fdatasync");
  unsynced_bytes_ = 0;
  ++syncs_;
  CAIRN_CHECK(durable_index_ <= last_index_,
              "the durable index never passes the last index ({} > {})", durable_index_,
              last_index_);
  durable_index_ = last_index_;
  return durable_index_;
}

Status WriteAheadLog::TruncateAfter(LogIndex index) {
  CAIRN_TRY(CheckUsable());
  CAIRN_CHECK(index.value() + 1 >= first_index().value(),
              "truncation keeps the entries below the log's first index ({} < {} - 1)", index,
              first_index());
  if (index >= last_index_) return Status::Ok();
  // Make earlier appends durable first, so that every file below is in a known state.
  CAIRN_TRY(Sync().status());
  // Delete later segments, newest first, so a crash leaves a prefix of the segments; then make
  // the deletions durable before cutting the remaining file, or a crash could leave a gap.
  while (segments_.size() > 1 && segments_.back()->first_index > index) {
    CAIRN_TRY(RemoveSegmentFile(segments_.size() - 1));
  }
  Segment& active = *segments_.back();
  const size_t kept = index < active.first_index ? 0 : index.value() - active.first_index.value() + 1;
  const uint64_t new_size = kept < active.records.size() ? active.records[kept].offset : active.size_bytes;
  if (!active.writer) {
    auto writer = fs_.OpenWritable(active.path, OpenMode::kAppendExisting);
    if (!writer.ok()) return Fail(writer.status());
    active.writer = std::move(writer).value();
  }
  Status truncated = active.writer->Truncate(new_size);
  if (!truncated.ok()) return Fail(truncated);
  Status synced = active.writer->Sync();
  if (!synced.ok()) return Fail(synced);
  active.records.resize(kept);
  active.size_bytes = new_size;
  active.needs_sync = false;
  last_index_ = index;
  durable_index_ = std::min(durable_index_, index);
  CAIRN_CHECK(last_index_ == active.last_index(), "after truncation the active segment ends the log");
  return Status::Ok();
}

Status WriteAheadLog::Reset(LogIndex next_index) {
  CAIRN_TRY(CheckUsable());
  CAIRN_CHECK(next_index.value() >= 1, "a log's next index is at least 1");
  CAIRN_TRY(Sync().status());  // As in RemoveSegmentsThrough: no durable name without its data.
  // Newest first, so a crash midway leaves a prefix that the owner recognises as stale against
  // its snapshot and resets again.
  while (!segments_.empty()) CAIRN_TRY(RemoveSegmentFile(segments_.size() - 1));
  Status created = CreateSegment(next_index, /*sync_now=*/true);
  if (!created.ok()) return Fail(created);
  last_index_ = next_index.prev();
  durable_index_ = last_index_;
  return Status::Ok();
}

Result<uint64_t> WriteAheadLog::RemoveSegmentsThrough(LogIndex index) {
  CAIRN_TRY(CheckUsable());
  // Directory syncs below would make the names of segments created since the last Sync durable
  // before their data: sync first, so every name made durable has durable data behind it.
  CAIRN_TRY(Sync().status());
  uint64_t removed_count = 0;
  // Oldest first, so a crash midway leaves a suffix: a log that simply starts later.
  while (segments_.size() > 1 && !segments_.front()->records.empty() &&
         segments_.front()->last_index() <= index) {
    CAIRN_TRY(RemoveSegmentFile(0));
    ++removed_count;
  }
  return removed_count;
}

Result<std::vector<Entry>> WriteAheadLog::Read(LogIndex from, LogIndex to, uint64_t bytes_max) {
  CAIRN_TRY(CheckUsable());
  CAIRN_CHECK(from <= to, "a read range is not empty ({} > {})", from, to);
  CAIRN_CHECK(from >= first_index() && to <= last_index_, "reads stay in [{}, {}] (asked {}..{})",
              first_index(), last_index_, from, to);
  std::vector<Entry> entries;
  uint64_t payload_bytes = 0;
  LogIndex index = from;
  std::string buffer;
  while (index <= to && (entries.empty() || payload_bytes < bytes_max)) {
    Segment& segment = SegmentFor(index);
    if (!segment.reader) {
      CAIRN_ASSIGN_OR_RETURN(segment.reader, fs_.OpenReadable(segment.path));
    }
    const size_t first = index.value() - segment.first_index.value();
    const size_t last = std::min<uint64_t>(to.value(), segment.last_index().value()) -
                        segment.first_index.value();
    const uint64_t begin = segment.records[first].offset;
    const uint64_t end = segment.RecordEnd(last);
    buffer.resize(end - begin);
    CAIRN_ASSIGN_OR_RETURN(size_t read, segment.reader->ReadAt(begin, buffer.size(), buffer.data()));
    if (read != buffer.size()) {
      return Status::Corruption(fmt::format("{}: short read at offset {} ({} of {} bytes)",
                                            segment.path, begin, read, buffer.size()));
    }
    for (size_t position = first; position <= last; ++position) {
      if (!entries.empty() && payload_bytes >= bytes_max) break;
      const char* record = buffer.data() + (segment.records[position].offset - begin);
      const RecordHeader header = DecodeRecordHeader(record);
      const uint64_t record_bytes = segment.RecordEnd(position) - segment.records[position].offset;
      if (!HeaderChecksumMatches(record) || RecordBytes(header.payload_length) != record_bytes ||
          !RecordIsSound(record, header.payload_length) || header.index != index.value()) {
        return Status::Corruption(fmt::format("{} offset {}: record {} failed its checksum on read",
                                              segment.path, segment.records[position].offset,
                                              index));
      }
      entries.push_back(Entry{index, Generation(header.generation), header.type,
                              std::string(record + kRecordHeaderBytes, header.payload_length)});
      payload_bytes += header.payload_length;
      index = index.next();
    }
  }
  return entries;
}

std::vector<SegmentInfo> WriteAheadLog::Segments() const {
  std::vector<SegmentInfo> infos;
  for (const auto& segment : segments_) {
    infos.push_back({SegmentFileName(segment->first_index), segment->first_index,
                     segment->last_index(), segment->size_bytes});
  }
  return infos;
}

}  // namespace cairn::wal
