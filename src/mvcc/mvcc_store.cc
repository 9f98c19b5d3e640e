#include "mvcc/mvcc_store.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <set>
#include <tuple>
#include <utility>

#include "base/coding.h"
#include "base/crc32c.h"

namespace cairn::mvcc {

namespace {

constexpr std::string_view kAllKeysFrom("\0", 1);

// The keys of `map` named by (key, range_end), with the range rules of RangeRequest.
template <typename Map>
auto KeyBounds(Map& map, std::string_view key, std::string_view range_end) {
  using Iterator = decltype(map.begin());
  if (range_end.empty()) {
    Iterator found = map.find(key);
    return std::pair<Iterator, Iterator>{found, found == map.end() ? found : std::next(found)};
  }
  Iterator begin = map.lower_bound(key);
  if (range_end == kAllKeysFrom) return std::pair<Iterator, Iterator>{begin, map.end()};
  if (range_end <= key) return std::pair<Iterator, Iterator>{begin, begin};
  return std::pair<Iterator, Iterator>{begin, map.lower_bound(range_end)};
}

template <typename Number>
int ThreeWay(Number left, Number right) {
  if (left < right) return -1;
  if (right < left) return 1;
  return 0;
}

bool CompareKeyValue(const Compare& compare, const KeyValue& kv) {
  int order = 0;
  switch (compare.target) {
    case CompareTarget::kVersion:
      order = ThreeWay(kv.version, compare.version);
      break;
    case CompareTarget::kCreate:
      order = ThreeWay(kv.create_revision, compare.create_revision);
      break;
    case CompareTarget::kMod:
      order = ThreeWay(kv.mod_revision, compare.mod_revision);
      break;
    case CompareTarget::kValue:
      order = ThreeWay(kv.value.compare(compare.value), 0);
      break;
    case CompareTarget::kLease:
      order = ThreeWay(kv.lease, compare.lease);
      break;
  }
  switch (compare.result) {
    case CompareResult::kEqual:
      return order == 0;
    case CompareResult::kNotEqual:
      return order != 0;
    case CompareResult::kGreater:
      return order > 0;
    case CompareResult::kLess:
      return order < 0;
  }
  CAIRN_CHECK(false, "compare results are validated before evaluation (got {})",
              static_cast<int>(compare.result));
  return false;
}

// --- Request validation -------------------------------------------------------------------------

size_t RequestBytes(const TxnRequest& request);

size_t RequestOpBytes(const RequestOp& op) {
  if (const auto* range = std::get_if<RangeRequest>(&op.request)) {
    return range->key.size() + range->range_end.size();
  }
  if (const auto* put = std::get_if<PutRequest>(&op.request)) {
    return put->key.size() + put->value.size();
  }
  if (const auto* del = std::get_if<DeleteRangeRequest>(&op.request)) {
    return del->key.size() + del->range_end.size();
  }
  return RequestBytes(std::get<TxnRequest>(op.request));
}

size_t RequestBytes(const TxnRequest& request) {
  size_t bytes = 0;
  for (const Compare& compare : request.compare) {
    bytes += compare.key.size() + compare.range_end.size() + compare.value.size();
  }
  for (const RequestOp& op : request.success) bytes += RequestOpBytes(op);
  for (const RequestOp& op : request.failure) bytes += RequestOpBytes(op);
  return bytes;
}

Status ValidateRangeRequest(const RangeRequest& request) {
  if (request.key.empty()) return Status::InvalidArgument(std::string(kErrorEmptyKey));
  if (request.limit < 0) return Status::InvalidArgument("mvcc: range limit is negative");
  if (static_cast<uint8_t>(request.sort_order) > static_cast<uint8_t>(SortOrder::kDescend)) {
    return Status::InvalidArgument("mvcc: unknown sort order");
  }
  if (static_cast<uint8_t>(request.sort_target) > static_cast<uint8_t>(SortTarget::kValue)) {
    return Status::InvalidArgument("mvcc: unknown sort target");
  }
  return Status::Ok();
}

// etcd's checkPutRequest: the order of the checks decides which error a bad request gets.
Status ValidatePutRequest(const PutRequest& request) {
  if (request.key.empty()) return Status::InvalidArgument(std::string(kErrorEmptyKey));
  if (request.ignore_value && !request.value.empty()) {
    return Status::InvalidArgument(std::string(kErrorValueProvided));
  }
  if (request.ignore_lease && request.lease != 0) {
    return Status::InvalidArgument(std::string(kErrorLeaseProvided));
  }
  return Status::Ok();
}

Status ValidateDeleteRangeRequest(const DeleteRangeRequest& request) {
  if (request.key.empty()) return Status::InvalidArgument(std::string(kErrorEmptyKey));
  return Status::Ok();
}

Status ValidateCompare(const Compare& compare) {
  if (compare.key.empty()) return Status::InvalidArgument(std::string(kErrorEmptyKey));
  if (static_cast<uint8_t>(compare.target) > static_cast<uint8_t>(CompareTarget::kLease)) {
    return Status::InvalidArgument("mvcc: unknown compare target");
  }
  if (static_cast<uint8_t>(compare.result) > static_cast<uint8_t>(CompareResult::kNotEqual)) {
    return Status::InvalidArgument("mvcc: unknown compare result");
  }
  return Status::Ok();
}

// The keys one branch of a Txn writes, for etcd's duplicate-key rule (checkIntervals): a branch,
// its nested Txns included, may not put a key twice nor put a key that a delete of it covers.
// Deletes may overlap each other. The two branches of a nested Txn exclude each other, so they
// may put the same key.
struct DeleteInterval {
  std::string begin{};
  std::string end{};  // Exclusive; empty means no upper bound.
};

struct BranchWrites {
  std::set<std::string, std::less<>> puts{};
  std::vector<DeleteInterval> deletes{};
};

bool DeletesCover(const std::vector<DeleteInterval>& deletes, const std::string& key) {
  return std::any_of(deletes.begin(), deletes.end(), [&](const DeleteInterval& interval) {
    return interval.begin <= key && (interval.end.empty() || key < interval.end);
  });
}

DeleteInterval IntervalOf(const DeleteRangeRequest& request) {
  if (request.range_end.empty()) return {request.key, request.key + std::string(1, '\0')};
  if (request.range_end == kAllKeysFrom) return {request.key, ""};
  return {request.key, request.range_end};
}

Status CollectBranchWrites(const std::vector<RequestOp>& ops, BranchWrites& out) {
  const Status duplicate = Status::InvalidArgument(std::string(kErrorDuplicateKey));
  for (const RequestOp& op : ops) {
    if (const auto* del = std::get_if<DeleteRangeRequest>(&op.request)) {
      out.deletes.push_back(IntervalOf(*del));
    }
  }
  for (const RequestOp& op : ops) {
    const auto* txn = std::get_if<TxnRequest>(&op.request);
    if (txn == nullptr) continue;
    BranchWrites then_writes;
    BranchWrites else_writes;
    CAIRN_TRY(CollectBranchWrites(txn->success, then_writes));
    CAIRN_TRY(CollectBranchWrites(txn->failure, else_writes));
    for (const std::string& key : then_writes.puts) {
      if (out.puts.contains(key) || DeletesCover(out.deletes, key)) return duplicate;
      out.puts.insert(key);
    }
    for (const std::string& key : else_writes.puts) {
      if (out.puts.contains(key) && !then_writes.puts.contains(key)) return duplicate;
      if (DeletesCover(out.deletes, key)) return duplicate;
      out.puts.insert(key);
    }
    for (DeleteInterval& interval : then_writes.deletes) out.deletes.push_back(std::move(interval));
    for (DeleteInterval& interval : else_writes.deletes) out.deletes.push_back(std::move(interval));
  }
  for (const RequestOp& op : ops) {
    const auto* put = std::get_if<PutRequest>(&op.request);
    if (put == nullptr) continue;
    if (out.puts.contains(put->key) || DeletesCover(out.deletes, put->key)) return duplicate;
    out.puts.insert(put->key);
  }
  return Status::Ok();
}

// Every response header of a write carries the revision the write produced; a range inside a txn
// keeps the revision it read at (set when it ran).
void SetHeaders(RangeResponse&, Revision) {}
void SetHeaders(PutResponse& response, Revision revision) { response.header.revision = revision; }
void SetHeaders(DeleteRangeResponse& response, Revision revision) {
  response.header.revision = revision;
}
void SetHeaders(TxnResponse& response, Revision revision) {
  response.header.revision = revision;
  for (ResponseOp& op : response.responses) {
    std::visit([revision](auto& nested) { SetHeaders(nested, revision); }, op.response);
  }
}

// --- Snapshot encoding --------------------------------------------------------------------------
//
// Layout (all integers little-endian):
//   u32 magic "CMVS" | u32 format version (1)
//   i64 current revision | i64 compacted revision
//   u64 timestamp count | u64 packed timestamp per revision, from max(compacted, 1) to current
//   u64 key count | per key, in increasing key order:
//       u32 key bytes | key | u32 version count | per version, in increasing (main, sub):
//           i64 main | i64 sub | u8 tombstone | i64 create revision | i64 version | i64 lease |
//           u32 value bytes | value
//   u32 crc32c of every byte before it
constexpr uint32_t kSnapshotMagic = 0x53564D43;  // "CMVS" read as little-endian bytes.
constexpr uint32_t kSnapshotFormatVersion = 1;
constexpr size_t kSnapshotHeaderBytes = 8;
constexpr size_t kSnapshotTrailerBytes = 4;
constexpr size_t kEncodedKeyBytesMin = 4 + 1 + 4;
constexpr size_t kEncodedVersionBytesMin = 8 + 8 + 1 + 8 + 8 + 8 + 4;
static_assert(kSnapshotHeaderBytes == sizeof(kSnapshotMagic) + sizeof(kSnapshotFormatVersion));

// A version's fixed-width part in a snapshot: main, sub, tombstone, create revision, version,
// lease, value length.
constexpr size_t kVersionFixedBytes = 8 + 8 + 1 + 8 + 8 + 8 + 4;
static_assert(kVersionFixedBytes == 41 + 4, "the value length is the last fixed field");


// Appends fixed-width little-endian fields and length-prefixed bytes to a string it does not own.
class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}
  void U8(uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void U32(uint32_t value) { PutFixed32(&out_, value); }
  void U64(uint64_t value) { PutFixed64(&out_, value); }
  void I64(int64_t value) { U64(static_cast<uint64_t>(value)); }
  void Bytes(std::string_view bytes) {
    CAIRN_CHECK(bytes.size() <= std::numeric_limits<uint32_t>::max(),
                "keys and values fit a u32 length (got {} bytes)", bytes.size());
    U32(static_cast<uint32_t>(bytes.size()));
    out_.append(bytes);
  }

 private:
  std::string& out_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  size_t remaining() const { return in_.size() - position_; }
  [[nodiscard]] bool U8(uint8_t& value) {
    if (remaining() < 1) return false;
    value = static_cast<uint8_t>(in_[position_++]);
    return true;
  }
  [[nodiscard]] bool U32(uint32_t& value) {
    if (remaining() < 4) return false;
    value = 0;
    for (int shift = 0; shift < 32; shift += 8) {
      value |= static_cast<uint32_t>(static_cast<uint8_t>(in_[position_++])) << shift;
    }
    return true;
  }
  [[nodiscard]] bool U64(uint64_t& value) {
    if (remaining() < 8) return false;
    value = 0;
    for (int shift = 0; shift < 64; shift += 8) {
      value |= static_cast<uint64_t>(static_cast<uint8_t>(in_[position_++])) << shift;
    }
    return true;
  }
  [[nodiscard]] bool I64(int64_t& value) {
    uint64_t raw = 0;
    if (!U64(raw)) return false;
    value = static_cast<int64_t>(raw);
    return true;
  }
  [[nodiscard]] bool Bytes(std::string& value) {
    uint32_t size = 0;
    if (!U32(size) || remaining() < size) return false;
    value.assign(in_.substr(position_, size));
    position_ += size;
    return true;
  }

 private:
  std::string_view in_;
  size_t position_ = 0;
};

Status SnapshotCorrupt(std::string_view what) {
  return Status::Corruption(fmt::format("mvcc snapshot: {}", what));
}

}  // namespace

// One write transaction in progress. Every version it appends carries write_revision; reads in
// the transaction see them, compares see the store at read_revision (before the transaction).
struct MvccStore::WriteBatch {
  Revision read_revision{};
  Revision write_revision{};
  int64_t next_sub = 0;
  bool has_put = false;
  std::vector<KeyIndex::iterator> keys_written{};  // In append order, for rollback.
};

namespace {

std::unique_ptr<ValueStorage> MakeValueStorage(const MvccOptions& options) {
  if (!options.value_storage) return std::make_unique<MemoryValueStorage>();
  return options.value_storage();
}

}  // namespace

MvccStore::MvccStore(MvccOptions options)
    : options_(std::move(options)), values_(MakeValueStorage(options_), options_.value_log) {
  CAIRN_CHECK(options_.relocation_keys_per_write > 0, "a relocation pass makes progress");
  revisions_.push_back(RevisionEntry{options_.initial_timestamp, {}});
}

MvccStore::VersionList::VersionList(const VersionList& other) : VersionList() {
  reserve(other.size_);
  std::memcpy(static_cast<void*>(data()), other.data(), other.size_ * sizeof(VersionRecord));
  size_ = other.size_;
}

MvccStore::VersionList::VersionList(VersionList&& other) noexcept
    : one_{}, size_(other.size_), capacity_(other.capacity_) {
  if (other.inline_storage()) {
    if (other.size_ == 1) one_ = other.one_;
  } else {
    many_ = other.many_;  // The heap records move here.
  }
  other.size_ = 0;
  other.capacity_ = 1;
}

MvccStore::VersionList& MvccStore::VersionList::operator=(VersionList other) noexcept {
  this->~VersionList();
  new (this) VersionList(std::move(other));
  return *this;
}

MvccStore::VersionList::~VersionList() {
  if (!inline_storage()) ::operator delete(many_);
}

void MvccStore::VersionList::Reallocate(size_t capacity) {
  CAIRN_CHECK(capacity >= size_ && capacity <= std::numeric_limits<uint32_t>::max(),
              "a version list holds its {} records in {}", size_, capacity);
  if (capacity == capacity_) return;
  if (capacity == 1) {
    VersionRecord* heap = many_;
    if (size_ == 1) std::construct_at(&one_, *heap);
    ::operator delete(heap);
  } else {
    auto* heap = static_cast<VersionRecord*>(::operator new(capacity * sizeof(VersionRecord)));
    std::memcpy(static_cast<void*>(heap), data(), size_ * sizeof(VersionRecord));
    if (!inline_storage()) ::operator delete(many_);
    many_ = heap;
  }
  capacity_ = static_cast<uint32_t>(capacity);
}

void MvccStore::VersionList::reserve(size_t count) {
  if (count > capacity_) Reallocate(count);
}

void MvccStore::VersionList::push_back(const VersionRecord& record) {
  const VersionRecord copy = record;  // `record` may lie in this list, which may move.
  // 1 (inline), 2, 4, ...: a key updated once since its last compaction takes a 2-record block.
  if (size_ == capacity_) Reallocate(2 * static_cast<size_t>(capacity_));
  std::construct_at(data() + size_, copy);
  ++size_;
}

void MvccStore::VersionList::pop_back() {
  CAIRN_CHECK(size_ > 0, "pop_back of an empty version list");
  --size_;
  if (size_ <= 1 && !inline_storage()) Reallocate(1);
}

MvccStore::VersionRecord* MvccStore::VersionList::erase(VersionRecord* first, VersionRecord* last) {
  CAIRN_CHECK(begin() <= first && first <= last && last <= end(), "erase within the list");
  const auto at = static_cast<size_t>(first - begin());
  std::memmove(static_cast<void*>(first), last,
               static_cast<size_t>(end() - last) * sizeof(VersionRecord));
  size_ -= static_cast<uint32_t>(last - first);
  if (size_ <= 1 && !inline_storage()) Reallocate(1);
  return begin() + at;
}

const MvccStore::VersionRecord* MvccStore::VisibleAt(const KeyHistory& history, Revision revision) {
  auto after = std::upper_bound(
      history.versions.begin(), history.versions.end(), revision,
      [](Revision wanted, const VersionRecord& record) { return wanted < record.main; });
  if (after == history.versions.begin()) return nullptr;
  const VersionRecord& record = *std::prev(after);
  CAIRN_CHECK(record.main <= revision, "binary search finds a version at or below {} (got {})",
              revision, record.main);
  return record.tombstone ? nullptr : &record;
}

KeyValue MvccStore::ToKeyValue(const std::string& key, const VersionRecord& record,
                               bool with_value) const {
  KeyValue kv{key, record.create_revision, record.main, record.version, {}, record.lease};
  if (with_value) values_.Read(record.value, &kv.value);
  return kv;
}

uint64_t MvccStore::VersionBytes(const std::string& key, const VersionRecord& record) {
  return key.size() + record.value.size;
}

Status MvccStore::CheckReadRevision(Revision revision, Revision newest_readable) const {
  if (revision > newest_readable) return Status::OutOfRange(std::string(kErrorFutureRevision));
  if (revision < compacted_revision_) return Status::OutOfRange(std::string(kErrorCompacted));
  return Status::Ok();
}

Result<RangeResponse> MvccStore::Range(const RangeRequest& request) const {
  CAIRN_TRY(ValidateRangeRequest(request));
  if (request.key.size() + request.range_end.size() > options_.request_bytes_max) {
    return Status::InvalidArgument(std::string(kErrorRequestTooLarge));
  }
  CAIRN_ASSIGN_OR_RETURN(RangeResponse response,
                         RangeAt(request, current_revision_, current_revision_));
  response.header.revision = current_revision_;
  return response;
}

Result<RangeResponse> MvccStore::RangeAt(const RangeRequest& request, Revision default_revision,
                                         Revision newest_readable) const {
  CAIRN_TRY(ValidateRangeRequest(request));
  Revision revision = default_revision;
  if (request.revision > Revision{0}) {
    CAIRN_TRY(CheckReadRevision(request.revision, newest_readable));
    revision = request.revision;
  }
  CAIRN_CHECK(revision >= compacted_revision_, "a range reads at or above the compacted revision "
              "(read {} compacted {})", revision, compacted_revision_);

  const bool filtered = request.min_mod_revision != Revision{0} ||
                        request.max_mod_revision != Revision{0} ||
                        request.min_create_revision != Revision{0} ||
                        request.max_create_revision != Revision{0};
  SortOrder order = request.sort_order;
  // etcd: a sort target other than the key with no order means ascending.
  if (order == SortOrder::kNone && request.sort_target != SortTarget::kKey) {
    order = SortOrder::kAscend;
  }
  const bool key_order = request.sort_target == SortTarget::kKey && order != SortOrder::kDescend;
  // Without filters or a reordering sort, collecting limit + 1 keys is enough to set `more`.
  const size_t collect_max = (request.limit > 0 && !filtered && key_order)
                                 ? static_cast<size_t>(request.limit) + 1
                                 : std::numeric_limits<size_t>::max();

  RangeResponse response;
  auto [begin, end] = KeyBounds(keys_, request.key, request.range_end);
  for (auto it = begin; it != end; ++it) {
    const VersionRecord* record = VisibleAt(it->second, revision);
    if (record == nullptr) continue;
    ++response.count;
    if (request.count_only || response.kvs.size() >= collect_max) continue;
    // keys_only drops values, but only after a sort by value has used them (as etcd does).
    response.kvs.push_back(ToKeyValue(
        it->first, *record, !request.keys_only || request.sort_target == SortTarget::kValue));
  }
  if (request.count_only) return response;

  if (filtered) {
    std::erase_if(response.kvs, [&](const KeyValue& kv) {
      return (request.min_mod_revision != Revision{0} && kv.mod_revision < request.min_mod_revision) ||
             (request.max_mod_revision != Revision{0} && kv.mod_revision > request.max_mod_revision) ||
             (request.min_create_revision != Revision{0} &&
              kv.create_revision < request.min_create_revision) ||
             (request.max_create_revision != Revision{0} &&
              kv.create_revision > request.max_create_revision);
    });
  }

  if (request.sort_target == SortTarget::kKey) {
    if (order == SortOrder::kDescend) std::reverse(response.kvs.begin(), response.kvs.end());
  } else {
    // Stable, so keys that tie on the target stay in ascending key order either way.
    auto less = [&](const KeyValue& left, const KeyValue& right) {
      switch (request.sort_target) {
        case SortTarget::kVersion:
          return left.version < right.version;
        case SortTarget::kCreate:
          return left.create_revision < right.create_revision;
        case SortTarget::kMod:
          return left.mod_revision < right.mod_revision;
        case SortTarget::kValue:
          return left.value < right.value;
        case SortTarget::kKey:
          break;
      }
      return left.key < right.key;
    };
    if (order == SortOrder::kDescend) {
      std::stable_sort(response.kvs.begin(), response.kvs.end(),
                       [&](const KeyValue& left, const KeyValue& right) { return less(right, left); });
    } else {
      std::stable_sort(response.kvs.begin(), response.kvs.end(), less);
    }
  }

  if (request.limit > 0 && response.kvs.size() > static_cast<size_t>(request.limit)) {
    response.kvs.resize(static_cast<size_t>(request.limit));
    response.more = true;
  }
  if (request.keys_only && request.sort_target == SortTarget::kValue) {
    for (KeyValue& kv : response.kvs) kv.value.clear();
  }
  return response;
}

bool MvccStore::CompareHolds(const Compare& compare, Revision revision) const {
  bool any_key = false;
  bool all_hold = true;
  auto [begin, end] = KeyBounds(keys_, compare.key, compare.range_end);
  for (auto it = begin; it != end && all_hold; ++it) {
    const VersionRecord* record = VisibleAt(it->second, revision);
    if (record == nullptr) continue;
    any_key = true;
    all_hold = CompareKeyValue(
        compare, ToKeyValue(it->first, *record, compare.target == CompareTarget::kValue));
  }
  if (any_key) return all_hold;
  // No key: a value cannot be compared (absent and empty look alike), the numbers are all zero.
  if (compare.target == CompareTarget::kValue) return false;
  return CompareKeyValue(compare, KeyValue{});
}

MvccStore::WriteBatch MvccStore::BeginWrite() const {
  WriteBatch batch;
  batch.read_revision = current_revision_;
  batch.write_revision = current_revision_.next();
  return batch;
}

// One write transaction: apply, and either roll every change back or commit the new revision and
// stamp the response headers with it.
template <typename Response, typename Apply>
Result<Response> MvccStore::RunWrite(HybridTimestamp timestamp, Apply apply) {
  WriteBatch batch = BeginWrite();
  Result<Response> response = apply(batch);
  if (!response.ok()) {
    RollBack(batch);
    return response.status();
  }
  CAIRN_TRY(FinishWrite(batch, timestamp));
  SetHeaders(*response, current_revision_);
  return response;
}

void MvccStore::AppendVersion(WriteBatch& batch, KeyIndex::iterator key, VersionRecord record) {
  VersionList& versions = key->second.versions;
  record.main = batch.write_revision;
  CAIRN_CHECK(batch.next_sub <= kSubMax, "a revision writes at most {} keys", kSubMax + 1);
  record.sub = static_cast<uint32_t>(batch.next_sub++);
  CAIRN_CHECK(versions.empty() || versions.back().main < record.main ||
                  (versions.back().main == record.main && versions.back().sub < record.sub),
              "a key's versions only grow in (main, sub) (last {}.{} new {}.{})",
              versions.empty() ? Revision{0} : versions.back().main,
              versions.empty() ? 0u : uint32_t{versions.back().sub}, record.main,
              uint32_t{record.sub});
  bytes_used_ += VersionBytes(key->first, record);
  ++versions_held_;
  versions.push_back(std::move(record));
  batch.keys_written.push_back(key);
}

void MvccStore::RollBack(WriteBatch& batch) {
  for (auto it = batch.keys_written.rbegin(); it != batch.keys_written.rend(); ++it) {
    KeyIndex::iterator key = *it;
    VersionList& versions = key->second.versions;
    CAIRN_CHECK(!versions.empty() && versions.back().main == batch.write_revision,
                "rollback only removes versions of the failed write at {}", batch.write_revision);
    bytes_used_ -= VersionBytes(key->first, versions.back());
    --versions_held_;
    values_.Release(versions.back().value);
    versions.pop_back();
    if (versions.empty()) keys_.erase(key);
  }
  batch.keys_written.clear();
}

Status MvccStore::FinishWrite(WriteBatch& batch, HybridTimestamp timestamp) {
  if (batch.keys_written.empty()) return Status::Ok();
  if (options_.quota_bytes != 0 && batch.has_put && bytes_used_ > options_.quota_bytes) {
    RollBack(batch);
    return Status::NoSpace(std::string(kErrorNoSpace));
  }
  CAIRN_CHECK(batch.write_revision == current_revision_.next(),
              "the revision moves up by exactly one per write (current {} write {})",
              current_revision_, batch.write_revision);
  current_revision_ = batch.write_revision;
  revisions_.push_back(RevisionEntry{timestamp, KeysWritten(batch.keys_written)});
  CAIRN_CHECK(revisions_.size() ==
                  static_cast<size_t>(current_revision_.value() - first_logged_revision().value() + 1),
              "one revision entry per revision from {} to {} (have {})", first_logged_revision(),
              current_revision_, revisions_.size());
  RelocateSome();
  return Status::Ok();
}

void MvccStore::RelocateSome() {
  if (!relocation_) {
    if (!values_.RelocationDue()) return;
    relocation_.emplace(Relocation{values_.SparseSegments()});
  }
  Relocation& pass = *relocation_;
  auto it = pass.resume ? keys_.lower_bound(pass.next_key) : keys_.begin();
  std::string bytes;
  const size_t budget =
      std::max(options_.relocation_keys_per_write, keys_.size() / kRelocationPassWrites);
  for (size_t visited = 0; it != keys_.end() && visited < budget; ++it, ++visited) {
    for (VersionRecord& record : it->second.versions) {
      if (record.value.size == 0 ||
          !std::binary_search(pass.victims.begin(), pass.victims.end(), record.value.segment)) {
        continue;
      }
      values_.Read(record.value, &bytes);
      const ValueRef moved = values_.Add(bytes);
      values_.Release(record.value);
      record.value = moved;
    }
  }
  if (it != keys_.end()) {
    pass.resume = true;
    pass.next_key = it->first;
    return;
  }
  // Every version was visited, and new values only go to the head: the victims are empty.
  for (uint32_t victim : pass.victims) {
    CAIRN_CHECK(!values_.Holds(victim), "a relocation pass empties value segment {}", victim);
  }
  relocation_.reset();
}

Result<PutResponse> MvccStore::ApplyPut(WriteBatch& batch, const PutRequest& request) {
  auto found = keys_.find(request.key);
  const VersionRecord* previous =
      found == keys_.end() ? nullptr : VisibleAt(found->second, batch.write_revision);
  if ((request.ignore_value || request.ignore_lease) && previous == nullptr) {
    return Status::InvalidArgument(std::string(kErrorKeyNotFound));
  }
  VersionRecord record;
  if (request.ignore_value) {
    std::string kept;  // Each version holds its own ref, so the value is stored again.
    values_.Read(previous->value, &kept);
    record.value = values_.Add(kept);
  } else {
    record.value = values_.Add(request.value);
  }
  record.lease = request.ignore_lease ? previous->lease : request.lease;
  record.create_revision = previous != nullptr ? previous->create_revision : batch.write_revision;
  record.version = previous != nullptr ? previous->version + 1 : 1;
  PutResponse response;
  // Copied before the append, which may move the version list `previous` points into.
  if (request.prev_kv && previous != nullptr) response.prev_kv = ToKeyValue(request.key, *previous);
  if (found == keys_.end()) found = keys_.emplace(request.key, KeyHistory{}).first;
  AppendVersion(batch, found, std::move(record));
  batch.has_put = true;
  return response;
}

Result<DeleteRangeResponse> MvccStore::ApplyDeleteRange(WriteBatch& batch,
                                                        const DeleteRangeRequest& request) {
  DeleteRangeResponse response;
  auto [begin, end] = KeyBounds(keys_, request.key, request.range_end);
  for (auto it = begin; it != end; ++it) {
    const VersionRecord* previous = VisibleAt(it->second, batch.write_revision);
    if (previous == nullptr) continue;
    if (request.prev_kv) response.prev_kvs.push_back(ToKeyValue(it->first, *previous));
    ++response.deleted;
    VersionRecord tombstone;
    tombstone.tombstone = true;
    AppendVersion(batch, it, std::move(tombstone));
  }
  return response;
}

Result<TxnResponse> MvccStore::ApplyTxn(WriteBatch& batch, const TxnRequest& request) {
  TxnResponse response;
  response.succeeded = std::all_of(
      request.compare.begin(), request.compare.end(),
      [&](const Compare& compare) { return CompareHolds(compare, batch.read_revision); });
  const std::vector<RequestOp>& ops = response.succeeded ? request.success : request.failure;
  for (const RequestOp& op : ops) {
    if (const auto* range = std::get_if<RangeRequest>(&op.request)) {
      // Reads see the txn's earlier writes; an explicit revision may not pass the txn's start.
      CAIRN_ASSIGN_OR_RETURN(RangeResponse inner,
                             RangeAt(*range, batch.write_revision, batch.read_revision));
      // As etcd: a range reports the revision it read at, the txn's new revision only once the
      // txn has written something before it.
      inner.header.revision = batch.next_sub > 0 ? batch.write_revision : batch.read_revision;
      response.responses.push_back(ResponseOp{std::move(inner)});
    } else if (const auto* put = std::get_if<PutRequest>(&op.request)) {
      CAIRN_ASSIGN_OR_RETURN(PutResponse inner, ApplyPut(batch, *put));
      response.responses.push_back(ResponseOp{std::move(inner)});
    } else if (const auto* del = std::get_if<DeleteRangeRequest>(&op.request)) {
      CAIRN_ASSIGN_OR_RETURN(DeleteRangeResponse inner, ApplyDeleteRange(batch, *del));
      response.responses.push_back(ResponseOp{std::move(inner)});
    } else {
      CAIRN_ASSIGN_OR_RETURN(TxnResponse inner, ApplyTxn(batch, std::get<TxnRequest>(op.request)));
      response.responses.push_back(ResponseOp{std::move(inner)});
    }
  }
  return response;
}

Result<PutResponse> MvccStore::Put(const PutRequest& request, HybridTimestamp timestamp) {
  CAIRN_TRY(ValidatePutRequest(request));
  if (request.key.size() + request.value.size() > options_.request_bytes_max) {
    return Status::InvalidArgument(std::string(kErrorRequestTooLarge));
  }
  return RunWrite<PutResponse>(
      timestamp, [&](WriteBatch& batch) { return ApplyPut(batch, request); });
}

Result<DeleteRangeResponse> MvccStore::DeleteRange(const DeleteRangeRequest& request,
                                                   HybridTimestamp timestamp) {
  CAIRN_TRY(ValidateDeleteRangeRequest(request));
  if (request.key.size() + request.range_end.size() > options_.request_bytes_max) {
    return Status::InvalidArgument(std::string(kErrorRequestTooLarge));
  }
  return RunWrite<DeleteRangeResponse>(
      timestamp, [&](WriteBatch& batch) { return ApplyDeleteRange(batch, request); });
}

Status MvccStore::ValidateTxn(const TxnRequest& request, size_t ops_budget) const {
  // etcd's checkTxnRequest: each of compare/success/failure is held to the budget, and nested
  // Txns get what is left, which also bounds the nesting depth.
  const size_t ops = std::max({request.compare.size(), request.success.size(),
                               request.failure.size()});
  if (ops > ops_budget) return Status::InvalidArgument(std::string(kErrorTooManyOps));
  for (const Compare& compare : request.compare) CAIRN_TRY(ValidateCompare(compare));
  for (const std::vector<RequestOp>* branch : {&request.success, &request.failure}) {
    for (const RequestOp& op : *branch) {
      if (const auto* range = std::get_if<RangeRequest>(&op.request)) {
        CAIRN_TRY(ValidateRangeRequest(*range));
      } else if (const auto* put = std::get_if<PutRequest>(&op.request)) {
        CAIRN_TRY(ValidatePutRequest(*put));
      } else if (const auto* del = std::get_if<DeleteRangeRequest>(&op.request)) {
        CAIRN_TRY(ValidateDeleteRangeRequest(*del));
      } else {
        CAIRN_TRY(ValidateTxn(std::get<TxnRequest>(op.request), ops_budget - ops));
      }
    }
  }
  return Status::Ok();
}

Result<TxnResponse> MvccStore::Txn(const TxnRequest& request, HybridTimestamp timestamp) {
  if (RequestBytes(request) > options_.request_bytes_max) {
    return Status::InvalidArgument(std::string(kErrorRequestTooLarge));
  }
  CAIRN_TRY(ValidateTxn(request, options_.max_txn_ops));
  BranchWrites success_writes;
  CAIRN_TRY(CollectBranchWrites(request.success, success_writes));
  BranchWrites failure_writes;
  CAIRN_TRY(CollectBranchWrites(request.failure, failure_writes));

  return RunWrite<TxnResponse>(
      timestamp, [&](WriteBatch& batch) { return ApplyTxn(batch, request); });
}

void MvccStore::CompactKey(KeyIndex::iterator key, Revision revision) {
  VersionList& versions = key->second.versions;
  auto after = std::upper_bound(
      versions.begin(), versions.end(), revision,
      [](Revision wanted, const VersionRecord& record) { return wanted < record.main; });
  size_t at_or_below = static_cast<size_t>(after - versions.begin());
  if (at_or_below == 0) return;
  // Keep the latest version at or below the revision, unless it is a tombstone.
  size_t drop = versions[at_or_below - 1].tombstone ? at_or_below : at_or_below - 1;
  for (size_t i = 0; i < drop; ++i) {
    bytes_used_ -= VersionBytes(key->first, versions[i]);
    values_.Release(versions[i].value);
  }
  versions_held_ -= drop;
  versions.erase(versions.begin(), versions.begin() + static_cast<std::ptrdiff_t>(drop));
  CAIRN_CHECK(versions.empty() || versions.front().main > revision || !versions.front().tombstone,
              "after compaction at {} no tombstone at or below it is left", revision);
  if (versions.empty()) keys_.erase(key);
}

MvccStore::KeysWritten::KeysWritten(const std::vector<KeyIndex::iterator>& keys) : KeysWritten() {
  for (KeyIndex::iterator key : keys) push_back(key);
}

MvccStore::KeysWritten::KeysWritten(KeysWritten&& other) noexcept : KeysWritten() {
  *this = std::move(other);
}

MvccStore::KeysWritten& MvccStore::KeysWritten::operator=(KeysWritten&& other) noexcept {
  if (this != &other) {
    Clear();
    count_ = other.count_;
    if (count_ == 1) {
      one_ = other.one_;
    } else {
      many_ = other.many_;
    }
    other.count_ = 0;
    other.many_ = nullptr;
  }
  return *this;
}

void MvccStore::KeysWritten::push_back(KeyIndex::iterator key) {
  if (count_ == 0) {
    one_ = key;
  } else if (count_ == 1) {
    auto* keys = new std::vector<KeyIndex::iterator>{one_, key};
    many_ = keys;
  } else {
    many_->push_back(key);
  }
  ++count_;
}

void MvccStore::KeysWritten::AppendTo(std::vector<KeyIndex::iterator>& out) const {
  if (count_ == 1) {
    out.push_back(one_);
  } else if (count_ >= 2) {
    out.insert(out.end(), many_->begin(), many_->end());
  }
}

void MvccStore::KeysWritten::Clear() {
  if (count_ >= 2) delete many_;
  count_ = 0;
  many_ = nullptr;
}

Result<CompactionResponse> MvccStore::Compact(const CompactionRequest& request) {
  const Revision revision = request.revision;
  if (revision > current_revision_) return Status::OutOfRange(std::string(kErrorFutureRevision));
  if (revision <= compacted_revision_) return Status::OutOfRange(std::string(kErrorCompacted));

  const Revision old_first = first_logged_revision();
  // Only the keys written in (compacted, revision] can have versions to drop.
  std::vector<KeyIndex::iterator> touched;
  for (int64_t r = std::max(compacted_revision_.value() + 1, old_first.value());
       r <= revision.value(); ++r) {
    RevisionEntry& entry = revisions_[static_cast<size_t>(r - old_first.value())];
    entry.keys_written.AppendTo(touched);
    entry.keys_written.Clear();
  }
  // A key written at several revisions is compacted once: compaction may erase it.
  auto address_less = [](KeyIndex::iterator left, KeyIndex::iterator right) {
    return std::less<const void*>()(&*left, &*right);
  };
  std::sort(touched.begin(), touched.end(), address_less);
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (KeyIndex::iterator key : touched) CompactKey(key, revision);

  compacted_revision_ = revision;
  const int64_t dropped = first_logged_revision().value() - old_first.value();
  CAIRN_CHECK(dropped >= 0, "the first logged revision never goes back ({} -> {})", old_first,
              first_logged_revision());
  revisions_.erase(revisions_.begin(), revisions_.begin() + dropped);
  CAIRN_CHECK(revisions_.size() ==
                  static_cast<size_t>(current_revision_.value() - first_logged_revision().value() + 1),
              "one revision entry per revision after compaction at {}", revision);
  RelocateSome();
  return CompactionResponse{ResponseHeader{current_revision_}};
}

Result<HybridTimestamp> MvccStore::TimestampOf(Revision revision) const {
  if (revision > current_revision_) return Status::OutOfRange(std::string(kErrorFutureRevision));
  if (revision < first_logged_revision()) {
    if (revision < kInitialRevision) {
      return Status::InvalidArgument(fmt::format("mvcc: revision {} is not positive", revision));
    }
    return Status::OutOfRange(std::string(kErrorCompacted));
  }
  return revisions_[static_cast<size_t>(revision.value() - first_logged_revision().value())]
      .timestamp;
}

std::string MvccStore::Serialize() const {
  SnapshotWriter writer = BeginSnapshot();
  CAIRN_CHECK(writer.Continue(std::numeric_limits<size_t>::max()),
              "an unbounded slice serializes the whole store");
  return writer.TakePending().Finish();
}

MvccStore::SnapshotWriter MvccStore::BeginSnapshot() const {
  return SnapshotWriter(*this);
}

MvccStore::SnapshotWriter::SnapshotWriter(const MvccStore& store)
    : store_(&store),
      revision_(store.current_revision_),
      compacted_(store.compacted_revision_),
      values_(store.values_.Freeze()) {
  // Reserved from the store's counters (no extra walk): bytes_used_ counts each version's key and
  // value, so this bounds the output, exactly when every key has one version. The buffer never
  // grows (a doubling string would briefly hold 1.5-3x the state during a snapshot).
  const size_t bytes = kSnapshotHeaderBytes + 8 + 8 + 8 + 8 * store.revisions_.size() + 8 +
                       8 * store.keys_.size() + kVersionFixedBytes * store.versions_held_ +
                       store.bytes_used_ + kSnapshotTrailerBytes;
  out_.reserve(bytes);
  fills_.reserve(store.versions_held_);
  Encoder encoder(out_);
  encoder.U32(kSnapshotMagic);
  encoder.U32(kSnapshotFormatVersion);
  encoder.I64(revision_.value());
  encoder.I64(compacted_.value());
  timestamps_left_ = store.revisions_.size();
  encoder.U64(timestamps_left_);
}

bool MvccStore::SnapshotWriter::stale() const {
  return store_->compacted_revision_ != compacted_;
}

bool MvccStore::SnapshotWriter::Continue(size_t bytes_max) {
  CAIRN_CHECK(!stale(), "a snapshot writer is not continued past a compaction");
  CAIRN_CHECK(store_->current_revision_ >= revision_, "the store only grows under a writer");
  if (done_) return true;
  const size_t stop_at = out_.size() + std::min(bytes_max, std::numeric_limits<size_t>::max() / 2);
  Encoder encoder(out_);
  // Timestamps of revisions first_logged_revision() .. revision_ (the deque only grows at the
  // back while no compaction runs, so indexes stay put).
  while (timestamps_left_ > 0) {
    if (out_.size() >= stop_at) return false;
    encoder.U64(store_->revisions_[next_timestamp_++].timestamp.packed());
    --timestamps_left_;
  }
  if (!keys_begun_) {
    keys_begun_ = true;
    key_count_offset_ = out_.size();
    encoder.U64(0);  // The key count, written once known.
  }
  // Keys inserted before `next_key_` since the last slice are newer than the snapshot.
  auto it = resume_ ? store_->keys_.lower_bound(next_key_) : store_->keys_.begin();
  for (; it != store_->keys_.end(); ++it) {
    if (out_.size() >= stop_at) {
      resume_ = true;
      next_key_ = it->first;
      return false;
    }
    const auto& [key, history] = *it;
    CAIRN_CHECK(!history.versions.empty(), "a key in the index has at least one version ({})",
                key);
    // Versions are in revision order: those of the snapshot are a prefix.
    const auto end = std::partition_point(
        history.versions.begin(), history.versions.end(),
        [this](const VersionRecord& record) { return record.main <= revision_; });
    const size_t count = static_cast<size_t>(end - history.versions.begin());
    if (count == 0) continue;  // Created after the snapshot's revision.
    CAIRN_CHECK(count <= std::numeric_limits<uint32_t>::max(),
                "a key's version count fits a u32 ({} has {})", key, count);
    encoder.Bytes(key);
    encoder.U32(static_cast<uint32_t>(count));
    for (auto record = history.versions.begin(); record != end; ++record) {
      // The fixed fields in one append (eight appends per version cost more than the copying).
      char fixed[kVersionFixedBytes];
      EncodeFixed64(fixed, static_cast<uint64_t>(record->main.value()));
      EncodeFixed64(fixed + 8, static_cast<uint64_t>(record->sub));
      fixed[16] = static_cast<char>(record->tombstone ? 1 : 0);
      EncodeFixed64(fixed + 17, static_cast<uint64_t>(record->create_revision.value()));
      EncodeFixed64(fixed + 25, static_cast<uint64_t>(record->version));
      EncodeFixed64(fixed + 33, static_cast<uint64_t>(record->lease));
      EncodeFixed32(fixed + 41, record->value.size);
      out_.append(fixed, kVersionFixedBytes);
      if (record->value.size == 0) {
        // The empty value (and a tombstone's): nothing to copy.
      } else if (values_.Covers(record->value)) {
        fills_.push_back(Pending::Fill{out_.size(), record->value});
        out_.resize(out_.size() + record->value.size);
      } else {
        store_->values_.AppendTo(record->value, &out_);
      }
    }
    ++keys_written_;
  }
  for (size_t i = 0; i < 8; ++i) {
    out_[key_count_offset_ + i] = static_cast<char>(keys_written_ >> (8 * i));
  }
  done_ = true;
  return true;
}

MvccStore::SnapshotWriter::Pending MvccStore::SnapshotWriter::TakePending() {
  CAIRN_CHECK(done_, "a snapshot is taken only once complete");
  Pending pending;
  pending.out_ = std::move(out_);
  pending.fills_ = std::move(fills_);
  pending.values_ = std::move(values_);
  return pending;
}

std::string MvccStore::SnapshotWriter::Pending::Finish() && {
  // Values are read in runs, not one by one: in the order they lie in the value log, neighbours
  // (at most kRunGapBytesMax apart) read together, up to kRunBytesMax at a time. A read per value
  // cost ~200k preads for a 60 MiB snapshot, most of its CPU; runs cost a few hundred.
  constexpr uint64_t kRunBytesMax = 1u << 20;
  constexpr uint64_t kRunGapBytesMax = 4u << 10;
  std::sort(fills_.begin(), fills_.end(), [](const Fill& a, const Fill& b) {
    return std::tie(a.value.segment, a.value.offset) < std::tie(b.value.segment, b.value.offset);
  });
  std::string run;
  for (size_t first = 0; first < fills_.size();) {
    const ValueRef start = fills_[first].value;
    uint64_t run_end = uint64_t{start.offset} + start.size;
    size_t last = first + 1;
    for (; last < fills_.size(); ++last) {
      const ValueRef next = fills_[last].value;
      const uint64_t next_end = uint64_t{next.offset} + next.size;
      if (next.segment != start.segment || next.offset > run_end + kRunGapBytesMax ||
          next_end - start.offset > kRunBytesMax) {
        break;
      }
      run_end = std::max(run_end, next_end);
    }
    run.resize(run_end - start.offset);
    values_.ReadRange(start.segment, start.offset, run.size(), run.data());
    for (size_t i = first; i < last; ++i) {
      const Fill& fill = fills_[i];
      CAIRN_CHECK(fill.at + fill.value.size <= out_.size(), "a value's place is in the snapshot");
      std::memcpy(out_.data() + fill.at, run.data() + (fill.value.offset - start.offset),
                  fill.value.size);
    }
    first = last;
  }
  std::vector<Fill>().swap(fills_);
  values_ = {};
  SealSnapshot(&out_);
  return std::move(out_);
}

void MvccStore::SealSnapshot(std::string* unsealed) {
  CAIRN_CHECK(unsealed->size() >= kSnapshotHeaderBytes, "a snapshot has its header");
  const uint32_t crc = crc32c::Value(*unsealed);
  Encoder(*unsealed).U32(crc);
}

Result<MvccStore> MvccStore::Restore(std::string_view snapshot, MvccOptions options) {
  if (snapshot.size() < kSnapshotHeaderBytes + kSnapshotTrailerBytes) {
    return SnapshotCorrupt("too short");
  }
  Decoder header(snapshot);
  uint32_t magic = 0;
  uint32_t format_version = 0;
  if (!header.U32(magic) || !header.U32(format_version)) return SnapshotCorrupt("no header");
  if (magic != kSnapshotMagic) return SnapshotCorrupt("bad magic");
  const std::string_view covered = snapshot.substr(0, snapshot.size() - kSnapshotTrailerBytes);
  Decoder trailer(snapshot.substr(covered.size()));
  uint32_t stored_crc = 0;
  if (!trailer.U32(stored_crc) || stored_crc != crc32c::Value(covered)) {
    return SnapshotCorrupt("checksum mismatch");
  }
  if (format_version != kSnapshotFormatVersion) {
    return Status::Unsupported(fmt::format("mvcc snapshot: format version {}", format_version));
  }

  Decoder in(covered.substr(kSnapshotHeaderBytes));
  MvccStore store(options);
  int64_t current = 0;
  int64_t compacted = 0;
  if (!in.I64(current) || !in.I64(compacted)) return SnapshotCorrupt("no revisions");
  if (current < kInitialRevision.value() || compacted < 0 || compacted > current) {
    return SnapshotCorrupt("revisions out of order");
  }
  store.current_revision_ = Revision{current};
  store.compacted_revision_ = Revision{compacted};
  const Revision first = store.first_logged_revision();
  uint64_t timestamp_count = 0;
  if (!in.U64(timestamp_count)) return SnapshotCorrupt("no timestamp count");
  if (timestamp_count != static_cast<uint64_t>(current - first.value() + 1) ||
      timestamp_count > in.remaining() / 8) {
    return SnapshotCorrupt("timestamp count does not match the revisions");
  }
  store.revisions_.clear();
  for (uint64_t i = 0; i < timestamp_count; ++i) {
    uint64_t packed = 0;
    if (!in.U64(packed)) return SnapshotCorrupt("truncated timestamps");
    store.revisions_.push_back(RevisionEntry{HybridTimestamp::FromPacked(packed), {}});
  }

  uint64_t key_count = 0;
  if (!in.U64(key_count) || key_count > in.remaining() / kEncodedKeyBytesMin) {
    return SnapshotCorrupt("bad key count");
  }
  std::string value;
  for (uint64_t k = 0; k < key_count; ++k) {
    std::string key;
    uint32_t version_count = 0;
    if (!in.Bytes(key) || !in.U32(version_count)) return SnapshotCorrupt("truncated key");
    if (key.empty()) return SnapshotCorrupt("empty key");
    if (!store.keys_.empty() && !(std::prev(store.keys_.end())->first < key)) {
      return SnapshotCorrupt("keys out of order");
    }
    if (version_count == 0 || version_count > in.remaining() / kEncodedVersionBytesMin) {
      return SnapshotCorrupt("bad version count");
    }
    KeyHistory history;
    history.versions.reserve(version_count);
    for (uint32_t v = 0; v < version_count; ++v) {
      VersionRecord record;
      int64_t main = 0;
      int64_t create = 0;
      int64_t sub = 0;
      uint8_t tombstone = 0;
      if (!in.I64(main) || !in.I64(sub) || !in.U8(tombstone) || !in.I64(create) ||
          !in.I64(record.version) || !in.I64(record.lease) || !in.Bytes(value)) {
        return SnapshotCorrupt("truncated version");
      }
      record.main = Revision{main};
      record.create_revision = Revision{create};
      if (tombstone > 1) return SnapshotCorrupt("bad tombstone flag");
      record.tombstone = tombstone == 1;
      if (main <= kInitialRevision.value() || main > current || sub < 0 || sub > kSubMax) {
        return SnapshotCorrupt("version revision out of range");
      }
      record.sub = static_cast<uint32_t>(sub);
      if (!history.versions.empty()) {
        const VersionRecord& last = history.versions.back();
        if (!(last.main < record.main || (last.main == record.main && last.sub < record.sub))) {
          return SnapshotCorrupt("versions out of order");
        }
      }
      if (record.tombstone) {
        if (!value.empty() || record.version != 0 || create != 0 || record.lease != 0) {
          return SnapshotCorrupt("tombstone with data");
        }
      } else if (record.version < 1 || create <= kInitialRevision.value() || create > main) {
        return SnapshotCorrupt("bad version numbers");
      }
      if (main <= compacted && (v != 0 || record.tombstone)) {
        return SnapshotCorrupt("history below the compacted revision");
      }
      record.value = store.values_.Add(value);
      store.bytes_used_ += VersionBytes(key, record);
      ++store.versions_held_;
      history.versions.push_back(std::move(record));
    }
    auto inserted = store.keys_.emplace_hint(store.keys_.end(), std::move(key), std::move(history));
    for (const VersionRecord& record : inserted->second.versions) {
      if (record.main.value() <= compacted) continue;
      store.revisions_[static_cast<size_t>(record.main.value() - first.value())]
          .keys_written.push_back(inserted);
    }
  }
  if (in.remaining() != 0) return SnapshotCorrupt("trailing bytes");
  return store;
}

}  // namespace cairn::mvcc
