// Fixed-width little-endian encoding for on-disk formats.
//
// Every on-disk integer in Cairn is little-endian and fixed-width; these helpers are the only way
// formats read and write them, so a format's layout is stated once, in its format header.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

namespace cairn {

static_assert(std::endian::native == std::endian::little,
              "Cairn's on-disk formats are little-endian and it builds only on little-endian CPUs");

inline void EncodeFixed32(char* dst, uint32_t value) { std::memcpy(dst, &value, sizeof value); }
inline void EncodeFixed64(char* dst, uint64_t value) { std::memcpy(dst, &value, sizeof value); }

inline uint32_t DecodeFixed32(const char* src) {
  uint32_t value;
  std::memcpy(&value, src, sizeof value);
  return value;
}
inline uint64_t DecodeFixed64(const char* src) {
  uint64_t value;
  std::memcpy(&value, src, sizeof value);
  return value;
}

inline void PutFixed32(std::string* dst, uint32_t value) {
  char buffer[sizeof value];
  EncodeFixed32(buffer, value);
  dst->append(buffer, sizeof buffer);
}
inline void PutFixed64(std::string* dst, uint64_t value) {
  char buffer[sizeof value];
  EncodeFixed64(buffer, value);
  dst->append(buffer, sizeof buffer);
}

}  // namespace cairn
