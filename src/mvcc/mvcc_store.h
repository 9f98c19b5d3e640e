// MvccStore: the etcd v3 key-value semantics (Range, Put, DeleteRange, Txn, Compact) as a pure,
// deterministic data structure.
//
// Design note. Pattern: "Versioned Value" (Patterns of Distributed Systems). Every write creates a
// new version of a key stamped with a store-wide revision instead of overwriting it, so a reader
// can ask for the store "as of" any revision that has not been compacted yet.
//
// Rules the store keeps:
//   - Revisions are etcd's. An empty store is at revision 1. Each write that changes something (a
//     Put, a DeleteRange that deletes at least one key, a Txn whose chosen branch writes) moves the
//     revision up by exactly one; a read-only Txn or a delete of nothing does not. The revision never
//     goes back (checked on every commit).
//   - Every write of one transaction shares the new main revision and gets its own sub-index, in the
//     order the writes were applied, so reads later in a Txn see the Txn's earlier writes.
//   - Each key keeps its versions in (main, sub) order. A version holds create_revision,
//     mod_revision (its main revision), version (1 on create, +1 per put), lease and value. A delete
//     appends a tombstone that ends the key's generation; a later put starts a new generation with a
//     new create_revision and version 1. The version visible at revision R is found by binary search
//     for the last version with main <= R.
//   - Compact(C) keeps, per key, every version above C plus the latest version at or before C (and
//     not even that one when it is a tombstone: then the key's old generations vanish). Reads below C
//     fail with etcd's "compacted" error. The work is proportional to what was written in the
//     compacted span: the store remembers which keys each revision touched, and only those keys are
//     visited.
//   - Each revision carries the HybridTimestamp its writer passed in; the store never reads a clock.
//   - Client input is validated and answered with a Status (etcd's error texts); a broken internal
//     invariant crashes through CAIRN_CHECK. A failed write changes nothing: the writes applied so
//     far are rolled back (they were all appends at the new revision, so rollback pops them).
//   - Bounds: max_txn_ops (per Txn level, as etcd counts it), request_bytes_max (the encoded size of
//     keys and values in one request), quota_bytes (bytes of keys and values held over all versions).
//
// Why a std::map of keys: range scans need ordered keys and cheap successor steps; a red-black tree
// gives O(log n) seeks and stable iterators (the per-revision "keys touched" lists hold iterators).
// Its per-node overhead and pointer chasing cost memory and cache misses compared with a B-tree, but
// the store is bounded by quota_bytes (a few GiB at most, as in etcd); a B-tree can replace it
// behind this interface when profiles say so (with 1M single-version keys the index is ~152 bytes
// a key: map node 128 with the key's one version inline (VersionList), revision entry 24, malloc's
// headers included; 184 with a std::vector of versions). In a profile of 3 members on one machine
// the map's lookup (its cache misses) was 10% of the put run's CPU. A range
// scan visits every key in the range that still has history, including keys deleted but not yet
// compacted.
//
// Values live apart from the index, in a ValueLog (value_log.h): a version holds a 12-byte ref, so
// the heap holds keys and version records, and a server keeps the value bytes in files read
// through the page cache. Released values are garbage in their segment; each write moves a bounded
// number of keys' values out of sparse segments (a relocation pass) so the emptied ones are deleted.
//
// Thread-safety: none. The owner (the apply loop of the consensus shell) serializes all calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "base/status.h"
#include "base/strong_types.h"
#include "clock/hybrid_clock.h"
#include "mvcc/value_log.h"

namespace cairn::mvcc {

// etcd's error texts, so clients that match on them keep working.
inline constexpr std::string_view kErrorCompacted = "mvcc: required revision has been compacted";
inline constexpr std::string_view kErrorFutureRevision =
    "mvcc: required revision is a future revision";
inline constexpr std::string_view kErrorEmptyKey = "etcdserver: key is not provided";
inline constexpr std::string_view kErrorKeyNotFound = "etcdserver: key not found";
inline constexpr std::string_view kErrorValueProvided = "etcdserver: value is provided";
inline constexpr std::string_view kErrorLeaseProvided = "etcdserver: lease is provided";
inline constexpr std::string_view kErrorTooManyOps = "etcdserver: too many operations in txn request";
inline constexpr std::string_view kErrorDuplicateKey = "etcdserver: duplicate key given in txn request";
inline constexpr std::string_view kErrorNoSpace = "etcdserver: mvcc: database space exceeded";
inline constexpr std::string_view kErrorRequestTooLarge = "etcdserver: request is too large";

// The revision of an empty store, as in etcd.
inline constexpr Revision kInitialRevision{1};
// Writes a relocation pass takes at most, however many keys (MvccOptions::relocation_keys_per_write).
inline constexpr size_t kRelocationPassWrites = 1024;

struct MvccOptions {
  // The most compares, success ops or failure ops one Txn level may hold (etcd's --max-txn-ops).
  // A nested Txn gets what its parent level did not use, as etcd counts it.
  size_t max_txn_ops = 128;
  // Bytes of keys and values held over all versions; 0 means unlimited. A write with a put that
  // would end above it fails with NoSpace and changes nothing. Writes that only delete are let
  // through (like etcd's NOSPACE alarm), so an operator can delete and compact to recover.
  uint64_t quota_bytes = 0;
  // The most key, range_end and value bytes one request may carry (etcd's default 1.5 MiB).
  size_t request_bytes_max = 3 * 512 * 1024;
  // The timestamp of the initial revision 1.
  HybridTimestamp initial_timestamp{};
  // Where value bytes are kept (ValueLog); empty: in memory (MemoryValueStorage).
  ValueStorageFactory value_storage{};
  ValueLogOptions value_log{};
  // Keys a write visits, at least, of a pass that moves values out of sparse value segments (each
  // moved value is a read and an append: with files, ~1 us). A write visits more in a large store
  // (keys / kRelocationPassWrites), so a pass ends within that many writes whatever the key count:
  // segments that turn sparse meanwhile wait for the next pass, and disk use stays bounded.
  size_t relocation_keys_per_write = 64;
};

struct KeyValue {
  std::string key{};
  Revision create_revision{};
  Revision mod_revision{};
  int64_t version = 0;
  std::string value{};
  int64_t lease = 0;

  bool operator==(const KeyValue&) const = default;
};

struct ResponseHeader {
  Revision revision{};  // The store's revision after the request.
};

enum class SortOrder : uint8_t { kNone = 0, kAscend = 1, kDescend = 2 };
enum class SortTarget : uint8_t { kKey = 0, kVersion = 1, kCreate = 2, kMod = 3, kValue = 4 };

// Key ranges everywhere: range_end empty means the single key `key`; range_end "\0" (one zero
// byte) means every key >= key; otherwise [key, range_end), empty when range_end <= key.
struct RangeRequest {
  std::string key{};
  std::string range_end{};
  int64_t limit = 0;      // 0: no limit. Negative is refused.
  Revision revision{};    // <= 0: the current revision.
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool keys_only = false;
  bool count_only = false;
  Revision min_mod_revision{};     // 0: no filter.
  Revision max_mod_revision{};     // 0: no filter.
  Revision min_create_revision{};  // 0: no filter.
  Revision max_create_revision{};  // 0: no filter.
};

struct RangeResponse {
  ResponseHeader header{};
  std::vector<KeyValue> kvs{};
  // True when more keys than `limit` passed the filters.
  bool more = false;
  // Keys in the range at the read revision, before filters and limit (as etcd counts).
  int64_t count = 0;
};

struct PutRequest {
  std::string key{};
  std::string value{};
  int64_t lease = 0;  // 0: no lease. The lease module checks that a lease exists; this store does not.
  bool prev_kv = false;
  bool ignore_value = false;  // Keep the current value; the key must exist.
  bool ignore_lease = false;  // Keep the current lease; the key must exist.
};

struct PutResponse {
  ResponseHeader header{};
  std::optional<KeyValue> prev_kv{};
};

struct DeleteRangeRequest {
  std::string key{};
  std::string range_end{};
  bool prev_kv = false;
};

struct DeleteRangeResponse {
  ResponseHeader header{};
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs{};
};

enum class CompareResult : uint8_t { kEqual = 0, kGreater = 1, kLess = 2, kNotEqual = 3 };
enum class CompareTarget : uint8_t { kVersion = 0, kCreate = 1, kMod = 2, kValue = 3, kLease = 4 };

// One Txn guard, evaluated against the store as it was before the Txn (nested Txns included, as in
// etcd). Over a range, every existing key in the range must satisfy it. A missing key (or an empty
// range) compares as version 0, create 0, mod 0, lease 0; a VALUE compare on it is always false,
// because an absent value cannot be told from an empty one.
struct Compare {
  CompareResult result = CompareResult::kEqual;
  CompareTarget target = CompareTarget::kVersion;
  std::string key{};
  std::string range_end{};
  // Only the field named by `target` is read.
  int64_t version = 0;
  Revision create_revision{};
  Revision mod_revision{};
  std::string value{};
  int64_t lease = 0;
};

struct RequestOp;
struct ResponseOp;

struct TxnRequest {
  std::vector<Compare> compare{};
  std::vector<RequestOp> success{};
  std::vector<RequestOp> failure{};
};

struct RequestOp {
  std::variant<RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest> request{};
};

struct TxnResponse {
  ResponseHeader header{};
  bool succeeded = false;
  std::vector<ResponseOp> responses{};  // One per op of the chosen branch, in order.
};

struct ResponseOp {
  std::variant<RangeResponse, PutResponse, DeleteRangeResponse, TxnResponse> response{};
};

struct CompactionRequest {
  Revision revision{};
};

struct CompactionResponse {
  ResponseHeader header{};
};

class MvccStore {
 public:
  explicit MvccStore(MvccOptions options = {});

  MvccStore(MvccStore&&) = default;
  MvccStore& operator=(MvccStore&&) = default;
  MvccStore(const MvccStore&) = delete;
  MvccStore& operator=(const MvccStore&) = delete;

  [[nodiscard]] Revision current_revision() const { return current_revision_; }
  // 0 until the first compaction.
  [[nodiscard]] Revision compacted_revision() const { return compacted_revision_; }
  // Key and value bytes over every version held (a tombstone counts its key).
  [[nodiscard]] uint64_t bytes_used() const { return bytes_used_; }
  // Versions held over all keys, tombstones included; compaction lowers it.
  [[nodiscard]] size_t versions_held() const { return versions_held_; }
  // Where the values' bytes are (live and garbage bytes, segments).
  [[nodiscard]] const ValueLog& value_log() const { return values_; }
  // True while a pass moving values out of sparse segments is under way.
  [[nodiscard]] bool relocating() const { return relocation_.has_value(); }

  [[nodiscard]] Result<RangeResponse> Range(const RangeRequest& request) const;
  [[nodiscard]] Result<PutResponse> Put(const PutRequest& request, HybridTimestamp timestamp);
  [[nodiscard]] Result<DeleteRangeResponse> DeleteRange(const DeleteRangeRequest& request,
                                                        HybridTimestamp timestamp);
  // `timestamp` stamps the new revision if the chosen branch writes; otherwise it is unused.
  [[nodiscard]] Result<TxnResponse> Txn(const TxnRequest& request, HybridTimestamp timestamp);
  [[nodiscard]] Result<CompactionResponse> Compact(const CompactionRequest& request);

  // The timestamp the revision's writer passed in (options.initial_timestamp for revision 1).
  [[nodiscard]] Result<HybridTimestamp> TimestampOf(Revision revision) const;

  // The whole store in a versioned, checksummed binary form (layout in mvcc_store.cc).
  [[nodiscard]] std::string Serialize() const;

  // Serialize(), a slice at a time, so that serializing a large store never holds its owner's
  // thread for long: the owner applies writes between slices and the snapshot still shows the
  // store as of BeginSnapshot. That works because the store is multi-version: a slice writes each
  // key's versions up to the starting revision and skips the newer ones, and keys are visited in
  // order from the last one written (keys created meanwhile are skipped too, having no version
  // that old). Only a compaction rewrites history: after one the writer is stale and must be
  // dropped. Replacing the store (Restore) likewise ends the writer; the owner drops it. The
  // writer refers to the store: it lives on the store's thread and never outlives the store.
  // Slices write the index and only note where each value goes; the Pending snapshot copies the
  // values in from a frozen view of the value log, on any thread, even after the store is gone.
  class SnapshotWriter {
   public:
    // Appends roughly `bytes_max` more (whole keys); true once the snapshot is complete.
    bool Continue(size_t bytes_max);
    // A compaction since BeginSnapshot: the output no longer matches one revision.
    [[nodiscard]] bool stale() const;
    [[nodiscard]] Revision revision() const { return revision_; }
    [[nodiscard]] size_t bytes() const { return out_.size(); }
    // A serialized snapshot whose values are still to be copied in: Finish does that, on any
    // thread (the store's thread only records where each value goes), and seals it.
    class Pending {
     public:
      // The whole snapshot, checksum included.
      [[nodiscard]] std::string Finish() &&;
      [[nodiscard]] size_t bytes() const { return out_.size(); }

     private:
      friend class SnapshotWriter;
      struct Fill {
        uint64_t at = 0;  // Where in out_ the value's bytes go.
        ValueRef value{};
      };
      std::string out_{};
      std::vector<Fill> fills_{};
      ValueLog::Frozen values_{};
    };
    // Once Continue returned true.
    [[nodiscard]] Pending TakePending();

   private:
    friend class MvccStore;
    explicit SnapshotWriter(const MvccStore& store);

    const MvccStore* store_;
    Revision revision_;
    Revision compacted_;
    // Values of versions that existed when the writer began are read later, through this (only
    // values moved since, by relocation, are copied in by Continue).
    ValueLog::Frozen values_;
    std::vector<Pending::Fill> fills_;
    std::string out_;
    size_t timestamps_left_ = 0;  // Revision timestamps still to write, oldest first.
    size_t next_timestamp_ = 0;
    size_t key_count_offset_ = 0;  // Where the key count goes once it is known.
    uint64_t keys_written_ = 0;
    bool keys_begun_ = false;
    bool resume_ = false;
    std::string next_key_;  // Where the next slice starts.
    bool done_ = false;
  };
  [[nodiscard]] SnapshotWriter BeginSnapshot() const;
  // Appends the checksum that ends a snapshot.
  static void SealSnapshot(std::string* unsealed);
  // Rebuilds a store from Serialize's output. Anything malformed gives Corruption (Unsupported for
  // a format version this build does not read), never a crash.
  [[nodiscard]] static Result<MvccStore> Restore(std::string_view snapshot, MvccOptions options);

 private:
  struct VersionRecord {
    Revision main{};
    Revision create_revision{};
    int64_t version = 0;
    int64_t lease = 0;
    ValueRef value{};  // In values_; held by this version alone.
    uint32_t sub : 31 = 0;  // The write's place within its revision (kSubMax at most).
    uint32_t tombstone : 1 = 0;
  };
  static constexpr int64_t kSubMax = (int64_t{1} << 31) - 1;
  static_assert(sizeof(VersionRecord) == 48, "a version record is kept per version: keep it small");
  static_assert(std::is_trivially_copyable_v<VersionRecord>, "VersionList copies records as bytes");
  // A key's versions, oldest first: a vector that holds one version inline. Most keys have one
  // (written once, or compacted down to the latest), and a std::vector cost a 64-byte heap chunk
  // per key besides the index node: a member's RSS after loading 1M keys of 256 bytes went from
  // 282-288 to 191-204 MiB with this (and the 56 -> 48-byte record). Back to inline storage when
  // erasing leaves one version (a compaction).
  class VersionList {
   public:
    VersionList() noexcept : one_{}, size_(0), capacity_(1) {}
    VersionList(const VersionList& other);
    VersionList(VersionList&& other) noexcept;
    VersionList& operator=(VersionList other) noexcept;
    ~VersionList();

    [[nodiscard]] size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }
    VersionRecord* begin() { return data(); }
    VersionRecord* end() { return data() + size_; }
    [[nodiscard]] const VersionRecord* begin() const { return data(); }
    [[nodiscard]] const VersionRecord* end() const { return data() + size_; }
    VersionRecord& operator[](size_t i) { return data()[i]; }
    const VersionRecord& operator[](size_t i) const { return data()[i]; }
    VersionRecord& front() { return data()[0]; }
    [[nodiscard]] const VersionRecord& front() const { return data()[0]; }
    VersionRecord& back() { return data()[size_ - 1]; }
    [[nodiscard]] const VersionRecord& back() const { return data()[size_ - 1]; }
    void reserve(size_t count);
    void push_back(const VersionRecord& record);
    void pop_back();
    // Erases [first, last) (within the list); returns where `first` was.
    VersionRecord* erase(VersionRecord* first, VersionRecord* last);

   private:
    [[nodiscard]] bool inline_storage() const { return capacity_ == 1; }
    VersionRecord* data() { return inline_storage() ? &one_ : many_; }
    [[nodiscard]] const VersionRecord* data() const { return inline_storage() ? &one_ : many_; }
    void Reallocate(size_t capacity);  // To `capacity` (1: inline), keeping the records.

    union {
      VersionRecord one_;    // capacity_ == 1.
      VersionRecord* many_;  // capacity_ > 1: heap, capacity_ records.
    };
    uint32_t size_;
    uint32_t capacity_;
  };
  struct KeyHistory {
    VersionList versions{};  // Strictly increasing (main, sub).
  };
  using KeyIndex = std::map<std::string, KeyHistory, std::less<>>;
  // The keys one revision wrote. Most revisions write one key: it is held inline, without an
  // allocation (a std::vector cost 56 more bytes per revision: 1M single-key writes, 53 MiB).
  class KeysWritten {
   public:
    KeysWritten() : count_(0), many_(nullptr) {}
    explicit KeysWritten(const std::vector<KeyIndex::iterator>& keys);
    KeysWritten(KeysWritten&& other) noexcept;
    KeysWritten& operator=(KeysWritten&& other) noexcept;
    ~KeysWritten() { Clear(); }

    void push_back(KeyIndex::iterator key);
    void AppendTo(std::vector<KeyIndex::iterator>& out) const;
    void Clear();

   private:
    uint32_t count_;
    union {
      KeyIndex::iterator one_;                    // count_ == 1
      std::vector<KeyIndex::iterator>* many_;  // count_ >= 2 (owned)
    };
  };
  struct RevisionEntry {
    HybridTimestamp timestamp{};
    // Keys with a version at this revision; emptied once the revision is compacted. The iterators
    // stay valid: a key leaves the index only when compaction drops all its versions, and then no
    // uncompacted revision lists it.
    KeysWritten keys_written{};
  };
  struct WriteBatch;

  static const VersionRecord* VisibleAt(const KeyHistory& history, Revision revision);
  [[nodiscard]] KeyValue ToKeyValue(const std::string& key, const VersionRecord& record,
                                    bool with_value = true) const;
  static uint64_t VersionBytes(const std::string& key, const VersionRecord& record);

  [[nodiscard]] Status CheckReadRevision(Revision revision, Revision newest_readable) const;
  [[nodiscard]] Status ValidateTxn(const TxnRequest& request, size_t ops_budget) const;
  [[nodiscard]] Result<RangeResponse> RangeAt(const RangeRequest& request, Revision default_revision,
                                              Revision newest_readable) const;
  [[nodiscard]] bool CompareHolds(const Compare& compare, Revision revision) const;

  WriteBatch BeginWrite() const;
  void AppendVersion(WriteBatch& batch, KeyIndex::iterator key, VersionRecord record);
  [[nodiscard]] Result<PutResponse> ApplyPut(WriteBatch& batch, const PutRequest& request);
  [[nodiscard]] Result<DeleteRangeResponse> ApplyDeleteRange(WriteBatch& batch,
                                                             const DeleteRangeRequest& request);
  [[nodiscard]] Result<TxnResponse> ApplyTxn(WriteBatch& batch, const TxnRequest& request);
  // Makes the batch's writes permanent, or rolls them back and fails when they break the quota.
  [[nodiscard]] Status FinishWrite(WriteBatch& batch, HybridTimestamp timestamp);
  void RollBack(WriteBatch& batch);
  template <typename Response, typename Apply>
  Result<Response> RunWrite(HybridTimestamp timestamp, Apply apply);
  void CompactKey(KeyIndex::iterator key, Revision revision);
  // A bounded step of the relocation pass, started when the value log has garbage to reclaim.
  void RelocateSome();

  MvccOptions options_;
  KeyIndex keys_;
  Revision current_revision_ = kInitialRevision;
  Revision compacted_revision_{0};
  // revisions_[i] describes revision first_logged_revision() + i, through current_revision_.
  std::deque<RevisionEntry> revisions_;
  uint64_t bytes_used_ = 0;
  size_t versions_held_ = 0;
  ValueLog values_;
  // A relocation pass: the sparse segments it empties, and the key it resumes at.
  struct Relocation {
    std::vector<uint32_t> victims{};  // Sorted.
    std::string next_key{};
    bool resume = false;
  };
  std::optional<Relocation> relocation_{};

  [[nodiscard]] Revision first_logged_revision() const {
    return compacted_revision_ > kInitialRevision ? compacted_revision_ : kInitialRevision;
  }
};

}  // namespace cairn::mvcc
