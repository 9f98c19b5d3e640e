#include "transport/message_codec.h"

#include <gtest/gtest.h>

#include <random>

#include "base/coding.h"
#include "base/crc32c.h"

namespace cairn::transport {
namespace {

using consensus::Message;
using consensus::MessageType;

Message FullMessage(MessageType type) {
  Message message;
  message.type = type;
  message.from = NodeId(1);
  message.to = NodeId(2);
  message.generation = Generation(7);
  message.log_index = LogIndex(41);
  message.log_generation = Generation(6);
  message.granted = true;
  message.transfer = true;
  message.commit_index = LogIndex(40);
  message.match_index = LogIndex(39);
  message.hint_index = LogIndex(30);
  message.hint_generation = Generation(5);
  message.read_round = 12;
  message.read_id = 99;
  message.snapshot_offset = 4096;
  message.snapshot_chunk = std::string("chunk\0with zero", 15);
  message.snapshot_membership = "members";
  message.snapshot_done = true;
  message.entries = {wal::Entry{LogIndex(42), Generation(7), 1, "a"},
                     wal::Entry{LogIndex(43), Generation(7), 2, ""}};
  return message;
}

void ExpectSame(const Message& a, const Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.generation, b.generation);
  EXPECT_EQ(a.log_index, b.log_index);
  EXPECT_EQ(a.log_generation, b.log_generation);
  EXPECT_EQ(a.granted, b.granted);
  EXPECT_EQ(a.rejected, b.rejected);
  EXPECT_EQ(a.transfer, b.transfer);
  EXPECT_EQ(a.entries, b.entries);
  EXPECT_EQ(a.commit_index, b.commit_index);
  EXPECT_EQ(a.match_index, b.match_index);
  EXPECT_EQ(a.hint_index, b.hint_index);
  EXPECT_EQ(a.hint_generation, b.hint_generation);
  EXPECT_EQ(a.read_round, b.read_round);
  EXPECT_EQ(a.read_id, b.read_id);
  EXPECT_EQ(a.snapshot_offset, b.snapshot_offset);
  EXPECT_EQ(a.snapshot_chunk, b.snapshot_chunk);
  EXPECT_EQ(a.snapshot_membership, b.snapshot_membership);
  EXPECT_EQ(a.snapshot_done, b.snapshot_done);
}

TEST(MessageCodec, EveryMessageTypeRoundTrips) {
  for (uint8_t type = 0; type <= static_cast<uint8_t>(MessageType::kSnapshotResponse); ++type) {
    const Message message = FullMessage(static_cast<MessageType>(type));
    FrameDecoder decoder;
    ASSERT_TRUE(decoder.Feed(EncodeFrame(message)).ok());
    auto decoded = decoder.Next();
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ASSERT_TRUE(decoded->has_value());
    ASSERT_TRUE(std::holds_alternative<Message>(**decoded));
    ExpectSame(message, std::get<Message>(**decoded));
    EXPECT_EQ(0u, decoder.buffered_bytes());
  }
}

TEST(MessageCodec, FramesArrivingByteByByteAreReassembled) {
  std::string stream;
  for (int i = 0; i < 5; ++i) stream += EncodeFrame(FullMessage(MessageType::kAppend));
  FrameDecoder decoder;
  int decoded = 0;
  for (char byte : stream) {
    ASSERT_TRUE(decoder.Feed(std::string_view(&byte, 1)).ok());
    auto next = decoder.Next();
    ASSERT_TRUE(next.ok());
    if (next->has_value()) ++decoded;
  }
  EXPECT_EQ(5, decoded);
}

TEST(MessageCodec, OversizedLengthIsRefusedBeforeBuffering) {
  FrameDecoder decoder(1024);
  std::string header;
  PutFixed32(&header, 1u << 30);
  PutFixed32(&header, 0);
  ASSERT_TRUE(decoder.Feed(header).ok());
  auto next = decoder.Next();
  EXPECT_EQ(StatusCode::kCorruption, next.status().code());
  EXPECT_FALSE(decoder.Feed("more").ok()) << "a failed stream stays failed";
}

TEST(MessageCodec, ZeroLengthFrameIsRefused) {
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.Feed(std::string(8, '\0')).ok());
  EXPECT_EQ(StatusCode::kCorruption, decoder.Next().status().code());
}

TEST(MessageCodec, ChecksumMismatchIsRefused) {
  std::string frame = EncodeFrame(FullMessage(MessageType::kVote));
  frame.back() ^= 1;
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.Feed(frame).ok());
  auto next = decoder.Next();
  EXPECT_EQ(StatusCode::kCorruption, next.status().code());
  EXPECT_NE(std::string::npos, next.status().message().find("checksum"));
}

std::string FrameOf(std::string body) {
  std::string frame;
  PutFixed32(&frame, static_cast<uint32_t>(body.size()));
  PutFixed32(&frame, crc32c::Value(body));
  return frame + body;
}

TEST(MessageCodec, UnknownVersionAndTypeAreRefused) {
  std::string body = EncodeFrame(FullMessage(MessageType::kVote)).substr(kFrameHeaderBytes);
  std::string wrong_version = body;
  wrong_version[0] = 9;
  EXPECT_EQ(StatusCode::kCorruption, DecodeBody(wrong_version).status().code());
  std::string wrong_type = body;
  wrong_type[1] = 77;
  EXPECT_EQ(StatusCode::kCorruption, DecodeBody(wrong_type).status().code());
  EXPECT_EQ(StatusCode::kCorruption, DecodeBody(body + "x").status().code()) << "trailing bytes";
}

TEST(MessageCodec, HugeEntryCountIsRefusedWithoutAllocating) {
  Message message = FullMessage(MessageType::kAppend);
  message.entries.clear();
  std::string body = EncodeFrame(message).substr(kFrameHeaderBytes);
  EncodeFixed32(body.data() + body.size() - 4, 0xFFFFFFFFu);  // The entry count.
  auto decoded = DecodeBody(body);
  EXPECT_EQ(StatusCode::kCorruption, decoded.status().code());
}

TEST(MessageCodec, ShellFramesRoundTrip) {
  FrameDecoder decoder;
  ASSERT_TRUE(decoder.Feed(EncodeFrame(Hello{NodeId(7), 0xC1u})).ok());
  ASSERT_TRUE(decoder.Feed(EncodeFrame(ForwardedWrite{NodeId(7), 42, std::string("cmd\0x", 5)})).ok());
  ASSERT_TRUE(
      decoder.Feed(EncodeFrame(ForwardRejected{NodeId(3), 42, StatusCode::kBusy, "full"})).ok());
  auto hello = decoder.Next();
  ASSERT_TRUE(hello.ok() && hello->has_value());
  EXPECT_EQ(NodeId(7), std::get<Hello>(**hello).from);
  EXPECT_EQ(0xC1u, std::get<Hello>(**hello).cluster_id);
  auto write = decoder.Next();
  ASSERT_TRUE(write.ok() && write->has_value());
  EXPECT_EQ(42u, std::get<ForwardedWrite>(**write).request_id);
  EXPECT_EQ(std::string("cmd\0x", 5), std::get<ForwardedWrite>(**write).command);
  auto rejected = decoder.Next();
  ASSERT_TRUE(rejected.ok() && rejected->has_value());
  EXPECT_EQ(StatusCode::kBusy, std::get<ForwardRejected>(**rejected).code);
  EXPECT_EQ("full", std::get<ForwardRejected>(**rejected).message);
  EXPECT_EQ(0u, decoder.buffered_bytes());
}

TEST(MessageCodec, ShellFrameWithBadStatusCodeIsRefused) {
  std::string body =
      EncodeFrame(ForwardRejected{NodeId(3), 1, StatusCode::kBusy, ""}).substr(kFrameHeaderBytes);
  body[body.size() - 5] = 0;  // The status code byte: kOk is not a rejection.
  EXPECT_EQ(StatusCode::kCorruption, DecodeBody(body).status().code());
  body[body.size() - 5] = 99;
  EXPECT_EQ(StatusCode::kCorruption, DecodeBody(body).status().code());
}

TEST(MessageCodec, RandomGarbageNeverCrashes) {
  std::mt19937_64 random(5);
  const std::string valid = EncodeFrame(FullMessage(MessageType::kAppend)).substr(kFrameHeaderBytes);
  for (int trial = 0; trial < 20'000; ++trial) {
    std::string body = valid;
    // Mutate a few bytes, truncate, or replace entirely.
    switch (random() % 3) {
      case 0:
        for (int flips = 1 + random() % 4; flips > 0; --flips) {
          body[random() % body.size()] = static_cast<char>(random());
        }
        break;
      case 1:
        body.resize(random() % body.size());
        break;
      default:
        body.assign(random() % 200, '\0');
        for (char& c : body) c = static_cast<char>(random());
    }
    FrameDecoder decoder(4096);
    ASSERT_TRUE(decoder.Feed(FrameOf(body)).ok());
    (void)decoder.Next();  // Any outcome but a crash is fine.
  }
}

}  // namespace
}  // namespace cairn::transport
