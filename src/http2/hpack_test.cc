#include "http2/hpack.h"

#include <gtest/gtest.h>

#include <random>

namespace cairn::http2 {
namespace {

std::string Hex(std::string_view hex) {
  std::string out;
  std::string digits;
  for (const char c : hex) {
    if (c != ' ') digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::vector<HeaderField> Request(std::string_view scheme, std::string_view path) {
  return {{":method", "GET"},
          {":scheme", std::string(scheme)},
          {":path", std::string(path)},
          {":authority", "www.example.com"}};
}

// RFC 7541 C.3: three requests on one connection, without Huffman coding.
TEST(Hpack, DecodesTheRfcRequestsWithoutHuffman) {
  HpackDecoder decoder;
  std::vector<HeaderField> fields;
  ASSERT_TRUE(
      decoder.Decode(Hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"), &fields).ok());
  EXPECT_EQ(fields, Request("http", "/"));
  EXPECT_EQ(decoder.dynamic_table_bytes(), 57u);

  ASSERT_TRUE(decoder.Decode(Hex("8286 84be 5808 6e6f 2d63 6163 6865"), &fields).ok());
  auto expected = Request("http", "/");
  expected.push_back({"cache-control", "no-cache"});
  EXPECT_EQ(fields, expected);
  EXPECT_EQ(decoder.dynamic_table_bytes(), 110u);

  ASSERT_TRUE(decoder
                  .Decode(Hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 "
                              "6c75 65"),
                          &fields)
                  .ok());
  expected = Request("https", "/index.html");
  expected.push_back({"custom-key", "custom-value"});
  EXPECT_EQ(fields, expected);
  EXPECT_EQ(decoder.dynamic_table_bytes(), 164u);
  EXPECT_EQ(decoder.dynamic_table_entries(), 3u);
}

// RFC 7541 C.4: the same requests with Huffman-coded strings.
TEST(Hpack, DecodesTheRfcRequestsWithHuffman) {
  HpackDecoder decoder;
  std::vector<HeaderField> fields;
  ASSERT_TRUE(decoder.Decode(Hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), &fields).ok());
  EXPECT_EQ(fields, Request("http", "/"));
  ASSERT_TRUE(decoder.Decode(Hex("8286 84be 5886 a8eb 1064 9cbf"), &fields).ok());
  EXPECT_EQ(fields.back(), (HeaderField{"cache-control", "no-cache"}));
  ASSERT_TRUE(
      decoder.Decode(Hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"), &fields)
          .ok());
  EXPECT_EQ(fields.back(), (HeaderField{"custom-key", "custom-value"}));
  EXPECT_EQ(decoder.dynamic_table_bytes(), 164u);
}

TEST(Hpack, HuffmanMatchesTheRfcExamples) {
  std::string out;
  HuffmanEncode("www.example.com", &out);
  EXPECT_EQ(out, Hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"));
  out.clear();
  HuffmanEncode("Mon, 21 Oct 2013 20:13:21 GMT", &out);
  EXPECT_EQ(out, Hex("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"));
  out.clear();
  HuffmanEncode("https://www.example.com", &out);
  EXPECT_EQ(out, Hex("9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"));
}

TEST(Hpack, HuffmanRoundTripsEveryByte) {
  std::mt19937 random(7);
  for (int round = 0; round < 200; ++round) {
    std::string text(random() % 64, '\0');
    for (char& c : text) c = static_cast<char>(random() % 256);
    std::string encoded;
    HuffmanEncode(text, &encoded);
    std::string decoded;
    ASSERT_TRUE(HuffmanDecode(encoded, &decoded));
    EXPECT_EQ(decoded, text);
  }
}

TEST(Hpack, HuffmanRefusesLongOrWrongPadding) {
  std::string out;
  // 'a' is 00011 (5 bits); padding 111 completes the byte.
  EXPECT_TRUE(HuffmanDecode(Hex("1f"), &out));
  EXPECT_EQ(out, "a");
  out.clear();
  EXPECT_FALSE(HuffmanDecode(Hex("18"), &out)) << "padding of zeros";
  out.clear();
  EXPECT_FALSE(HuffmanDecode(Hex("1fff"), &out)) << "more than 7 bits of padding";
  out.clear();
  EXPECT_FALSE(HuffmanDecode(Hex("ffff ffff"), &out)) << "the EOS symbol";
}

TEST(Hpack, IndexOutsideTheTablesIsCorruption) {
  HpackDecoder decoder;
  std::vector<HeaderField> fields;
  EXPECT_EQ(decoder.Decode(Hex("be"), &fields).code(), StatusCode::kCorruption);  // 62: empty.
  EXPECT_EQ(decoder.Decode(Hex("80"), &fields).code(), StatusCode::kCorruption);  // 0.
}

TEST(Hpack, TruncatedBlocksAreCorruption) {
  HpackDecoder decoder;
  std::vector<HeaderField> fields;
  EXPECT_EQ(decoder.Decode(Hex("400a 6375 7374"), &fields).code(), StatusCode::kCorruption);
  EXPECT_EQ(decoder.Decode(Hex("ff"), &fields).code(), StatusCode::kCorruption);
  EXPECT_EQ(decoder.Decode(Hex("ff ff ff ff ff ff 7f"), &fields).code(), StatusCode::kCorruption);
}

TEST(Hpack, TableSizeUpdateEvictsAndIsBoundedBySettings) {
  HpackDecoder decoder(4096);
  std::vector<HeaderField> fields;
  std::string block;
  block.push_back(0x40);
  block += Hex("0a") + "custom-key" + Hex("0c") + "custom-value";
  ASSERT_TRUE(decoder.Decode(block, &fields).ok());
  EXPECT_EQ(decoder.dynamic_table_entries(), 1u);
  std::string update;
  EncodeTableSizeUpdate(0, &update);
  ASSERT_TRUE(decoder.Decode(update, &fields).ok());
  EXPECT_EQ(decoder.dynamic_table_entries(), 0u);
  update.clear();
  EncodeTableSizeUpdate(8192, &update);
  EXPECT_EQ(decoder.Decode(update, &fields).code(), StatusCode::kCorruption);
  // An update after a field is not allowed (§4.2).
  std::string late = Hex("82");
  EncodeTableSizeUpdate(100, &late);
  EXPECT_EQ(decoder.Decode(late, &fields).code(), StatusCode::kCorruption);
}

TEST(Hpack, EntriesAreEvictedOldestFirst) {
  HpackDecoder decoder(100);  // Room for one 32+10+12=54-byte entry, not two.
  std::vector<HeaderField> fields;
  std::string block;
  block.push_back(0x40);
  block += Hex("0a") + "custom-key" + Hex("0c") + "custom-val-1";
  block.push_back(0x40);
  block += Hex("0a") + "custom-key" + Hex("0c") + "custom-val-2";
  ASSERT_TRUE(decoder.Decode(block, &fields).ok());
  EXPECT_EQ(decoder.dynamic_table_entries(), 1u);
  ASSERT_TRUE(decoder.Decode(Hex("be"), &fields).ok());
  EXPECT_EQ(fields.front().value, "custom-val-2");
}

TEST(Hpack, OversizedHeaderListKeepsTheTableInStep) {
  HpackDecoder decoder(4096, 100);
  std::vector<HeaderField> fields;
  std::string block;
  block.push_back(0x40);
  block += Hex("0a") + "custom-key" + Hex("7f00") + std::string(127, 'v');
  EXPECT_EQ(decoder.Decode(block, &fields).code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(fields.empty());
  EXPECT_EQ(decoder.dynamic_table_entries(), 1u) << "the entry is still added";
}

TEST(Hpack, EncodedLiteralsDecode) {
  std::string block;
  EncodeIndexedField(8, &block);
  EncodeLiteralField("grpc-message", std::string(300, 'x'), &block);
  HpackDecoder decoder;
  std::vector<HeaderField> fields;
  ASSERT_TRUE(decoder.Decode(block, &fields).ok());
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[0], (HeaderField{":status", "200"}));
  EXPECT_EQ(fields[1].value.size(), 300u);
  EXPECT_EQ(decoder.dynamic_table_entries(), 0u);
}

TEST(Hpack, RandomBlocksNeverCrash) {
  std::mt19937 random(11);
  for (int round = 0; round < 3000; ++round) {
    HpackDecoder decoder(4096, 4096);
    std::string block(random() % 48, '\0');
    for (char& c : block) c = static_cast<char>(random() % 256);
    std::vector<HeaderField> fields;
    (void)decoder.Decode(block, &fields);
  }
}

}  // namespace
}  // namespace cairn::http2
