#include "mvcc/value_log.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>

#include "base/check.h"

namespace cairn::mvcc {

void MemoryValueStorage::Append(uint32_t segment, std::string_view bytes) {
  std::vector<Chunk>& chunks = segments_[segment];
  if (bytes.empty()) return;  // No empty chunks: a read goes on from one chunk into the next.
  const uint64_t start = chunks.empty() ? 0 : chunks.back().start + chunks.back().bytes->size();
  chunks.push_back(Chunk{start, std::make_shared<const std::string>(bytes)});
}

void MemoryValueStorage::ReadFrom(const Segments& segments, uint32_t segment, uint32_t offset,
                                  size_t size, char* out) {
  auto found = segments.find(segment);
  CAIRN_CHECK(found != segments.end(), "value segment {} holds [{}, +{})", segment, offset, size);
  const std::vector<Chunk>& chunks = found->second;
  auto after = std::upper_bound(chunks.begin(), chunks.end(), uint64_t{offset},
                                [](uint64_t at, const Chunk& chunk) { return at < chunk.start; });
  CAIRN_CHECK(after != chunks.begin(), "value segment {} holds [{}, +{})", segment, offset, size);
  uint64_t at = offset;
  for (auto chunk = std::prev(after); size > 0; ++chunk) {
    // Chunks are contiguous: after the first, a read goes on at the start of the next one.
    CAIRN_CHECK(chunk != chunks.end() && at - chunk->start < chunk->bytes->size(),
                "value segment {} holds [{}, +{})", segment, offset, size);
    const uint64_t within = at - chunk->start;
    const size_t piece = std::min<uint64_t>(size, chunk->bytes->size() - within);
    std::memcpy(out, chunk->bytes->data() + within, piece);
    out += piece;
    at += piece;
    size -= piece;
  }
}

void MemoryValueStorage::Read(uint32_t segment, uint32_t offset, size_t size, char* out) const {
  ReadFrom(segments_, segment, offset, size, out);
}

void MemoryValueStorage::Remove(uint32_t segment) {
  CAIRN_CHECK(segments_.erase(segment) == 1, "a removed value segment ({}) exists", segment);
}

namespace {

class MemoryValueReader final : public ValueReader {
 public:
  explicit MemoryValueReader(MemoryValueStorage::Segments segments)
      : segments_(std::move(segments)) {}
  void Read(uint32_t segment, uint32_t offset, size_t size, char* out) const override {
    MemoryValueStorage::ReadFrom(segments_, segment, offset, size, out);
  }

 private:
  const MemoryValueStorage::Segments segments_;  // Shares the chunks.
};

}  // namespace

std::unique_ptr<ValueReader> MemoryValueStorage::OpenReader() const {
  return std::make_unique<MemoryValueReader>(segments_);
}

ValueLog::ValueLog(std::unique_ptr<ValueStorage> storage, ValueLogOptions options)
    : storage_(std::move(storage)), options_(options) {
  CAIRN_CHECK(storage_ != nullptr, "a value log has a storage");
  CAIRN_CHECK(options_.segment_bytes > 0 && options_.segment_bytes <= (1u << 31),
              "value segments hold 1 byte to 2 GiB (got {})", options_.segment_bytes);
  segments_[head_] = Segment{};
}

ValueRef ValueLog::Add(std::string_view value) {
  if (value.empty()) return ValueRef{};
  CAIRN_CHECK(value.size() <= std::numeric_limits<uint32_t>::max(),
              "values fit a u32 length (got {} bytes)", value.size());
  Segment& head = segments_.at(head_);
  CAIRN_CHECK(head.bytes < options_.segment_bytes, "the head segment is sealed once full");
  const ValueRef ref{head_, static_cast<uint32_t>(head.bytes), static_cast<uint32_t>(value.size())};
  head_buffer_.append(value);
  head.bytes += value.size();
  head.live_bytes += value.size();
  live_bytes_ += value.size();
  if (head.bytes >= options_.segment_bytes) {
    SealHead();
  } else if (head_buffer_.size() >= options_.flush_bytes) {
    Flush();
  }
  return ref;
}

void ValueLog::Flush() const {
  if (head_buffer_.empty()) return;
  storage_->Append(head_, head_buffer_);
  head_flushed_ += head_buffer_.size();
  // A large value can leave a large buffer behind: do not keep it.
  if (head_buffer_.capacity() > 2 * options_.flush_bytes) {
    std::string().swap(head_buffer_);
  } else {
    head_buffer_.clear();
  }
}

void ValueLog::SealHead() {
  Flush();
  Segment& head = segments_.at(head_);
  // Sealed right after an Add, so the value just added is live.
  CAIRN_CHECK(head.live_bytes > 0, "a segment is sealed holding the value just added");
  head.sealed = true;
  Account(head);
  CAIRN_CHECK(head_ < std::numeric_limits<uint32_t>::max(), "value segment numbers run out");
  ++head_;
  segments_[head_] = Segment{};
  head_flushed_ = 0;
}

void ValueLog::Account(const Segment& segment) {
  if (Sparse(segment)) sparse_garbage_bytes_ += segment.bytes - segment.live_bytes;
}

void ValueLog::Unaccount(const Segment& segment) {
  if (Sparse(segment)) sparse_garbage_bytes_ -= segment.bytes - segment.live_bytes;
}

void ValueLog::Release(ValueRef ref) {
  if (ref.size == 0) return;
  auto found = segments_.find(ref.segment);
  CAIRN_CHECK(found != segments_.end(), "a released value's segment {} is held", ref.segment);
  Segment& segment = found->second;
  CAIRN_CHECK(segment.live_bytes >= ref.size && ref.offset + uint64_t{ref.size} <= segment.bytes,
              "released value [{}, +{}) lies in segment {}'s live bytes ({} of {})", ref.offset,
              ref.size, ref.segment, segment.live_bytes, segment.bytes);
  Unaccount(segment);
  segment.live_bytes -= ref.size;
  live_bytes_ -= ref.size;
  garbage_bytes_ += ref.size;
  if (segment.sealed && segment.live_bytes == 0) {
    garbage_bytes_ -= segment.bytes;
    storage_->Remove(ref.segment);
    segments_.erase(found);
    return;
  }
  Account(segment);
}

void ValueLog::CopyOut(ValueRef ref, char* out) const {
  if (ref.segment == head_ && ref.offset >= head_flushed_) {
    const uint64_t at = ref.offset - head_flushed_;
    CAIRN_CHECK(at + ref.size <= head_buffer_.size(), "a head value lies in the head buffer");
    std::memcpy(out, head_buffer_.data() + at, ref.size);
    return;
  }
  CAIRN_CHECK(segments_.contains(ref.segment), "a read value's segment {} is held", ref.segment);
  storage_->Read(ref.segment, ref.offset, ref.size, out);
}

void ValueLog::Read(ValueRef ref, std::string* out) const {
  out->resize(ref.size);
  if (ref.size > 0) CopyOut(ref, out->data());
}

void ValueLog::AppendTo(ValueRef ref, std::string* out) const {
  if (ref.size == 0) return;
  const size_t at = out->size();
  out->resize(at + ref.size);
  CopyOut(ref, out->data() + at);
}

ValueLog::Frozen ValueLog::Freeze() const {
  Flush();
  return Frozen{storage_->OpenReader(), head_, head_flushed_};
}

bool ValueLog::RelocationDue() const {
  return sparse_garbage_bytes_ >= options_.segment_bytes;
}

std::vector<uint32_t> ValueLog::SparseSegments() const {
  std::vector<uint32_t> sparse;
  for (const auto& [number, segment] : segments_) {
    if (Sparse(segment)) sparse.push_back(number);
  }
  return sparse;
}

}  // namespace cairn::mvcc
