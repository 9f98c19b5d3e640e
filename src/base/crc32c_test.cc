#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace cairn::crc32c {
namespace {

using ExtendFn = uint32_t (*)(uint32_t, const void*, size_t);

// Both implementations must agree with the published vectors.
class Crc32cVectors : public ::testing::TestWithParam<ExtendFn> {
 protected:
  uint32_t Crc(const std::vector<uint8_t>& bytes) { return GetParam()(0, bytes.data(), bytes.size()); }
};

TEST_P(Crc32cVectors, Rfc3720ThirtyTwoZeroBytes) {
  EXPECT_EQ(0x8A9136AAu, Crc(std::vector<uint8_t>(32, 0x00)));
}

TEST_P(Crc32cVectors, Rfc3720ThirtyTwoOnesBytes) {
  EXPECT_EQ(0x62A8AB43u, Crc(std::vector<uint8_t>(32, 0xFF)));
}

TEST_P(Crc32cVectors, Rfc3720IncreasingBytes) {
  std::vector<uint8_t> bytes(32);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(0x46DD794Eu, Crc(bytes));
}

TEST_P(Crc32cVectors, Rfc3720DecreasingBytes) {
  std::vector<uint8_t> bytes(32);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(0x113FDB5Cu, Crc(bytes));
}

TEST_P(Crc32cVectors, Rfc3720IscsiReadCommand) {
  const std::vector<uint8_t> bytes = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(0xD9963A56u, Crc(bytes));
}

TEST_P(Crc32cVectors, CheckStringOneToNine) {
  const std::string text = "123456789";
  EXPECT_EQ(0xE3069283u, GetParam()(0, text.data(), text.size()));
}

TEST_P(Crc32cVectors, EmptyInputIsZero) { EXPECT_EQ(0u, GetParam()(0, "", 0)); }

TEST_P(Crc32cVectors, ExtendEqualsWholeAtEverySplit) {
  const std::string text = "hello world, this is cairn's write-ahead log speaking";
  const uint32_t whole = GetParam()(0, text.data(), text.size());
  for (size_t split = 0; split <= text.size(); ++split) {
    const uint32_t first = GetParam()(0, text.data(), split);
    EXPECT_EQ(whole, GetParam()(first, text.data() + split, text.size() - split)) << split;
  }
}

INSTANTIATE_TEST_SUITE_P(Implementations, Crc32cVectors,
                         ::testing::Values(&Extend, &ExtendPortable),
                         [](const ::testing::TestParamInfo<ExtendFn>& param_info) {
                           return std::string(param_info.param == &Extend ? "Dispatched" : "Portable");
                         });

TEST(Crc32c, HardwareAndPortableAgreeOnRandomUnalignedBuffers) {
  std::mt19937_64 random(7);
  std::vector<uint8_t> buffer(4096 + 16);
  for (auto& byte : buffer) byte = static_cast<uint8_t>(random());
  for (int trial = 0; trial < 500; ++trial) {
    const size_t offset = random() % 16;
    const size_t size = random() % 4096;
    EXPECT_EQ(ExtendPortable(0, buffer.data() + offset, size),
              Extend(0, buffer.data() + offset, size));
  }
}

TEST(Crc32c, ReportsImplementation) {
  const std::string implementation = Implementation();
  EXPECT_TRUE(implementation == "sse4.2" || implementation == "table") << implementation;
}

}  // namespace
}  // namespace cairn::crc32c
