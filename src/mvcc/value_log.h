// ValueLog: where MvccStore keeps the bytes of its values, apart from the key index.
//
// Design note. Key-value separation (as in WiscKey and Bitcask's keydir): the index of keys and
// versions stays in memory, each version holds a 12-byte ValueRef, and the value bytes go to an
// append-only log of segments. With the segments in files, values are read through the page
// cache, which the kernel can share and evict, instead of sitting in the server's heap: 1M keys of
// 256-byte values take ~185 MiB of heap instead of ~470 MiB (docs/benchmarks.md).
//
// The log is not durable and not recovered: the write-ahead log and the snapshots are the record,
// and a restarting member rebuilds the store (and so this log) from them. So nothing here syncs,
// and a storage's segments are scratch space that it deletes when it is destroyed (and the file
// storage clears its directory when a server starts).
//
// Rules:
//   - Add appends a value to the head segment and returns its ValueRef; Release says a ref is no
//     longer held. A ref is held by exactly one version; an empty value has the null ref and
//     takes no space.
//   - Appends collect in an in-memory head buffer written to storage in large pieces (flush_bytes)
//     and when the head segment is sealed, which happens once it holds segment_bytes or more (so
//     a segment ends with whole values; one larger than segment_bytes gets a segment to itself).
//   - Garbage: a released value's bytes stay in its segment. A sealed segment with nothing live
//     left is deleted at once. Segments less than half live are "sparse"; once their garbage adds
//     up to segment_bytes, the owner (MvccStore) moves their live values to the head
//     (relocation, a bounded amount per write; a pass ends within kRelocationPassWrites writes)
//     and the emptied segments are deleted. Disk use stays within about twice the live bytes
//     plus a few segments and what is written during one pass.
//
// Pure: the bytes go through a ValueStorage (memory for tests and simulations, files in the
// server: storage/value_files.h). A storage failure (a full disk) is fatal: a crash with the
// storage's message, after which the member restarts from its log and snapshot.
//
// Thread-safety: none; the store's thread owns it (Freeze, though const, writes the head buffer
// out). A Frozen view is the one part another thread may use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::mvcc {

// Where a value's bytes are: (segment, offset) in the log, and how many. size 0: the empty value.
struct ValueRef {
  uint32_t segment = 0;
  uint32_t offset = 0;
  uint32_t size = 0;

  bool operator==(const ValueRef&) const = default;
};
static_assert(sizeof(ValueRef) == 12, "a ref is kept per version: keep it small");

// Reads segments as they were when it was opened, on any thread, for as long as it lives: bytes
// appended later need not be visible, and segments removed meanwhile stay readable through it.
// A read may span several appends (a snapshot reads many values at once).
class ValueReader {
 public:
  virtual ~ValueReader() = default;
  virtual void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const = 0;
};

// The bytes of the segments. Each segment is written only by appends, in order; a read lies
// within the bytes appended to its segment, and may span appends.
class ValueStorage {
 public:
  virtual ~ValueStorage() = default;
  virtual void Append(uint32_t segment, std::string_view bytes) = 0;
  virtual void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const = 0;
  virtual void Remove(uint32_t segment) = 0;
  [[nodiscard]] virtual std::unique_ptr<ValueReader> OpenReader() const = 0;
};

// Makes the storage of one store. A store rebuilt from a snapshot gets a new one, while the old
// store may still be alive: each storage must keep its segments apart from every other's.
using ValueStorageFactory = std::function<std::unique_ptr<ValueStorage>()>;

// Segments in memory, an immutable shared chunk per append (so a reader shares them): tests,
// simulations, --values-in-memory.
class MemoryValueStorage final : public ValueStorage {
 public:
  struct Chunk {
    uint64_t start = 0;
    std::shared_ptr<const std::string> bytes{};
  };
  using Segments = std::map<uint32_t, std::vector<Chunk>>;

  void Append(uint32_t segment, std::string_view bytes) override;
  void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const override;
  void Remove(uint32_t segment) override;
  [[nodiscard]] std::unique_ptr<ValueReader> OpenReader() const override;
  [[nodiscard]] size_t segments() const { return segments_.size(); }

  static void ReadFrom(const Segments& segments, uint32_t segment, uint32_t offset, size_t size,
                       char* out);

 private:
  Segments segments_;
};

struct ValueLogOptions {
  // A segment is sealed once it holds this many bytes or more.
  size_t segment_bytes = 64u << 20;
  // The head buffer is appended to storage once it holds this many bytes.
  size_t flush_bytes = 256u << 10;
};

class ValueLog {
 public:
  ValueLog(std::unique_ptr<ValueStorage> storage, ValueLogOptions options);
  ValueLog(ValueLog&&) = default;
  ValueLog& operator=(ValueLog&&) = default;
  ValueLog(const ValueLog&) = delete;
  ValueLog& operator=(const ValueLog&) = delete;

  [[nodiscard]] ValueRef Add(std::string_view value);
  // The value's bytes, assigned to `out`.
  void Read(ValueRef ref, std::string* out) const;
  // Appends the value's bytes to `out`.
  void AppendTo(ValueRef ref, std::string* out) const;
  void Release(ValueRef ref);

  // Every value added so far, readable on another thread while this log goes on (a snapshot's
  // values are copied in off the store's thread). Writes the head buffer out first.
  struct Frozen {
    std::unique_ptr<ValueReader> reader{};
    uint32_t head_segment = 0;
    uint64_t head_bytes = 0;
    // True for refs of values added before Freeze (refs added later may be in the head buffer or
    // in segments the reader does not have).
    [[nodiscard]] bool Covers(ValueRef ref) const {
      return ref.segment < head_segment ||
             (ref.segment == head_segment && ref.offset + uint64_t{ref.size} <= head_bytes);
    }
    // `size` bytes of `segment` from `offset`: one value's, or a run of several (a snapshot reads
    // covered values a run at a time).
    void ReadRange(uint32_t segment, uint32_t offset, size_t size, char* out) const {
      reader->Read(segment, offset, size, out);
    }
  };
  [[nodiscard]] Frozen Freeze() const;

  // Bytes of values held, and of released values still on storage or in the head buffer.
  [[nodiscard]] uint64_t live_bytes() const { return live_bytes_; }
  [[nodiscard]] uint64_t garbage_bytes() const { return garbage_bytes_; }
  [[nodiscard]] size_t segment_count() const { return segments_.size(); }
  // True when the sparse segments' garbage is worth a relocation pass.
  [[nodiscard]] bool RelocationDue() const;
  // The sparse segments now, in order: those a relocation pass empties.
  [[nodiscard]] std::vector<uint32_t> SparseSegments() const;
  // True when `segment` is still in the log (a relocation pass's victims vanish as they empty).
  [[nodiscard]] bool Holds(uint32_t segment) const { return segments_.contains(segment); }

 private:
  struct Segment {
    uint64_t bytes = 0;       // Appended (storage plus head buffer for the head segment).
    uint64_t live_bytes = 0;  // Of values not released.
    bool sealed = false;
  };
  [[nodiscard]] static bool Sparse(const Segment& segment) {
    return segment.sealed && segment.live_bytes * 2 < segment.bytes;
  }
  // Sparse garbage accounting around a change to one segment.
  void Unaccount(const Segment& segment);
  void Account(const Segment& segment);
  void Flush() const;
  void SealHead();
  void CopyOut(ValueRef ref, char* out) const;

  std::unique_ptr<ValueStorage> storage_;
  ValueLogOptions options_;
  std::map<uint32_t, Segment> segments_;
  uint32_t head_ = 0;
  // Head segment bytes [head_flushed_, segments_[head_].bytes) not yet appended to storage.
  // Mutable: writing the buffer out (Freeze) changes no value.
  mutable std::string head_buffer_;
  mutable uint64_t head_flushed_ = 0;
  uint64_t live_bytes_ = 0;
  uint64_t garbage_bytes_ = 0;
  uint64_t sparse_garbage_bytes_ = 0;
};

}  // namespace cairn::mvcc
