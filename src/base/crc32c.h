// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), as used by iSCSI, ext4 and
// leveldb. Every record Cairn writes to disk carries one.
//
// Design note. On x86-64 CPUs with SSE4.2 the crc32 instruction computes it eight bytes at a time;
// elsewhere a slicing-by-8 table is used. The choice is made once at start-up from CPUID, so one
// binary runs everywhere. Both paths are checked against the published test vectors (RFC 3720
// appendix B.4) in crc32c_test.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cairn::crc32c {

// Extends `crc` (the CRC32C of some earlier bytes, 0 for none) with `size` more bytes.
uint32_t Extend(uint32_t crc, const void* data, size_t size);

inline uint32_t Value(const void* data, size_t size) { return Extend(0, data, size); }
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// Which implementation Extend uses on this machine: "sse4.2" or "table".
const char* Implementation();

// The portable implementation, exposed so tests can check it on machines that have SSE4.2 too.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t size);

}  // namespace cairn::crc32c
