#include "http2/hpack.h"

#include <algorithm>
#include <array>

namespace cairn::http2 {
namespace {

// RFC 7541 Appendix A.
struct StaticEntry {
  std::string_view name;
  std::string_view value;
};
constexpr std::array<StaticEntry, 61> kStaticTable = {{
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
}};

// Appendix B gives a canonical Huffman code: codes of one length are consecutive, in symbol
// order, and each length's first code follows the last code of the length before. So the code
// lengths below (symbol 0..255, then EOS) determine every code; the tests check the result
// against the RFC's examples.
constexpr int kSymbols = 257;
constexpr int kEos = 256;
constexpr int kCodeBitsMax = 30;
constexpr std::array<uint8_t, kSymbols> kCodeBits = {
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6,  10, 10, 12, 13, 6,  8,  11, 10, 10, 8,  11, 8,  6,  6,  6,
    5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8,  15, 6,  12, 10, 13, 6,  7,  7,  7,  7,  7,  7,
    7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8,  13, 19, 13, 14, 6,
    15, 5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,  6,  7,  6,  5,  5,  6,  7,  7,
    7,  7,  7,  15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
    23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
    21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30};

struct HuffmanTables {
  std::array<uint32_t, kSymbols> code{};                // Per symbol, right-aligned.
  std::array<uint32_t, kCodeBitsMax + 2> first_code{};  // Per length: its first code.
  std::array<uint32_t, kCodeBitsMax + 2> count{};       // Per length: how many codes.
  std::array<uint32_t, kCodeBitsMax + 2> offset{};      // Per length: index into `sorted`.
  std::array<uint16_t, kSymbols> sorted{};              // Symbols by (length, value).
};

HuffmanTables BuildHuffmanTables() {
  HuffmanTables t;
  for (int s = 0; s < kSymbols; ++s) t.count[kCodeBits[s]]++;
  uint32_t code = 0;
  uint32_t index = 0;
  for (int bits = 1; bits <= kCodeBitsMax; ++bits) {
    t.first_code[bits] = code;
    t.offset[bits] = index;
    for (int s = 0; s < kSymbols; ++s) {
      if (kCodeBits[s] != bits) continue;
      t.code[s] = code++;
      t.sorted[index++] = static_cast<uint16_t>(s);
    }
    code <<= 1;
  }
  CAIRN_CHECK(index == kSymbols, "every HPACK Huffman symbol has a code");
  // A complete prefix code: the last (EOS) code is all ones.
  CAIRN_CHECK(t.code[kEos] == (1u << kCodeBitsMax) - 1, "the HPACK Huffman code is complete");
  return t;
}

const HuffmanTables& Tables() {
  static const HuffmanTables tables = BuildHuffmanTables();
  return tables;
}

constexpr uint64_t kIntegerMax = uint64_t{1} << 32;

// Reads an integer with an N-bit prefix at data[*pos]; false if truncated or too large.
bool DecodeInteger(std::string_view data, size_t* pos, int prefix_bits, uint64_t* value) {
  if (*pos >= data.size()) return false;
  const uint64_t prefix_max = (uint64_t{1} << prefix_bits) - 1;
  uint64_t v = static_cast<uint8_t>(data[*pos]) & prefix_max;
  ++*pos;
  if (v < prefix_max) {
    *value = v;
    return true;
  }
  for (int shift = 0; shift <= 28; shift += 7) {
    if (*pos >= data.size()) return false;
    const uint8_t byte = static_cast<uint8_t>(data[(*pos)++]);
    v += uint64_t{byte & 0x7fu} << shift;
    if (v > kIntegerMax) return false;
    if ((byte & 0x80) == 0) {
      *value = v;
      return true;
    }
  }
  return false;  // More continuation bytes than any value up to 2^32 needs.
}

bool DecodeString(std::string_view data, size_t* pos, std::string* out) {
  if (*pos >= data.size()) return false;
  const bool huffman = (static_cast<uint8_t>(data[*pos]) & 0x80) != 0;
  uint64_t length = 0;
  if (!DecodeInteger(data, pos, 7, &length)) return false;
  if (length > data.size() - *pos) return false;
  const std::string_view bytes = data.substr(*pos, length);
  *pos += length;
  out->clear();
  if (!huffman) {
    out->assign(bytes);
    return true;
  }
  return HuffmanDecode(bytes, out);
}

}  // namespace

bool HuffmanDecode(std::string_view in, std::string* out) {
  const HuffmanTables& t = Tables();
  out->reserve(out->size() + in.size() * 8 / 5);
  uint32_t code = 0;
  int bits = 0;
  for (const char c : in) {
    const auto byte = static_cast<uint8_t>(c);
    for (int b = 7; b >= 0; --b) {
      code = (code << 1) | ((byte >> b) & 1u);
      ++bits;
      // Canonical code: a `bits`-long prefix is a whole code when it falls in that length's range.
      if (code - t.first_code[bits] < t.count[bits]) {
        const uint16_t symbol = t.sorted[t.offset[bits] + (code - t.first_code[bits])];
        if (symbol == kEos) return false;  // §5.2: EOS in a string is a decoding error.
        out->push_back(static_cast<char>(symbol));
        code = 0;
        bits = 0;
      } else if (bits >= kCodeBitsMax) {
        return false;  // Unreachable for a complete code; kept as a bound on `bits`.
      }
    }
  }
  // §5.2: at most 7 bits of padding, all ones (the most significant bits of EOS).
  return bits <= 7 && code == (1u << bits) - 1;
}

void HuffmanEncode(std::string_view in, std::string* out) {
  const HuffmanTables& t = Tables();
  uint64_t pending = 0;
  int pending_bits = 0;
  for (const char c : in) {
    const auto symbol = static_cast<uint8_t>(c);
    pending = (pending << kCodeBits[symbol]) | t.code[symbol];
    pending_bits += kCodeBits[symbol];
    while (pending_bits >= 8) {
      pending_bits -= 8;
      out->push_back(static_cast<char>((pending >> pending_bits) & 0xff));
    }
  }
  if (pending_bits > 0) {
    const int pad = 8 - pending_bits;
    out->push_back(static_cast<char>(((pending << pad) | ((1u << pad) - 1)) & 0xff));
  }
}

void EncodeHpackInteger(uint64_t value, int prefix_bits, uint8_t first_byte_flags,
                        std::string* out) {
  const uint64_t prefix_max = (uint64_t{1} << prefix_bits) - 1;
  if (value < prefix_max) {
    out->push_back(static_cast<char>(first_byte_flags | value));
    return;
  }
  out->push_back(static_cast<char>(first_byte_flags | prefix_max));
  value -= prefix_max;
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

void EncodeLiteralField(std::string_view name, std::string_view value, std::string* out) {
  out->push_back(0);  // Literal without indexing, new name.
  EncodeHpackInteger(name.size(), 7, 0, out);
  out->append(name);
  EncodeHpackInteger(value.size(), 7, 0, out);
  out->append(value);
}

void EncodeIndexedField(uint8_t index, std::string* out) {
  CAIRN_CHECK(index >= 1 && index <= kStaticTable.size(), "a static table index is 1..61");
  EncodeHpackInteger(index, 7, 0x80, out);
}

void EncodeTableSizeUpdate(uint64_t bytes, std::string* out) {
  EncodeHpackInteger(bytes, 5, 0x20, out);
}

namespace {

// Index of `name` (and, if `value_too`, of the exact field) in the static table; 0 if absent.
uint8_t FindStatic(std::string_view name, std::string_view value, bool value_too) {
  uint8_t name_index = 0;
  for (size_t i = 0; i < kStaticTable.size(); ++i) {
    if (kStaticTable[i].name != name) continue;
    if (name_index == 0) name_index = static_cast<uint8_t>(i + 1);
    if (!value_too) return name_index;
    if (kStaticTable[i].value == value) return static_cast<uint8_t>(i + 1);
  }
  return value_too ? 0 : name_index;
}

}  // namespace

void HpackEncoder::SetPeerTableBytes(size_t bytes) {
  table_bytes_max_ = std::min(bytes, kTableBytesMax);
  smallest_since_update_ = std::min(smallest_since_update_, table_bytes_max_);
  update_due_ = true;
  EvictTo(table_bytes_max_);
}

void HpackEncoder::TakeDueUpdate(std::string* out) {
  if (!update_due_) return;
  // §4.2: the smallest size since the last update first, then the final one.
  if (smallest_since_update_ < table_bytes_max_) EncodeTableSizeUpdate(smallest_since_update_, out);
  EncodeTableSizeUpdate(table_bytes_max_, out);
  update_due_ = false;
  smallest_since_update_ = table_bytes_max_;
}

void HpackEncoder::EvictTo(size_t bytes) {
  while (table_bytes_ > bytes) {
    CAIRN_CHECK(!table_.empty(), "HPACK encoder table bytes are accounted to its entries");
    table_bytes_ -= HeaderFieldBytes(table_.back().name, table_.back().value);
    table_.pop_back();
  }
}

void HpackEncoder::Encode(std::string_view name, std::string_view value, bool index,
                          std::string* out) {
  if (const uint8_t exact = FindStatic(name, value, true); exact != 0) {
    return EncodeIndexedField(exact, out);
  }
  if (index) {
    for (size_t i = 0; i < table_.size(); ++i) {
      if (table_[i].name == name && table_[i].value == value) {
        return EncodeHpackInteger(kStaticTable.size() + 1 + i, 7, 0x80, out);
      }
    }
  }
  const uint8_t name_index = FindStatic(name, value, false);
  const size_t bytes = HeaderFieldBytes(name, value);
  const bool insert = index && bytes <= table_bytes_max_;
  // §6.2.1 literal with incremental indexing (01, 6-bit name index), or §6.2.2 without (0000).
  EncodeHpackInteger(name_index, insert ? 6 : 4, insert ? 0x40 : 0x00, out);
  if (name_index == 0) {
    EncodeHpackInteger(name.size(), 7, 0, out);
    out->append(name);
  }
  EncodeHpackInteger(value.size(), 7, 0, out);
  out->append(value);
  if (insert) {
    EvictTo(table_bytes_max_ - bytes);
    table_bytes_ += bytes;
    table_.push_front({std::string(name), std::string(value)});
  }
}

HpackDecoder::HpackDecoder(size_t table_bytes_max, size_t header_list_bytes_max)
    : settings_table_bytes_max_(table_bytes_max),
      header_list_bytes_max_(header_list_bytes_max),
      table_bytes_max_(table_bytes_max) {}

const HeaderField* HpackDecoder::Lookup(uint64_t index) const {
  static const std::vector<HeaderField> statics = [] {
    std::vector<HeaderField> fields;
    for (const auto& entry : kStaticTable) {
      fields.push_back({std::string(entry.name), std::string(entry.value)});
    }
    return fields;
  }();
  if (index == 0) return nullptr;
  if (index <= statics.size()) return &statics[index - 1];
  const uint64_t dynamic = index - statics.size() - 1;
  if (dynamic >= table_.size()) return nullptr;
  return &table_[dynamic];
}

void HpackDecoder::EvictTo(size_t bytes) {
  while (table_bytes_ > bytes) {
    CAIRN_CHECK(!table_.empty(), "HPACK table bytes are accounted to its entries");
    table_bytes_ -= HeaderFieldBytes(table_.back().name, table_.back().value);
    table_.pop_back();
  }
}

void HpackDecoder::Insert(HeaderField field) {
  const size_t bytes = HeaderFieldBytes(field.name, field.value);
  // §4.4: an entry larger than the table empties it and is not added.
  if (bytes > table_bytes_max_) {
    EvictTo(0);
    return;
  }
  EvictTo(table_bytes_max_ - bytes);
  table_bytes_ += bytes;
  table_.push_front(std::move(field));
}

Status HpackDecoder::Decode(std::string_view block, std::vector<HeaderField>* fields) {
  fields->clear();
  size_t pos = 0;
  size_t list_bytes = 0;
  bool too_large = false;
  auto corrupt = [](std::string_view what) {
    return Status::Corruption(fmt::format("HPACK: {}", what));
  };
  // Counts a field toward the list and keeps it, unless the list is already too large: then
  // nothing is copied (a one-byte index to a 4 KiB entry must not cost a 4 KiB copy).
  auto emit = [&](const HeaderField& field) {
    list_bytes += HeaderFieldBytes(field.name, field.value);
    if (list_bytes > header_list_bytes_max_) too_large = true;
    if (!too_large) fields->push_back(field);
  };
  while (pos < block.size()) {
    const auto first = static_cast<uint8_t>(block[pos]);
    uint64_t index = 0;
    if (first & 0x80) {  // §6.1 indexed field.
      if (!DecodeInteger(block, &pos, 7, &index)) return corrupt("truncated index");
      const HeaderField* field = Lookup(index);
      if (field == nullptr) return corrupt(fmt::format("index {} is not in the tables", index));
      emit(*field);
      continue;
    }
    if ((first & 0xe0) == 0x20) {  // §6.3 dynamic table size update.
      if (!fields->empty() || list_bytes > 0) {
        return corrupt("a table size update after a field");  // §4.2.
      }
      if (!DecodeInteger(block, &pos, 5, &index)) return corrupt("truncated table size update");
      if (index > settings_table_bytes_max_) {
        return corrupt(
            fmt::format("table size {} above the advertised {}", index, settings_table_bytes_max_));
      }
      table_bytes_max_ = index;
      EvictTo(table_bytes_max_);
      continue;
    }
    // §6.2: literal with incremental indexing (01), without indexing (0000), never indexed (0001).
    const bool indexing = (first & 0xc0) == 0x40;
    if (!DecodeInteger(block, &pos, indexing ? 6 : 4, &index)) return corrupt("truncated name");
    HeaderField field;
    if (index != 0) {
      const HeaderField* named = Lookup(index);
      if (named == nullptr)
        return corrupt(fmt::format("name index {} is not in the tables", index));
      field.name = named->name;
    } else if (!DecodeString(block, &pos, &field.name)) {
      return corrupt("bad name string");
    }
    if (!DecodeString(block, &pos, &field.value)) return corrupt("bad value string");
    emit(field);
    if (indexing) Insert(std::move(field));
  }
  if (too_large) {
    fields->clear();
    return Status::OutOfRange(fmt::format("header list of {} bytes is larger than the {} allowed",
                                          list_bytes, header_list_bytes_max_));
  }
  return Status::Ok();
}

}  // namespace cairn::http2
