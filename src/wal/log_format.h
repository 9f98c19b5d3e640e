// The write-ahead log's on-disk format: constants and layout facts. docs/wal-format.md is the
// grammar in prose; this header is the same facts as code, each pinned by a static_assert.
//
// A log is a directory of segment files named "<first index, 20 decimal digits>.wal". A segment is
// a header followed by records, then possibly zero padding (a preallocated segment not yet full):
//
//   segment header (32 bytes)
//     0  magic            8 bytes  "CAIRNWAL"
//     8  format_version   u32      kFormatVersion
//     12 flags            u32      kSegmentFlagPreallocated or 0; other bits refused (Unsupported)
//     16 first_index      u64      index of the segment's first record, equal to the file name's
//     24 reserved         u32      0
//     28 header_crc32c    u32      CRC32C of bytes [0, 28)
//
//   record (32-byte header + payload + 1-byte trailer)
//     0  record_crc32c    u32      CRC32C of bytes [8, 32 + payload_length): header fields + payload
//     4  header_crc32c    u32      CRC32C of bytes [8, 32): lets a reader trust payload_length
//                                  before it has the payload
//     8  payload_length   u32      0 .. kPayloadBytesMax
//     12 type             u8       EntryType
//     13 reserved         3 bytes  0
//     16 index            u64      the previous record's index + 1 (the first: first_index)
//     24 generation       u64      never less than the previous record's
//     32 payload          payload_length bytes
//     32+payload_length   trailer  u8  kRecordTrailer (never zero)
//
// All integers are little-endian. The separate header checksum is what lets recovery tell a torn
// append (the file ends inside a record whose header is sound) from a damaged length field (the
// header itself is bad), which would otherwise masquerade as a torn tail. The non-zero trailer
// means a sound record never ends in a zero byte, so a tail that reads back as zeros is always the
// mark of data that never reached the disk, never a record's genuine content (crash rules in
// write_ahead_log.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cairn::wal {

inline constexpr std::string_view kSegmentMagic = "CAIRNWAL";
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr std::string_view kSegmentSuffix = ".wal";
inline constexpr size_t kSegmentNameDigits = 20;  // Enough for any u64 in decimal.

inline constexpr size_t kSegmentHeaderBytes = 32;
// Set in a segment written over a spare of zeros: only such a segment can come back from a crash
// with holes (write_ahead_log.h, crash rules), so only there does recovery look for them.
inline constexpr uint32_t kSegmentFlagPreallocated = 1;
inline constexpr uint32_t kSegmentFlagsKnown = kSegmentFlagPreallocated;
inline constexpr size_t kSegmentMagicOffset = 0;
inline constexpr size_t kSegmentVersionOffset = 8;
inline constexpr size_t kSegmentFlagsOffset = 12;
inline constexpr size_t kSegmentFirstIndexOffset = 16;
inline constexpr size_t kSegmentReservedOffset = 24;
inline constexpr size_t kSegmentHeaderCrcOffset = 28;

inline constexpr size_t kRecordHeaderBytes = 32;
inline constexpr size_t kRecordCrcOffset = 0;
inline constexpr size_t kRecordHeaderCrcOffset = 4;
inline constexpr size_t kRecordLengthOffset = 8;
inline constexpr size_t kRecordTypeOffset = 12;
inline constexpr size_t kRecordReservedOffset = 13;
inline constexpr size_t kRecordIndexOffset = 16;
inline constexpr size_t kRecordGenerationOffset = 24;
// The record checksum covers the header from here on, and the payload.
inline constexpr size_t kRecordChecksummedOffset = kRecordLengthOffset;
inline constexpr size_t kRecordTrailerBytes = 1;
inline constexpr uint8_t kRecordTrailer = 0xCA;

// Bytes a record with `payload_length` payload bytes occupies on disk.
constexpr uint64_t RecordBytes(uint64_t payload_length) {
  return kRecordHeaderBytes + payload_length + kRecordTrailerBytes;
}

// The largest payload one entry may carry: 16 MiB. etcd's default request limit is 1.5 MiB; this
// leaves room for batched and snapshot-chunk entries while bounding a reader's allocation.
inline constexpr uint32_t kPayloadBytesMax = 16u << 20;

// Torn-write detection works in units of the disk sector (see write_ahead_log.h, crash rules).
inline constexpr uint64_t kSectorBytes = 512;

// The most bytes one write(2) of the log carries: one record of the largest payload, or several
// smaller ones.
inline constexpr uint64_t kWriteBytesMax = RecordBytes(kPayloadBytesMax);
// The most bytes the log ever has written but not yet fdatasynced, all segments together (Append
// syncs on its own before it would pass this). Recovery relies on it: a crash during a write over
// a preallocated segment can leave holes, sectors that reverted to zeros between sectors that
// reached the disk, so sound records after a bad one are dropped as unsynced only when everything
// non-zero after the bad spot lies within this many bytes of it.
inline constexpr uint64_t kUnsyncedBytesMax = kWriteBytesMax + kSegmentHeaderBytes;

// A spare segment: zeros written and fdatasynced ahead of time (SegmentPreallocator), renamed to
// the next segment's name when the log rolls. Never part of the log: Open removes it.
inline constexpr std::string_view kSpareSegmentName = "spare.segment";

static_assert(kSegmentMagic.size() == 8, "the segment magic is eight bytes");
static_assert(kSegmentVersionOffset == kSegmentMagicOffset + kSegmentMagic.size());
static_assert(kSegmentFlagsOffset == kSegmentVersionOffset + 4);
static_assert(kSegmentFirstIndexOffset == kSegmentFlagsOffset + 4);
static_assert(kSegmentReservedOffset == kSegmentFirstIndexOffset + 8);
static_assert(kSegmentHeaderCrcOffset == kSegmentReservedOffset + 4);
static_assert(kSegmentHeaderBytes == kSegmentHeaderCrcOffset + 4);

static_assert(kRecordHeaderCrcOffset == kRecordCrcOffset + 4);
static_assert(kRecordLengthOffset == kRecordHeaderCrcOffset + 4);
static_assert(kRecordTypeOffset == kRecordLengthOffset + 4);
static_assert(kRecordReservedOffset == kRecordTypeOffset + 1);
static_assert(kRecordIndexOffset == kRecordReservedOffset + 3);
static_assert(kRecordGenerationOffset == kRecordIndexOffset + 8);
static_assert(kRecordHeaderBytes == kRecordGenerationOffset + 8);
static_assert(kRecordHeaderBytes % 8 == 0, "records keep 8-byte alignment of their fields");
static_assert(kRecordTrailer != 0, "a sound record never ends in a zero byte");
static_assert(RecordBytes(0) == 33, "the smallest record is a header and a trailer");
static_assert(RecordBytes(kPayloadBytesMax) <= UINT32_MAX, "a record's size fits a u32");
static_assert(kSectorBytes >= kRecordHeaderBytes, "a record header spans at most two sectors");

}  // namespace cairn::wal
