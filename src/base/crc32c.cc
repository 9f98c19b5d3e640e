#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace cairn::crc32c {
namespace {

constexpr uint32_t kReflectedPolynomial = 0x82F63B78u;

// tables[k][b]: the CRC of byte b followed by k zero bytes; slicing-by-8 folds 8 bytes per step.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> entries{};
  constexpr Tables() {
    for (uint32_t byte = 0; byte < 256; ++byte) {
      uint32_t crc = byte;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kReflectedPolynomial : 0u);
      entries[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; ++byte) {
      for (size_t k = 1; k < 8; ++k) {
        const uint32_t previous = entries[k - 1][byte];
        entries[k][byte] = (previous >> 8) ^ entries[0][previous & 0xFFu];
      }
    }
  }
};

constexpr Tables kTables;

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t crc, const void* data,
                                                           size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint64_t state = ~crc;
  while (size > 0 && (reinterpret_cast<uintptr_t>(bytes) & 7u) != 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), *bytes++);
    --size;
  }
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, bytes, 8);
    state = _mm_crc32_u64(state, word);
    bytes += 8;
    size -= 8;
  }
  while (size > 0) {
    state = _mm_crc32_u8(static_cast<uint32_t>(state), *bytes++);
    --size;
  }
  return ~static_cast<uint32_t>(state);
}

bool HasHardwareCrc() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#else
bool HasHardwareCrc() { return false; }
uint32_t ExtendHardware(uint32_t crc, const void* data, size_t size) {
  return ExtendPortable(crc, data, size);
}
#endif

using ExtendFunction = uint32_t (*)(uint32_t, const void*, size_t);

const ExtendFunction kExtend = HasHardwareCrc() ? &ExtendHardware : &ExtendPortable;

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t size) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint32_t state = ~crc;
  const auto& t = kTables.entries;
  while (size >= 8) {
    uint32_t low;
    uint32_t high;
    std::memcpy(&low, bytes, 4);
    std::memcpy(&high, bytes + 4, 4);
    low ^= state;  // Cairn only builds on little-endian machines (static_assert in coding.h).
    state = t[7][low & 0xFFu] ^ t[6][(low >> 8) & 0xFFu] ^ t[5][(low >> 16) & 0xFFu] ^
            t[4][low >> 24] ^ t[3][high & 0xFFu] ^ t[2][(high >> 8) & 0xFFu] ^
            t[1][(high >> 16) & 0xFFu] ^ t[0][high >> 24];
    bytes += 8;
    size -= 8;
  }
  while (size > 0) {
    state = (state >> 8) ^ t[0][(state ^ *bytes++) & 0xFFu];
    --size;
  }
  return ~state;
}

uint32_t Extend(uint32_t crc, const void* data, size_t size) { return kExtend(crc, data, size); }

const char* Implementation() { return kExtend == &ExtendPortable ? "table" : "sse4.2"; }

}  // namespace cairn::crc32c
