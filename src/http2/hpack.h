// HPACK (RFC 7541): the header compression of HTTP/2, as Cairn's client port needs it.
//
// Design note. The decoder is complete: static and dynamic tables, table-size updates, integers,
// plain and Huffman-coded strings, every representation — clients (grpc-go under etcdctl,
// grpc-js under the npm etcd3 client, gRPC C++) index and Huffman-code freely. It is one
// connection's decoding context: blocks must be decoded in the order they arrived, including blocks
// of streams that are then refused, or the dynamic table drifts from the peer's.
//
// The encoder (HpackEncoder) never Huffman-codes (always valid; the few short fields gain little)
// and indexes only the fields its caller marks as repeating — a client's method, path, authority
// and content type — so a later request costs a byte per such field. The server's responses use
// no indexing at all (their trailers may wait behind flow control while later blocks go out, and
// a block that refers to the table must not overtake the block that filled it).
//
// Bounds: a decoded header list larger than `header_list_bytes_max` (RFC 7541's entry size: name +
// value + 32 per field) is still decoded to keep the table in step but reported as kOutOfRange;
// integers above 2^32 and strings longer than the block are compression errors (kCorruption).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cairn::http2 {

struct HeaderField {
  std::string name;
  std::string value;
  bool operator==(const HeaderField&) const = default;
};

// RFC 7541 §4.1: the size a field occupies in a dynamic table or a header list.
inline size_t HeaderFieldBytes(std::string_view name, std::string_view value) {
  return name.size() + value.size() + 32;
}

class HpackDecoder {
 public:
  // `table_bytes_max` is what this side advertised as SETTINGS_HEADER_TABLE_SIZE (4096 unless it
  // sent another value).
  explicit HpackDecoder(size_t table_bytes_max = 4096, size_t header_list_bytes_max = 64 * 1024);

  // Decodes one complete header block into `fields` (cleared first). kCorruption: the block breaks
  // HPACK (a connection error, COMPRESSION_ERROR); kOutOfRange: the list is larger than allowed
  // (the table is still up to date: the connection survives, the stream does not).
  Status Decode(std::string_view block, std::vector<HeaderField>* fields);

  size_t dynamic_table_bytes() const { return table_bytes_; }
  size_t dynamic_table_entries() const { return table_.size(); }

 private:
  // Index 1..61: the static table; 62..: the dynamic table, newest first.
  const HeaderField* Lookup(uint64_t index) const;
  void Insert(HeaderField field);
  void EvictTo(size_t bytes);

  const size_t settings_table_bytes_max_;
  const size_t header_list_bytes_max_;
  size_t table_bytes_max_;  // Lowered by size updates, never above the settings value.
  size_t table_bytes_ = 0;
  std::deque<HeaderField> table_;  // front(): the newest entry (index 62).
};

// One connection's encoding context: a model of the table the peer's decoder keeps.
class HpackEncoder {
 public:
  // The peer's SETTINGS_HEADER_TABLE_SIZE (4096 until it sends one). The table shrinks at once;
  // the next header block starts with the size update(s) that tell the peer (TakeDueUpdate).
  void SetPeerTableBytes(size_t bytes);
  // Appends the table size update(s) owed to the peer, if any: the start of the next block.
  void TakeDueUpdate(std::string* out);
  // Appends one field. A field in the static table, or (with `index`) already in the dynamic
  // table, is one index; with `index` a new field is added to the table if it fits.
  void Encode(std::string_view name, std::string_view value, bool index, std::string* out);

  size_t table_bytes() const { return table_bytes_; }

 private:
  void EvictTo(size_t bytes);

  static constexpr size_t kTableBytesMax = 4096;  // Never more, whatever the peer allows.
  size_t table_bytes_max_ = kTableBytesMax;
  size_t smallest_since_update_ = kTableBytesMax;
  bool update_due_ = false;
  size_t table_bytes_ = 0;
  std::deque<HeaderField> table_;  // front(): the newest entry (index 62).
};

// Integer representation with an N-bit prefix (§5.1); `first_byte_flags` fills the bits above it.
void EncodeHpackInteger(uint64_t value, int prefix_bits, uint8_t first_byte_flags,
                        std::string* out);
// A field as "literal without indexing, new name", neither string Huffman-coded (§6.2.2).
void EncodeLiteralField(std::string_view name, std::string_view value, std::string* out);
// A field as "indexed" from the static table (§6.1): `index` 1..61.
void EncodeIndexedField(uint8_t index, std::string* out);
// A dynamic table size update (§6.3).
void EncodeTableSizeUpdate(uint64_t bytes, std::string* out);

// The Huffman code of Appendix B. Decoding fails (false) on the EOS symbol, on padding longer
// than 7 bits or on padding that is not the most significant bits of EOS.
bool HuffmanDecode(std::string_view in, std::string* out);
void HuffmanEncode(std::string_view in, std::string* out);

}  // namespace cairn::http2
