#include "wal/write_ahead_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/crc32c.h"

#include "storage/posix_file_system.h"
#include "storage/sim_file_system.h"
#include "storage/temp_directory.h"
#include "wal/log_format.h"

namespace cairn::wal {
namespace {

constexpr const char* kDir = "/data/wal";

Entry MakeEntry(uint64_t index, uint64_t generation, std::string payload) {
  return Entry{LogIndex(index), Generation(generation), 1, std::move(payload)};
}

std::string PayloadFor(uint64_t index) { return "entry-" + std::to_string(index); }

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDirectory("/data").ok()); }

  std::unique_ptr<WriteAheadLog> Open(WalOptions options = {}) {
    auto log = WriteAheadLog::Open(fs_, kDir, options);
    CAIRN_CHECK(log.ok(), "the log opens: {}", log.status().ToString());
    return std::move(log).value();
  }
  Status TryOpen(WalOptions options = {}) { return WriteAheadLog::Open(fs_, kDir, options).status(); }

  // Appends entries [from, to] with generation 1 and syncs them.
  void AppendRange(WriteAheadLog& log, uint64_t from, uint64_t to, uint64_t generation = 1) {
    std::vector<Entry> entries;
    for (uint64_t index = from; index <= to; ++index) {
      entries.push_back(MakeEntry(index, generation, PayloadFor(index)));
    }
    ASSERT_TRUE(log.Append(entries).ok());
    ASSERT_EQ(LogIndex(to), log.Sync().value());
  }

  void ExpectEntries(WriteAheadLog& log, uint64_t from, uint64_t to) {
    ASSERT_EQ(LogIndex(from), log.first_index());
    ASSERT_EQ(LogIndex(to), log.last_index());
    if (to < from) return;
    auto entries = log.Read(LogIndex(from), LogIndex(to));
    ASSERT_TRUE(entries.ok()) << entries.status().ToString();
    ASSERT_EQ(to - from + 1, entries->size());
    for (uint64_t index = from; index <= to; ++index) {
      const Entry& entry = (*entries)[index - from];
      EXPECT_EQ(LogIndex(index), entry.index);
      EXPECT_EQ(PayloadFor(index), entry.payload);
    }
  }

  std::string SegmentPath(uint64_t first_index) {
    return std::string(kDir) + "/" + SegmentFileName(LogIndex(first_index));
  }

  SimFileSystem fs_{11};
};

TEST_F(WalTest, NewLogIsEmptyAtIndexOne) {
  auto log = Open();
  EXPECT_TRUE(log->empty());
  EXPECT_EQ(LogIndex(1), log->first_index());
  EXPECT_EQ(LogIndex(0), log->last_index());
  EXPECT_TRUE(log->recovery().created_new_log);
  EXPECT_EQ(1u, log->Segments().size());
}

TEST_F(WalTest, AppendSyncReopenReadsBack) {
  {
    auto log = Open();
    AppendRange(*log, 1, 50);
    EXPECT_EQ(LogIndex(50), log->durable_index());
  }
  fs_.Crash(TearMode::kNone);
  auto log = Open();
  ExpectEntries(*log, 1, 50);
  EXPECT_FALSE(log->recovery().torn_tail_truncated);
}

TEST_F(WalTest, AppendIsNotDurableUntilSync) {
  auto log = Open();
  AppendRange(*log, 1, 3);
  ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(4, 1, "x")}).ok());
  EXPECT_EQ(LogIndex(4), log->last_index());
  EXPECT_EQ(LogIndex(3), log->durable_index());
  EXPECT_EQ("x", log->Read(LogIndex(4), LogIndex(4)).value()[0].payload) << "readable at once";
  fs_.Crash(TearMode::kNone);
  ExpectEntries(*Open(), 1, 3);
}

TEST_F(WalTest, EmptyPayload) {
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(1, 1, "")}).ok());
    ASSERT_TRUE(log->Sync().ok());
  }
  fs_.Crash(TearMode::kNone);
  auto log = Open();
  auto entries = log->Read(LogIndex(1), LogIndex(1)).value();
  ASSERT_EQ(1u, entries.size());
  EXPECT_EQ("", entries[0].payload);
}

TEST_F(WalTest, LargestPayload) {
  const std::string largest(kPayloadBytesMax, 'L');
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(1, 1, largest)}).ok());
    Status too_big = log->Append(std::vector<Entry>{MakeEntry(2, 1, largest + "!")});
    EXPECT_EQ(StatusCode::kInvalidArgument, too_big.code());
    EXPECT_NE(std::string::npos, too_big.message().find("16777217-byte payload")) << too_big.ToString();
    ASSERT_TRUE(log->Sync().ok());
    EXPECT_EQ(LogIndex(1), log->last_index());
  }
  fs_.Crash(TearMode::kNone);
  auto log = Open();
  EXPECT_EQ(largest, log->Read(LogIndex(1), LogIndex(1)).value()[0].payload);
}

TEST_F(WalTest, EntryExactlyAtSegmentBoundary) {
  // Each record is RecordBytes(7) ("entry-N" for one-digit N); a segment of header + 2 records is
  // exactly full, so the third entry must start a new segment.
  const uint64_t record_bytes = RecordBytes(PayloadFor(1).size());
  WalOptions options;
  options.segment_bytes_target = kSegmentHeaderBytes + 2 * record_bytes;
  {
    auto log = Open(options);
    AppendRange(*log, 1, 2);
    ASSERT_EQ(1u, log->Segments().size());
    EXPECT_EQ(options.segment_bytes_target, log->Segments()[0].size_bytes);
    AppendRange(*log, 3, 3);
    ASSERT_EQ(2u, log->Segments().size());
    EXPECT_EQ(LogIndex(3), log->Segments()[1].first_index);
  }
  fs_.Crash(TearMode::kNone);
  auto log = Open(options);
  ExpectEntries(*log, 1, 3);
  EXPECT_EQ(2u, log->Segments().size());
}

TEST_F(WalTest, OneBatchSpanningSeveralSegments) {
  WalOptions options;
  options.segment_bytes_target = 200;
  {
    auto log = Open(options);
    AppendRange(*log, 1, 40);
    EXPECT_GT(log->Segments().size(), 5u);
  }
  fs_.Crash(TearMode::kNone);
  ExpectEntries(*Open(options), 1, 40);
}

TEST_F(WalTest, PartialHeaderIsTornTail) {
  { AppendRange(*Open(), 1, 5); }
  std::string bytes = fs_.RawContents(SegmentPath(1));
  bytes += std::string(kRecordHeaderBytes - 5, '\x7f');  // A record header cut short.
  fs_.SetRawContents(SegmentPath(1), bytes);
  auto log = Open();
  ExpectEntries(*log, 1, 5);
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
  EXPECT_EQ(kRecordHeaderBytes - 5, log->recovery().torn_tail_bytes_dropped);
  AppendRange(*log, 6, 7);
  fs_.Crash(TearMode::kNone);
  ExpectEntries(*Open(), 1, 7);
}

TEST_F(WalTest, PartialPayloadIsTornTail) {
  { AppendRange(*Open(), 1, 5); }
  const std::string intact = fs_.RawContents(SegmentPath(1));
  { AppendRange(*Open(), 6, 6); }
  const std::string full = fs_.RawContents(SegmentPath(1));
  fs_.SetRawContents(SegmentPath(1), full.substr(0, full.size() - 3));  // Payload cut short.
  auto log = Open();
  ExpectEntries(*log, 1, 5);
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
  EXPECT_EQ(intact.size(), log->recovery().torn_tail_offset);
  fs_.Crash(TearMode::kNone);
  EXPECT_EQ(intact, fs_.RawContents(SegmentPath(1))) << "the truncation itself was made durable";
}

TEST_F(WalTest, BadCrcInTornTailIsTruncated) {
  // The file's new length reached the disk but the last record's bytes did not: they read back as
  // zeros from a sector boundary to the end. That is a torn append, not damage.
  { AppendRange(*Open(), 1, 3); }
  const std::string intact = fs_.RawContents(SegmentPath(1));
  {
    auto log = Open();
    ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(4, 1, std::string(1000, 'z'))}).ok());
    ASSERT_TRUE(log->Sync().ok());
  }
  std::string bytes = fs_.RawContents(SegmentPath(1));
  ASSERT_LT(intact.size(), 512u);
  ASSERT_GT(bytes.size(), 1024u);
  bytes.replace(512, bytes.size() - 512, bytes.size() - 512, '\0');  // Sectors 2.. never written.
  fs_.SetRawContents(SegmentPath(1), bytes);
  auto log = Open();
  ExpectEntries(*log, 1, 3);
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
}

TEST_F(WalTest, FlippedBitInLastCompleteRecordRefusesToOpen) {
  // A complete last record with a bad checksum cannot come from a torn append; it may have been
  // acknowledged, so it is reported, never dropped.
  { AppendRange(*Open(), 1, 4); }
  const uint64_t size = fs_.RawContents(SegmentPath(1)).size();
  fs_.FlipBit(SegmentPath(1), size - 2, 4);
  Status status = TryOpen();
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find(SegmentPath(1))) << status.ToString();
  EXPECT_NE(std::string::npos, status.message().find("record checksum mismatch")) << status.ToString();
}

TEST_F(WalTest, DamagedLengthInLastRecordRefusesToOpen) {
  // A flipped bit in the length field would make the record look cut short; the header checksum
  // catches it.
  { AppendRange(*Open(), 1, 3); }
  const std::string intact = fs_.RawContents(SegmentPath(1));
  { AppendRange(*Open(), 4, 4); }
  fs_.FlipBit(SegmentPath(1), intact.size() + kRecordLengthOffset, 6);
  EXPECT_EQ(StatusCode::kCorruption, TryOpen().code());
}

TEST_F(WalTest, BadCrcMidLogRefusesToOpen) {
  { AppendRange(*Open(), 1, 10); }
  fs_.FlipBit(SegmentPath(1), kSegmentHeaderBytes + kRecordHeaderBytes + 2, 0);  // Entry 1's payload.
  Status status = TryOpen();
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("offset 32")) << status.ToString();
  EXPECT_NE(std::string::npos, status.message().find("followed by a sound record"))
      << status.ToString();
}

TEST_F(WalTest, BadRecordInSealedSegmentRefusesToOpen) {
  WalOptions options;
  options.segment_bytes_target = 150;
  { AppendRange(*Open(options), 1, 12); }
  // Damage the last record of the first (sealed) segment.
  const uint64_t size = fs_.RawContents(SegmentPath(1)).size();
  fs_.FlipBit(SegmentPath(1), size - 1, 2);
  Status status = TryOpen(options);
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("followed by a sound record in"))
      << status.ToString();
}

TEST_F(WalTest, IndexGapRefusesToOpen) {
  WalOptions options;
  options.segment_bytes_target = 150;
  std::vector<SegmentInfo> segments;
  {
    auto log = Open(options);
    AppendRange(*log, 1, 12);
    segments = log->Segments();
  }
  ASSERT_GE(segments.size(), 3u);
  ASSERT_TRUE(fs_.RemoveFile(std::string(kDir) + "/" + segments[1].file_name).ok());  // A missing segment.
  Status status = TryOpen(options);
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("a gap")) << status.ToString();
}

TEST_F(WalTest, RepeatedSegmentRefusesToOpen) {
  WalOptions options;
  options.segment_bytes_target = 150;
  std::vector<SegmentInfo> segments;
  {
    auto log = Open(options);
    AppendRange(*log, 1, 12);
    segments = log->Segments();
  }
  ASSERT_GE(segments.size(), 2u);
  // A copy of the first segment under a later name: its header then disagrees with its name.
  // A copy whose header agrees, but overlaps the previous segment, is a repeat.
  const uint64_t overlap_first = segments[0].last_index.value();
  SimFileSystem scratch(1);
  ASSERT_TRUE(scratch.CreateDirectory("/w").ok());
  {
    auto other = WriteAheadLog::Open(scratch, "/w", {.segment_bytes_target = 1 << 20,
                                                     .first_index_of_new_log = LogIndex(overlap_first)})
                     .value();
    ASSERT_TRUE(other->Append(std::vector<Entry>{MakeEntry(overlap_first, 1, "dup")}).ok());
    ASSERT_TRUE(other->Sync().ok());
  }
  fs_.SetRawContents(SegmentPath(overlap_first),
                     scratch.RawContents("/w/" + SegmentFileName(LogIndex(overlap_first))));
  Status status = TryOpen(options);
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("a repeat")) << status.ToString();
}

TEST_F(WalTest, SegmentHeaderDisagreeingWithNameRefusesToOpen) {
  { AppendRange(*Open(), 1, 3); }
  fs_.SetRawContents(SegmentPath(4), fs_.RawContents(SegmentPath(1)));
  Status status = TryOpen();
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("file name says 4")) << status.ToString();
}

TEST_F(WalTest, SegmentOfNewerFormatVersionIsUnsupported) {
  { AppendRange(*Open(), 1, 3); }
  std::string bytes = fs_.RawContents(SegmentPath(1));
  bytes[kSegmentVersionOffset] = 2;
  const uint32_t crc = crc32c::Value(bytes.data(), kSegmentHeaderCrcOffset);
  std::memcpy(bytes.data() + kSegmentHeaderCrcOffset, &crc, 4);
  fs_.SetRawContents(SegmentPath(1), bytes);
  Status status = TryOpen();
  EXPECT_EQ(StatusCode::kUnsupported, status.code());
  EXPECT_NE(std::string::npos, status.message().find("format version 2 is newer")) << status.ToString();
}

TEST_F(WalTest, ForeignFileInLogDirectoryRefusesToOpen) {
  { AppendRange(*Open(), 1, 3); }
  fs_.SetRawContents(std::string(kDir) + "/notes.txt", "hello");
  Status status = TryOpen();
  EXPECT_EQ(StatusCode::kCorruption, status.code());
  EXPECT_NE(std::string::npos, status.message().find("notes.txt")) << status.ToString();
}

TEST_F(WalTest, TornSegmentHeaderOfLastSegmentIsRewritten) {
  WalOptions options;
  options.segment_bytes_target = 150;
  { AppendRange(*Open(options), 1, 5); }
  auto segments = Open(options)->Segments();
  const LogIndex next = segments.back().last_index.next();
  // A crash while creating the next segment: its header never fully reached the disk.
  fs_.SetRawContents(SegmentPath(next.value()), std::string(10, '\0'));
  auto log = Open(options);
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
  ExpectEntries(*log, 1, 5);
  AppendRange(*log, 6, 8);
  fs_.Crash(TearMode::kNone);
  ExpectEntries(*Open(options), 1, 8);
}

TEST_F(WalTest, TruncateAcrossSegmentBoundary) {
  WalOptions options;
  options.segment_bytes_target = 150;
  {
    auto log = Open(options);
    AppendRange(*log, 1, 20);
    const auto before = log->Segments();
    ASSERT_GE(before.size(), 4u);
    // Truncate to the middle of the second segment: later segments go, the second is cut.
    const uint64_t keep = before[1].first_index.value();
    ASSERT_TRUE(log->TruncateAfter(LogIndex(keep)).ok());
    EXPECT_EQ(LogIndex(keep), log->last_index());
    EXPECT_EQ(2u, log->Segments().size());
    // Conflicting entries replaced with a newer generation.
    std::vector<Entry> replacement;
    for (uint64_t index = keep + 1; index <= 20; ++index) {
      replacement.push_back(MakeEntry(index, 2, PayloadFor(index)));
    }
    ASSERT_TRUE(log->Append(replacement).ok());
    ASSERT_TRUE(log->Sync().ok());
    EXPECT_EQ(Generation(2), log->GenerationAt(LogIndex(20)));
  }
  fs_.Crash(TearMode::kNone);
  auto log = Open(options);
  ExpectEntries(*log, 1, 20);
  EXPECT_EQ(Generation(1), log->GenerationAt(LogIndex(2)));
  EXPECT_EQ(Generation(2), log->GenerationAt(LogIndex(20)));
}

TEST_F(WalTest, TruncateToEmptyKeepsFirstIndex) {
  auto log = Open();
  AppendRange(*log, 1, 5);
  ASSERT_TRUE(log->TruncateAfter(LogIndex(0)).ok());
  EXPECT_TRUE(log->empty());
  fs_.Crash(TearMode::kNone);
  auto reopened = Open();
  EXPECT_TRUE(reopened->empty());
  EXPECT_EQ(LogIndex(1), reopened->first_index());
}

TEST_F(WalTest, ResetStartsEmptyAtNextIndex) {
  {
    auto log = Open({.segment_bytes_target = 150});
    AppendRange(*log, 1, 20);
    ASSERT_TRUE(log->Reset(LogIndex(101)).ok());
    EXPECT_TRUE(log->empty());
    EXPECT_EQ(LogIndex(101), log->first_index());
  }
  fs_.Crash(TearMode::kNone);
  auto log = Open();
  EXPECT_EQ(LogIndex(101), log->first_index());
  EXPECT_EQ(1u, log->Segments().size());
  AppendRange(*log, 101, 103);
  EXPECT_EQ(PayloadFor(102), log->Read(LogIndex(102), LogIndex(102)).value()[0].payload);
}

TEST_F(WalTest, ReadStopsAtBytesMaxButReturnsAtLeastOne) {
  auto log = Open({.segment_bytes_target = 150});
  AppendRange(*log, 1, 30);
  EXPECT_EQ(1u, log->Read(LogIndex(1), LogIndex(30), 1).value().size());
  const uint64_t three_payloads = 3 * PayloadFor(1).size();
  EXPECT_EQ(3u, log->Read(LogIndex(1), LogIndex(9), three_payloads).value().size());
  auto all = log->Read(LogIndex(5), LogIndex(30)).value();
  ASSERT_EQ(26u, all.size());
  EXPECT_EQ(LogIndex(30), all.back().index);
}

TEST_F(WalTest, NoSpaceOnAppendLeavesLogConsistent) {
  auto log = Open();
  AppendRange(*log, 1, 5);
  fs_.SetSpaceLimitBytes(fs_.RawContents(SegmentPath(1)).size() + 50);  // Room for a partial record.
  std::vector<Entry> entries = {MakeEntry(6, 1, std::string(40, 'a')),
                                MakeEntry(7, 1, std::string(40, 'b'))};
  Status status = log->Append(entries);
  EXPECT_EQ(StatusCode::kNoSpace, status.code());
  EXPECT_NE(std::string::npos, status.message().find("No space left on device")) << status.ToString();
  EXPECT_EQ(LogIndex(5), log->last_index()) << "all or nothing";
  EXPECT_FALSE(log->failed()) << "a failed write is undone, not fatal";
  ASSERT_TRUE(log->Sync().ok());
  fs_.SetSpaceLimitBytes(std::nullopt);
  AppendRange(*log, 6, 7);
  fs_.Crash(TearMode::kAnyByte);
  auto reopened = Open();
  ExpectEntries(*reopened, 1, 7);
  EXPECT_FALSE(reopened->recovery().torn_tail_truncated) << "no partial record is visible";
}

TEST_F(WalTest, NoSpaceWhileRollingSegmentLeavesLogConsistent) {
  WalOptions options;
  options.segment_bytes_target = 100;
  auto log = Open(options);
  AppendRange(*log, 1, 2);
  fs_.SetSpaceLimitBytes(fs_.RawContents(SegmentPath(1)).size() + 20);
  std::vector<Entry> entries;
  for (uint64_t index = 3; index <= 8; ++index) entries.push_back(MakeEntry(index, 1, PayloadFor(index)));
  EXPECT_EQ(StatusCode::kNoSpace, log->Append(entries).code());
  EXPECT_EQ(LogIndex(2), log->last_index());
  fs_.SetSpaceLimitBytes(std::nullopt);
  fs_.Crash(TearMode::kAnyByte);
  ExpectEntries(*Open(options), 1, 2);
}

TEST_F(WalTest, FsyncFailureIsFinal) {
  auto log = Open();
  AppendRange(*log, 1, 2);
  ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(3, 1, "x")}).ok());
  fs_.SetFailSyncs(true);
  auto synced = log->Sync();
  EXPECT_EQ(StatusCode::kFailed, synced.status().code());
  EXPECT_NE(std::string::npos, synced.status().message().find("fdatasync")) << synced.status().ToString();
  fs_.SetFailSyncs(false);
  EXPECT_TRUE(log->failed());
  EXPECT_EQ(StatusCode::kFailed, log->Sync().status().code()) << "never retried";
  EXPECT_EQ(StatusCode::kFailed, log->Append(std::vector<Entry>{MakeEntry(4, 1, "y")}).code());
  EXPECT_EQ(StatusCode::kFailed, log->TruncateAfter(LogIndex(1)).code());
  EXPECT_EQ(LogIndex(2), log->durable_index()) << "nothing reported durable after the failure";
}

TEST_F(WalTest, PermissionDeniedOnOpen) {
  fs_.DenyPermission(kDir);
  Status status = TryOpen();
  EXPECT_EQ(StatusCode::kPermissionDenied, status.code());
  EXPECT_NE(std::string::npos, status.message().find("Permission denied")) << status.ToString();
}

TEST_F(WalTest, ReopenAfterEveryEdgeCaseKeepsAppending) {
  WalOptions options;
  options.segment_bytes_target = 120;
  uint64_t last = 0;
  for (int round = 0; round < 6; ++round) {
    auto log = Open(options);
    ExpectEntries(*log, 1, last);
    AppendRange(*log, last + 1, last + 7);
    last += 7;
    if (round % 2 == 1) {
      ASSERT_TRUE(log->TruncateAfter(LogIndex(last - 3)).ok());
      last -= 3;
    }
    fs_.Crash(TearMode::kSectorPrefix);
  }
}

TEST_F(WalTest, RealFileSystemRoundTrip) {
  TempDirectory dir;
  PosixFileSystem fs;
  {
    auto log = WriteAheadLog::Open(fs, dir.Join("wal"), {.segment_bytes_target = 4096}).value();
    std::vector<Entry> entries;
    for (uint64_t index = 1; index <= 500; ++index) entries.push_back(MakeEntry(index, 1, PayloadFor(index)));
    ASSERT_TRUE(log->Append(entries).ok());
    ASSERT_EQ(LogIndex(500), log->Sync().value());
    ASSERT_TRUE(log->TruncateAfter(LogIndex(321)).ok());
  }
  auto log = WriteAheadLog::Open(fs, dir.Join("wal"), {.segment_bytes_target = 4096}).value();
  EXPECT_EQ(LogIndex(321), log->last_index());
  auto entries = log->Read(LogIndex(1), LogIndex(321)).value();
  ASSERT_EQ(321u, entries.size());
  EXPECT_EQ(PayloadFor(300), entries[299].payload);
}

TEST_F(WalTest, SegmentFileNameCarriesFirstIndex) {
  EXPECT_EQ("00000000000000000001.wal", SegmentFileName(LogIndex(1)));
  EXPECT_EQ("18446744073709551615.wal", SegmentFileName(LogIndex(UINT64_MAX)));
}

TEST_F(WalTest, NonContiguousAppendCrashes) {
  auto log = Open();
  AppendRange(*log, 1, 2);
  EXPECT_DEATH((void)log->Append(std::vector<Entry>{MakeEntry(4, 1, "gap")}),
               "appended indexes are contiguous");
}

TEST_F(WalTest, GenerationGoingBackCrashes) {
  auto log = Open();
  AppendRange(*log, 1, 2, /*generation=*/3);
  EXPECT_DEATH((void)log->Append(std::vector<Entry>{MakeEntry(3, 2, "old")}),
               "appended generations never go back");
}


// --- Preallocated segments ------------------------------------------------------------------

uint64_t NonZeroEndForTest(const std::string& bytes) {
  uint64_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == 0) --end;
  return end;
}

class PreallocatedWalTest : public WalTest {
 protected:
  static WalOptions Preallocated(uint64_t segment_bytes = 2048) {
    return {.segment_bytes_target = segment_bytes,
            .first_index_of_new_log = LogIndex(1),
            .preallocation = Preallocation::kInline};
  }
  uint64_t FileBytes(const std::string& path) { return fs_.RawContents(path).size(); }
  std::string SparePath() { return std::string(kDir) + "/" + std::string(kSpareSegmentName); }
};

TEST_F(PreallocatedWalTest, SegmentsAreWrittenOverSparesAndCutWhenSealed) {
  auto log = Open(Preallocated());
  EXPECT_EQ(1u, log->preallocated_segments()) << "even the first segment is a spare";
  AppendRange(*log, 1, 3);
  EXPECT_EQ(2048u, FileBytes(SegmentPath(1))) << "the active segment keeps its zeros";
  EXPECT_EQ(2048u, FileBytes(SparePath())) << "the next spare waits";
  for (uint64_t index = 4; index <= 200; index += 10) AppendRange(*log, index, index + 9);
  const auto segments = log->Segments();
  ASSERT_GT(segments.size(), 3u);
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    EXPECT_EQ(segments[i].size_bytes, FileBytes(SegmentPath(segments[i].first_index.value())))
        << "a sealed segment is cut to its records";
  }
  EXPECT_EQ(2048u, FileBytes(SegmentPath(segments.back().first_index.value())));
  EXPECT_EQ(segments.size(), log->preallocated_segments());
  ExpectEntries(*log, 1, 203);
}

TEST_F(PreallocatedWalTest, PaddingIsTheCleanEndAndIsWrittenOverAfterReopen) {
  { AppendRange(*Open(Preallocated(1 << 16)), 1, 20); }
  {
    auto log = Open(Preallocated(1 << 16));
    EXPECT_FALSE(log->recovery().torn_tail_truncated);
    EXPECT_GT(log->recovery().padding_bytes, 60'000u);
    EXPECT_EQ(1u, log->Segments().size());
    ExpectEntries(*log, 1, 20);
    AppendRange(*log, 21, 40);
    EXPECT_EQ(1u, log->Segments().size()) << "the padding is used, not a new segment";
    ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(41, 1, "never synced")}).ok());
  }
  fs_.Crash(TearMode::kNone);  // The unsynced write over the padding reverts to zeros.
  ExpectEntries(*Open(Preallocated(1 << 16)), 1, 40);
  ExpectEntries(*Open(), 1, 40);  // Without preallocation the padded segment reads the same.
}

TEST_F(PreallocatedWalTest, LeftoverSpareIsRemovedAtOpen) {
  { AppendRange(*Open(), 1, 3); }
  fs_.SetRawContents(SparePath(), std::string(100, '\0'));  // A spare cut short by a crash.
  auto log = Open();
  EXPECT_EQ(FileKind::kMissing, fs_.Stat(SparePath()).value());
  ExpectEntries(*log, 1, 3);
}

TEST_F(PreallocatedWalTest, HoleInAnUnsyncedWriteDropsTheSoundRecordsAfterIt) {
  auto log = Open(Preallocated(1 << 16));
  AppendRange(*log, 1, 5);
  const uint64_t synced_end = log->Segments().back().size_bytes;
  std::vector<Entry> entries;
  for (uint64_t index = 6; index <= 60; ++index) {
    entries.push_back(MakeEntry(index, 1, std::string(100, static_cast<char>('a' + index % 26))));
  }
  ASSERT_TRUE(log->Append(entries).ok());
  const uint64_t written_end = log->Segments().back().size_bytes;
  // The crash image: writeback wrote the unsynced region's sectors out of order, and one in the
  // middle never made it (it reads as the spare's zeros). Records after it are sound.
  std::string bytes = fs_.RawContents(SegmentPath(1));
  log.reset();
  const uint64_t hole = (synced_end / 512 + 2) * 512;
  ASSERT_LT(hole + 512, written_end);
  bytes.replace(hole, 512, 512, '\0');
  fs_.SetRawContents(SegmentPath(1), bytes);
  log = Open(Preallocated(1 << 16));
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
  EXPECT_GE(log->last_index(), LogIndex(5));
  EXPECT_LT(log->last_index(), LogIndex(60));
  EXPECT_LT(log->recovery().torn_tail_offset, hole + 512);
  EXPECT_GE(log->recovery().torn_tail_offset, synced_end);
  auto read = log->Read(LogIndex(1), log->last_index());
  ASSERT_TRUE(read.ok());
  for (const Entry& entry : *read) {
    if (entry.index.value() > 5) {
      EXPECT_EQ(entries[entry.index.value() - 6], entry);
    }
  }
}

TEST_F(PreallocatedWalTest, HoleFarBeforeTheEndIsDamageNotATornWrite) {
  // The same hole, with sound records further after it than the log ever leaves unsynced:
  // those were synced, so the hole is damage, reported, never dropped.
  { AppendRange(*Open(Preallocated(1 << 16)), 1, 40); }
  std::string bytes = fs_.RawContents(SegmentPath(1));
  const uint64_t hole = 1024;
  bytes.replace(hole, 512, 512, '\0');
  const uint64_t end = NonZeroEndForTest(bytes);
  // Move the records after the hole's record far away: pad with zeros up to the window, then the
  // original tail (records from the hole's sector on stay sound; indexes no longer matter, as
  // recovery refuses at the first bad record).
  std::string far = bytes.substr(0, hole + 512) + std::string(kUnsyncedBytesMax, '\0') +
                    bytes.substr(hole + 512, end - hole - 512);
  fs_.SetRawContents(SegmentPath(1), far);
  Status status = TryOpen(Preallocated(1 << 16));
  EXPECT_EQ(StatusCode::kCorruption, status.code()) << status.ToString();
  EXPECT_NE(std::string::npos, status.message().find("followed by a sound record"))
      << status.ToString();
  // Near the end, the very same hole is a torn write.
  fs_.SetRawContents(SegmentPath(1), bytes);
  auto log = Open(Preallocated(1 << 16));
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
  EXPECT_LE(log->recovery().torn_tail_offset, hole);
  EXPECT_LT(log->last_index(), LogIndex(40));
}

TEST_F(PreallocatedWalTest, HoleInASealedSegmentIsDamage) {
  { AppendRange(*Open(Preallocated(1024)), 1, 60); }
  auto log = Open(Preallocated(1024));
  ASSERT_GT(log->Segments().size(), 2u);
  const std::string first = SegmentPath(1);
  log.reset();
  std::string bytes = fs_.RawContents(first);
  ASSERT_GT(bytes.size(), 1000u);
  bytes.replace(512, 256, 256, '\0');
  fs_.SetRawContents(first, bytes);
  EXPECT_EQ(StatusCode::kCorruption, TryOpen(Preallocated(1024)).code());
}

TEST_F(PreallocatedWalTest, AnAppendNeverLeavesMoreThanTheBoundUnsynced) {
  auto log = Open();  // Plain segments: the bound is the log's, whatever the file.
  std::vector<Entry> entries;
  for (uint64_t index = 1; index <= 3; ++index) {
    entries.push_back(MakeEntry(index, 1, std::string(kPayloadBytesMax / 2 + 1, 'x')));
  }
  ASSERT_TRUE(log->Append(entries).ok());
  EXPECT_EQ(LogIndex(3), log->last_index());
  EXPECT_GE(log->durable_index(), LogIndex(1)) << "Append synced before passing the bound";
  EXPECT_EQ(LogIndex(3), log->Sync().value());
}

TEST(SegmentPreallocatorTest, BackgroundSpareIsZeroFilledAndReplacedAfterBeingTaken) {
  TempDirectory dir;
  PosixFileSystem fs;
  const uint64_t bytes = (3u << 20) + 100;  // Not a whole number of the thread's slices.
  SegmentPreallocator preallocator(fs, dir.path(), bytes, SegmentPreallocator::Mode::kBackground);
  auto wait_ready = [&] {
    for (int i = 0; i < 1000 && !preallocator.ready(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return preallocator.ready();
  };
  ASSERT_TRUE(wait_ready()) << "a spare is made within 10 s";
  const std::string taken = dir.Join("00000000000000000001.wal");
  ASSERT_TRUE(preallocator.TakeAs(taken).value());
  EXPECT_EQ(1u, preallocator.spares_taken());
  const std::string contents = ReadWholeFile(fs, taken).value();
  EXPECT_EQ(bytes, contents.size());
  EXPECT_TRUE(std::all_of(contents.begin(), contents.end(), [](char c) { return c == 0; }));
  ASSERT_TRUE(wait_ready()) << "the next spare follows";
  EXPECT_EQ(bytes, ReadWholeFile(fs, preallocator.spare_path()).value().size());
}

TEST(SegmentPreallocatorTest, PaceSpreadsASpareOverHalfTheLastSegmentsFillTime) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  const uint64_t min = SegmentPreallocator::kPaceBytesPerSecondMin;
  EXPECT_EQ(min, SegmentPreallocator::PaceBytesPerSecond(64u << 20, seconds(0)));
  EXPECT_EQ(min, SegmentPreallocator::PaceBytesPerSecond(64u << 20, seconds(60)));
  EXPECT_EQ(128u << 20, SegmentPreallocator::PaceBytesPerSecond(64u << 20, seconds(1)));
  EXPECT_EQ(256u << 20, SegmentPreallocator::PaceBytesPerSecond(64u << 20, milliseconds(500)));
}

TEST(SegmentPreallocatorTest, ASpareTheLogWantsIsNoLongerPaced) {
  TempDirectory paced_dir;
  TempDirectory hurried_dir;
  PosixFileSystem fs;
  // At the slowest pace this spare takes 1 s; nobody asks for it, so it takes at least that.
  const uint64_t bytes = SegmentPreallocator::kPaceBytesPerSecondMin;
  auto time_to_ready = [&](SegmentPreallocator& preallocator) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 2000 && !preallocator.ready(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(preallocator.ready()) << "a spare is made within 10 s";
    return std::chrono::steady_clock::now() - start;
  };
  SegmentPreallocator paced(fs, paced_dir.path(), bytes, SegmentPreallocator::Mode::kBackground);
  const auto paced_time = time_to_ready(paced);
  EXPECT_GE(paced_time, std::chrono::milliseconds(900));

  // The log rolled and found no spare ready: the rest is written at full speed.
  SegmentPreallocator hurried(fs, hurried_dir.path(), bytes,
                              SegmentPreallocator::Mode::kBackground);
  EXPECT_FALSE(hurried.TakeAs(hurried_dir.Join("00000000000000000001.wal")).value());
  const auto hurried_time = time_to_ready(hurried);
  EXPECT_LT(hurried_time, paced_time);
}

TEST(SegmentPreallocatorTest, NoSpareReadyMeansAPlainSegment) {
  // A log directory the spare cannot be written to: the preallocator says no, the log appends.
  SimFileSystem fs(5);
  ASSERT_TRUE(fs.CreateDirectory("/data").ok());
  ASSERT_TRUE(fs.CreateDirectory("/data/wal").ok());
  fs.DenyPermission("/data/wal/spare");
  auto log = WriteAheadLog::Open(fs, "/data/wal",
                                 {.segment_bytes_target = 4096,
                                  .first_index_of_new_log = LogIndex(1),
                                  .preallocation = Preallocation::kInline})
                 .value();
  EXPECT_EQ(0u, log->preallocated_segments());
  ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(1, 1, "one")}).ok());
  EXPECT_EQ(LogIndex(1), log->Sync().value());
}

// A record whose header straddles a sector boundary so that the second sector's share holds only
// the generation's high bytes, zero in any record of a generation below 2^24.
TEST_F(PreallocatedWalTest, ZerosOfARecordsOwnHeaderAreNotATornWrite) {
  for (WalOptions options : {WalOptions{.segment_bytes_target = 4096}, Preallocated(4096)}) {
    fs_ = SimFileSystem(12);
    ASSERT_TRUE(fs_.CreateDirectory("/data").ok());
    {
      auto log = Open(options);
      // 32 + 2 x (33 + 193) = 484: the third record starts 28 bytes before the sector boundary.
      ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(1, 1, std::string(193, 'a')),
                                                 MakeEntry(2, 1, std::string(193, 'b')),
                                                 MakeEntry(3, 1, std::string(100, 'c'))})
                      .ok());
      ASSERT_EQ(LogIndex(3), log->Sync().value());
    }
    fs_.FlipBit(SegmentPath(1), 484 + kRecordLengthOffset, 3);  // Acknowledged, then damaged.
    Status status = TryOpen(options);
    EXPECT_EQ(StatusCode::kCorruption, status.code())
        << (options.preallocation == Preallocation::kOff ? "plain: " : "preallocated: ")
        << status.ToString();
  }
}

TEST_F(PreallocatedWalTest, ZeroHeaderOfTheLastSegmentWithDataAfterItIsTorn) {
  // A roll's new segment: its first sector (the header) never reached the disk, a later one did.
  {
    auto log = Open(Preallocated(1024));
    for (uint64_t index = 1; index <= 40; index += 5) AppendRange(*log, index, index + 4);
  }
  auto log = Open(Preallocated(1024));
  const SegmentInfo last = log->Segments().back();
  ASSERT_GT(last.first_index, LogIndex(1));
  log.reset();
  std::string bytes = fs_.RawContents(SegmentPath(last.first_index.value()));
  bytes.replace(0, 512, 512, '\0');
  fs_.SetRawContents(SegmentPath(last.first_index.value()), bytes);
  log = Open(Preallocated(1024));
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
  ExpectEntries(*log, 1, last.first_index.value() - 1);
}

TEST_F(PreallocatedWalTest, ARollSyncsFirstSoOnlyTheLastSegmentHoldsUnsyncedBytes) {
  auto log = Open(Preallocated(1024));
  uint64_t index = 1;
  while (log->Segments().size() < 2) {
    ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(index, 1, std::string(90, 'r'))}).ok());
    ++index;
  }
  const LogIndex sealed_last = log->Segments()[0].last_index;
  EXPECT_GE(log->durable_index(), sealed_last) << "the sealed segment was synced before the roll";
}

TEST_F(WalTest, AFailedAppendThatSyncedPartOfItselfMakesItsUndoingDurable) {
  // Three 8 MiB entries: the log syncs on its own before each of the last two (it never holds
  // more than kUnsyncedBytesMax unsynced), the third goes to a new segment and fails for want of
  // space. The undo (segment removed, the first cut back) must be durable before the log goes
  // on, or a crash would bring back a segment that no longer follows the log.
  WalOptions options;
  options.segment_bytes_target = 9u << 20;
  auto log = Open(options);
  const std::string big(8u << 20, 'b');
  fs_.SetSpaceLimitBytes(kSegmentHeaderBytes + 2 * RecordBytes(big.size()) + kSegmentHeaderBytes +
                         1000);
  Status failed = log->Append(std::vector<Entry>{MakeEntry(1, 1, big), MakeEntry(2, 1, big),
                                                 MakeEntry(3, 1, big)});
  ASSERT_EQ(StatusCode::kNoSpace, failed.code()) << failed.ToString();
  EXPECT_EQ(LogIndex(0), log->last_index());
  EXPECT_EQ(LogIndex(0), log->durable_index());
  EXPECT_EQ(1u, log->Segments().size());
  fs_.SetSpaceLimitBytes(std::nullopt);
  AppendRange(*log, 1, 2);
  log.reset();
  fs_.Crash(TearMode::kNone);
  ExpectEntries(*Open(options), 1, 2);
}

TEST_F(PreallocatedWalTest, RevertedSectorHoldingOnlyARecordsChecksumIsATornWrite) {
  // Found by the simulator (seed 100098): the sector where an unsynced write began reverted, and
  // it held only the first 4 bytes of a record (its checksum, which the header checksum does not
  // cover); the rest of that record and the next one reached the disk.
  auto log = Open(Preallocated(4096));
  // 32 + 2 x (33 + 205) = 508: the third record starts 4 bytes before the sector boundary.
  ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(1, 1, std::string(205, 'a')),
                                             MakeEntry(2, 1, std::string(205, 'b'))})
                  .ok());
  ASSERT_EQ(LogIndex(2), log->Sync().value());
  ASSERT_TRUE(log->Append(std::vector<Entry>{MakeEntry(3, 1, std::string(100, 'c')),
                                             MakeEntry(4, 1, std::string(100, 'd'))})
                  .ok());
  std::string bytes = fs_.RawContents(SegmentPath(1));
  log.reset();
  bytes.replace(508, 4, 4, '\0');
  fs_.SetRawContents(SegmentPath(1), bytes);
  log = Open(Preallocated(4096));
  EXPECT_TRUE(log->recovery().torn_tail_truncated);
  EXPECT_EQ(508u, log->recovery().torn_tail_offset);
  EXPECT_EQ(LogIndex(2), log->last_index());
  EXPECT_EQ(std::string(205, 'b'), log->Read(LogIndex(2), LogIndex(2)).value()[0].payload);
}

}  // namespace
}  // namespace cairn::wal
