#include "http2/session.h"

#include <gtest/gtest.h>

#include <random>

#include "http2/grpc_connection.h"

namespace cairn::http2 {
namespace {

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  StreamId stream = 0;
  std::string payload;
};

constexpr uint8_t kData = 0, kHeaders = 1, kRst = 3, kSettings = 4, kPing = 6, kGoAway = 7,
                  kWindowUpdate = 8, kContinuation = 9;
constexpr uint8_t kEndStream = 1, kEndHeaders = 4;

uint32_t U32(std::string_view s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[at + 3])};
}
std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string FrameBytes(uint8_t type, uint8_t flags, StreamId stream, std::string_view payload) {
  const size_t n = payload.size();
  std::string out = {static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n),
                     static_cast<char>(type), static_cast<char>(flags)};
  out += Be32(stream);
  out.append(payload);
  return out;
}

std::vector<Frame> ParseFrames(std::string_view bytes) {
  std::vector<Frame> frames;
  size_t at = 0;
  while (bytes.size() - at >= 9) {
    const uint32_t length = U32(bytes, at) >> 8;
    Frame f;
    f.type = static_cast<uint8_t>(bytes[at + 3]);
    f.flags = static_cast<uint8_t>(bytes[at + 4]);
    f.stream = U32(bytes, at + 5) & 0x7fffffff;
    EXPECT_LE(at + 9 + length, bytes.size());
    f.payload = std::string(bytes.substr(at + 9, length));
    frames.push_back(f);
    at += 9 + length;
  }
  EXPECT_EQ(at, bytes.size()) << "the output is whole frames";
  return frames;
}

std::string Setting(uint16_t id, uint32_t value) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + Be32(value);
}

std::string RequestBlock(std::string_view path, std::string_view content_type = "application/grpc",
                         std::string_view method = "POST", std::vector<HeaderField> extra = {}) {
  std::string block;
  EncodeLiteralField(":method", method, &block);
  EncodeLiteralField(":scheme", "http", &block);
  EncodeLiteralField(":path", path, &block);
  EncodeLiteralField(":authority", "127.0.0.1", &block);
  EncodeLiteralField("content-type", content_type, &block);
  EncodeLiteralField("te", "trailers", &block);
  for (const auto& f : extra) EncodeLiteralField(f.name, f.value, &block);
  return block;
}

std::string Message(std::string_view body) {
  std::string out(5, '\0');
  WriteMessagePrefix(out.data(), body.size());
  return out + std::string(body);
}

// A client that speaks to a GrpcConnection in memory and decodes what it answers.
class TestClient {
 public:
  explicit TestClient(GrpcConnectionOptions options = {}, std::string settings = {})
      : connection_(options) {
    Send(std::string(kClientPreface) + FrameBytes(kSettings, 0, 0, settings));
  }

  bool Send(std::string_view bytes) {
    alive_ = connection_.Receive(bytes, &requests_);
    Drain();
    return alive_;
  }

  void Drain() {
    std::string out;
    connection_.session().TakeOutput(&out);
    for (Frame& f : ParseFrames(out)) frames_.push_back(std::move(f));
  }

  // The decoded header blocks the server sent on `stream`, in order.
  std::vector<std::vector<HeaderField>> HeaderBlocks(StreamId stream) {
    std::vector<std::vector<HeaderField>> blocks;
    std::string block;
    for (const Frame& f : frames_) {
      if (f.stream != stream || (f.type != kHeaders && f.type != kContinuation)) continue;
      block += f.payload;
      if (f.flags & kEndHeaders) {
        std::vector<HeaderField> fields;
        EXPECT_TRUE(decoder_.Decode(block, &fields).ok());
        blocks.push_back(fields);
        block.clear();
      }
    }
    return blocks;
  }

  std::string Value(const std::vector<HeaderField>& fields, std::string_view name) {
    for (const auto& f : fields) {
      if (f.name == name) return f.value;
    }
    return "<absent>";
  }

  std::string DataOf(StreamId stream) {
    std::string data;
    for (const Frame& f : frames_) {
      if (f.stream == stream && f.type == kData) data += f.payload;
    }
    return data;
  }

  std::vector<Frame> OfType(uint8_t type) {
    std::vector<Frame> out;
    for (const Frame& f : frames_) {
      if (f.type == type) out.push_back(f);
    }
    return out;
  }

  void Call(StreamId stream, std::string_view path, std::string_view body) {
    Send(FrameBytes(kHeaders, kEndHeaders, stream, RequestBlock(path)) +
         FrameBytes(kData, kEndStream, stream, Message(body)));
  }

  GrpcConnection connection_;
  std::vector<GrpcRequest> requests_;
  std::vector<Frame> frames_;
  HpackDecoder decoder_;
  bool alive_ = true;
};

TEST(Session, SendsSettingsFirstAndAcknowledgesTheClients) {
  TestClient client;
  ASSERT_GE(client.frames_.size(), 3u);
  EXPECT_EQ(client.frames_[0].type, kSettings);
  EXPECT_EQ(client.frames_[0].flags, 0);
  EXPECT_EQ(client.frames_[1].type, kWindowUpdate) << "the connection window is raised";
  EXPECT_EQ(client.OfType(kSettings).back().flags, 1) << "the client's SETTINGS are ACKed";
  EXPECT_TRUE(client.alive_);
}

TEST(Session, UnaryCallIsDeliveredAndAnswered) {
  TestClient client;
  client.Call(1, "/etcdserverpb.KV/Put", "hello");
  ASSERT_EQ(client.requests_.size(), 1u);
  EXPECT_EQ(client.requests_[0].path, "/etcdserverpb.KV/Put");
  EXPECT_EQ(client.requests_[0].message(), "hello");
  ASSERT_TRUE(client.connection_.Reply(1, Message("world")));
  client.Drain();
  auto blocks = client.HeaderBlocks(1);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(client.Value(blocks[0], ":status"), "200");
  EXPECT_EQ(client.Value(blocks[0], "content-type"), "application/grpc");
  EXPECT_EQ(client.Value(blocks[1], "grpc-status"), "0");
  EXPECT_EQ(client.DataOf(1), Message("world"));
  EXPECT_EQ(client.frames_.back().flags & kEndStream, kEndStream) << "trailers end the stream";
  EXPECT_EQ(client.connection_.session().open_streams(), 0u);
  EXPECT_FALSE(client.connection_.Reply(1, Message("again"))) << "a closed stream";
}

TEST(Session, ErrorsAreTrailersOnlyWithPercentEncodedMessages) {
  TestClient client;
  client.Call(1, "/etcdserverpb.KV/Range", "");
  ASSERT_TRUE(client.connection_.ReplyError(1, GrpcCode::kInvalidArgument, "bad 100% \n"));
  client.Drain();
  auto blocks = client.HeaderBlocks(1);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(client.Value(blocks[0], "grpc-status"), "3");
  EXPECT_EQ(client.Value(blocks[0], "grpc-message"), "bad 100%25 %0A");
  EXPECT_TRUE(client.DataOf(1).empty());
}

TEST(Session, RequestSplitAcrossFramesAndReadsIsAssembled) {
  TestClient client;
  const std::string body(40000, 'x');
  std::string bytes = FrameBytes(kHeaders, kEndHeaders, 1, RequestBlock("/a/b"));
  const std::string message = Message(body);
  bytes += FrameBytes(kData, 0, 1, message.substr(0, 16384));
  bytes += FrameBytes(kData, 0, 1, message.substr(16384, 16384));
  bytes += FrameBytes(kData, kEndStream, 1, message.substr(32768));
  for (size_t at = 0; at < bytes.size(); at += 777) client.Send(bytes.substr(at, 777));
  ASSERT_EQ(client.requests_.size(), 1u);
  EXPECT_EQ(client.requests_[0].message(), body);
}

TEST(Session, ContinuationFramesMakeOneHeaderBlock) {
  TestClient client;
  const std::string block = RequestBlock("/a/b");
  client.Send(FrameBytes(kHeaders, 0, 1, block.substr(0, 10)) +
              FrameBytes(kContinuation, 0, 1, block.substr(10, 10)) +
              FrameBytes(kContinuation, kEndHeaders, 1, block.substr(20)) +
              FrameBytes(kData, kEndStream, 1, Message("m")));
  ASSERT_EQ(client.requests_.size(), 1u);
  EXPECT_EQ(client.requests_[0].path, "/a/b");
}

TEST(Session, ReplyWaitsForTheClientsFlowControlWindow) {
  TestClient client({}, Setting(4, 10));  // SETTINGS_INITIAL_WINDOW_SIZE = 10.
  client.Call(1, "/a/b", "q");
  const std::string reply = Message(std::string(100, 'r'));
  ASSERT_TRUE(client.connection_.Reply(1, reply));
  client.Drain();
  EXPECT_EQ(client.DataOf(1).size(), 10u);
  EXPECT_EQ(client.HeaderBlocks(1).size(), 1u) << "trailers wait behind the data";
  EXPECT_EQ(client.connection_.session().blocked_data_bytes(), reply.size() - 10);
  client.Send(FrameBytes(kWindowUpdate, 0, 1, Be32(50)));
  EXPECT_EQ(client.DataOf(1).size(), 60u);
  client.Send(FrameBytes(kWindowUpdate, 0, 1, Be32(1000)));
  EXPECT_EQ(client.DataOf(1), reply);
  auto blocks = client.HeaderBlocks(1);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(client.Value(blocks[1], "grpc-status"), "0");
  EXPECT_EQ(client.connection_.session().open_streams(), 0u);
}

TEST(Session, ConnectionWindowIsSharedByStreams) {
  TestClient client;
  const std::string big = Message(std::string(50000, 'b'));
  client.Call(1, "/a/b", "1");
  client.Call(3, "/a/b", "3");
  ASSERT_TRUE(client.connection_.Reply(1, big));
  ASSERT_TRUE(client.connection_.Reply(3, big));
  client.Drain();
  EXPECT_EQ(client.DataOf(1).size() + client.DataOf(3).size(), 65535u);
  client.Send(FrameBytes(kWindowUpdate, 0, 0, Be32(200000)) +
              FrameBytes(kWindowUpdate, 0, 1, Be32(100000)) +
              FrameBytes(kWindowUpdate, 0, 3, Be32(100000)));
  EXPECT_EQ(client.DataOf(1), big);
  EXPECT_EQ(client.DataOf(3), big);
}

TEST(Session, LargerPeerFrameSizeAllowsLargerDataFrames) {
  TestClient client({}, Setting(5, 65536) + Setting(4, 1 << 20));
  client.Send(FrameBytes(kWindowUpdate, 0, 0, Be32(1 << 20)));
  client.Call(1, "/a/b", "q");
  ASSERT_TRUE(client.connection_.Reply(1, Message(std::string(60000, 'r'))));
  client.Drain();
  EXPECT_EQ(client.OfType(kData).size(), 1u);
}

TEST(Session, PingIsAnswered) {
  TestClient client;
  client.Send(FrameBytes(kPing, 0, 0, "12345678"));
  auto pings = client.OfType(kPing);
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0].flags, 1);
  EXPECT_EQ(pings[0].payload, "12345678");
}

TEST(Session, ClientResetDropsTheReply) {
  TestClient client;
  client.Call(1, "/a/b", "q");
  client.Send(FrameBytes(kRst, 0, 1, Be32(8)));
  EXPECT_FALSE(client.connection_.Reply(1, Message("late")));
  EXPECT_TRUE(client.alive_);
}

TEST(Session, StreamsBeyondTheLimitAreRefused) {
  GrpcConnectionOptions options;
  options.http2.streams_max = 2;
  TestClient client(options);
  for (StreamId id : {1u, 3u, 5u}) {
    client.Send(FrameBytes(kHeaders, kEndHeaders, id, RequestBlock("/a/b")));
  }
  auto resets = client.OfType(kRst);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].stream, 5u);
  EXPECT_EQ(U32(resets[0].payload, 0), static_cast<uint32_t>(ErrorCode::kRefusedStream));
}

uint32_t GoAwayCode(TestClient& client) {
  auto goaways = client.OfType(kGoAway);
  EXPECT_EQ(goaways.size(), 1u);
  return goaways.empty() ? 0xffffffff : U32(goaways[0].payload, 4);
}

TEST(Session, NotAnHttp2PrefaceClosesTheConnection) {
  GrpcConnection connection({});
  std::vector<GrpcRequest> requests;
  EXPECT_FALSE(connection.Receive("GET / HTTP/1.1\r\n\r\n", &requests));
}

TEST(Session, FirstFrameMustBeSettings) {
  GrpcConnection connection({});
  std::vector<GrpcRequest> requests;
  EXPECT_FALSE(connection.Receive(std::string(kClientPreface) + FrameBytes(kPing, 0, 0, "12345678"),
                                  &requests));
}

TEST(Session, OversizedFrameIsAFrameSizeError) {
  TestClient client;
  EXPECT_FALSE(client.Send(FrameBytes(kData, 0, 1, std::string(20000, 'x'))));
  EXPECT_EQ(GoAwayCode(client), static_cast<uint32_t>(ErrorCode::kFrameSizeError));
}

TEST(Session, BadHpackIsACompressionError) {
  TestClient client;
  EXPECT_FALSE(client.Send(FrameBytes(kHeaders, kEndHeaders, 1, "\xff")));
  EXPECT_EQ(GoAwayCode(client), static_cast<uint32_t>(ErrorCode::kCompressionError));
}

TEST(Session, EvenStreamIdIsAProtocolError) {
  TestClient client;
  EXPECT_FALSE(client.Send(FrameBytes(kHeaders, kEndHeaders, 2, RequestBlock("/a/b"))));
  EXPECT_EQ(GoAwayCode(client), static_cast<uint32_t>(ErrorCode::kProtocolError));
}

// The first bytes of a message that declares `length` bytes in all.
std::string PrefixOf(size_t length, size_t bytes) {
  std::string out(5, '\0');
  WriteMessagePrefix(out.data(), length);
  return out + std::string(bytes - 5, 'x');
}

TEST(Session, LongRequestBodiesGetCreditBack) {
  GrpcConnectionOptions options;
  options.http2.stream_window_bytes = 65535;
  options.http2.connection_window_bytes = 65535;
  TestClient client(options);
  const std::string message = PrefixOf(200000, 200005);
  client.Send(FrameBytes(kHeaders, kEndHeaders, 1, RequestBlock("/a/b")));
  for (size_t at = 0; at < message.size(); at += 16384) {
    const size_t n = std::min<size_t>(16384, message.size() - at);
    client.Send(
        FrameBytes(kData, at + n == message.size() ? kEndStream : 0, 1, message.substr(at, n)));
  }
  ASSERT_EQ(client.requests_.size(), 1u);
  uint64_t stream_credit = 0, connection_credit = 0;
  for (const Frame& f : client.OfType(kWindowUpdate)) {
    (f.stream == 0 ? connection_credit : stream_credit) += U32(f.payload, 0);
  }
  // Without the credit the client could have sent only 65,535 bytes.
  EXPECT_GE(stream_credit + 65535, message.size() - 16384);
  EXPECT_GE(connection_credit + 65535, message.size() - 16384);
  EXPECT_TRUE(client.OfType(kRst).empty());
}

TEST(Session, DataAfterEndStreamResetsTheStream) {
  Session session;
  std::vector<StreamEvent> events;
  ASSERT_TRUE(
      session.Receive(std::string(kClientPreface) + FrameBytes(kSettings, 0, 0, "") +
                          FrameBytes(kHeaders, kEndHeaders | kEndStream, 1, RequestBlock("/a/b")),
                      &events));
  ASSERT_EQ(events.size(), 1u);
  std::string out;
  session.TakeOutput(&out);
  ASSERT_TRUE(session.Receive(FrameBytes(kData, 0, 1, "late"), &events));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, StreamEvent::Kind::kReset);
  session.TakeOutput(&out);
  auto frames = ParseFrames(out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, kRst);
  EXPECT_EQ(U32(frames[0].payload, 0), static_cast<uint32_t>(ErrorCode::kStreamClosed));
  EXPECT_FALSE(session.SendHeaders(1, "", false)) << "the stream is gone";
}

TEST(GrpcConnection, RefusesWhatIsNotAGrpcCall) {
  TestClient client;
  client.Send(FrameBytes(kHeaders, kEndHeaders | kEndStream, 1,
                         RequestBlock("/a/b", "application/grpc", "GET")));
  client.Send(FrameBytes(kHeaders, kEndHeaders | kEndStream, 3, RequestBlock("/a/b", "text/html")));
  client.Send(
      FrameBytes(kHeaders, kEndHeaders, 5,
                 RequestBlock("/a/b", "application/grpc", "POST", {{"grpc-encoding", "gzip"}})));
  EXPECT_EQ(client.Value(client.HeaderBlocks(1)[0], ":status"), "405");
  EXPECT_EQ(client.Value(client.HeaderBlocks(3)[0], ":status"), "415");
  auto gzip = client.HeaderBlocks(5)[0];
  EXPECT_EQ(client.Value(gzip, "grpc-status"), "12");
  EXPECT_EQ(client.Value(gzip, "grpc-message"),
            "grpc: Decompressor is not installed for grpc-encoding \"gzip\"");
  EXPECT_TRUE(client.requests_.empty());
}

TEST(GrpcConnection, MessageAboveTheLimitIsResourceExhausted) {
  GrpcConnectionOptions options;
  options.message_bytes_max = 100;
  TestClient client(options);
  client.Call(1, "/a/b", std::string(101, 'x'));
  EXPECT_TRUE(client.requests_.empty());
  auto blocks = client.HeaderBlocks(1);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(client.Value(blocks[0], "grpc-status"), "8");
  EXPECT_EQ(client.Value(blocks[0], "grpc-message"),
            "grpc: received message larger than max (101 vs. 100)");
}

TEST(GrpcConnection, BodyThatIsNotOneMessageIsInternal) {
  TestClient client;
  client.Send(FrameBytes(kHeaders, kEndHeaders, 1, RequestBlock("/a/b")) +
              FrameBytes(kData, kEndStream, 1, Message("one") + Message("two")));
  client.Send(FrameBytes(kHeaders, kEndHeaders | kEndStream, 3, RequestBlock("/a/b")));
  std::string compressed = Message("zip");
  compressed[0] = 1;
  client.Send(FrameBytes(kHeaders, kEndHeaders, 5, RequestBlock("/a/b")) +
              FrameBytes(kData, kEndStream, 5, compressed));
  EXPECT_TRUE(client.requests_.empty());
  for (StreamId id : {1u, 3u, 5u}) {
    EXPECT_EQ(client.Value(client.HeaderBlocks(id)[0], "grpc-status"), "13") << id;
  }
}

TEST(GrpcConnection, TooMuchBufferedRequestDataEndsTheConnection) {
  GrpcConnectionOptions options;
  options.buffered_bytes_max = 100000;
  TestClient client(options);
  bool alive = true;
  for (StreamId id = 1; id < 40 && alive; id += 2) {
    alive = client.Send(FrameBytes(kHeaders, kEndHeaders, id, RequestBlock("/a/b")) +
                        FrameBytes(kData, 0, id, PrefixOf(1 << 20, 16384)));
  }
  EXPECT_FALSE(alive);
  EXPECT_EQ(GoAwayCode(client), static_cast<uint32_t>(ErrorCode::kEnhanceYourCalm));
}

TEST(GrpcConnection, CompletedRequestsNoLongerCountAsBuffered) {
  GrpcConnectionOptions options;
  options.buffered_bytes_max = 10000;
  TestClient client(options);
  // 100 calls of 1 KiB: ten times the bound in all, but never more than one buffered at once.
  for (StreamId id = 1; id < 200; id += 2) {
    client.Call(id, "/a/b", std::string(1000, 'x'));
    ASSERT_TRUE(client.alive_) << "call " << id;
    ASSERT_TRUE(client.connection_.Reply(id, Message("ok")));
  }
  EXPECT_EQ(client.requests_.size(), 100u);
}

TEST(GrpcConnection, RequestResetInTheSameReadIsNotDelivered) {
  TestClient client;
  client.Send(FrameBytes(kHeaders, kEndHeaders, 1, RequestBlock("/a/b")) +
              FrameBytes(kData, kEndStream, 1, Message("x")) + FrameBytes(kRst, 0, 1, Be32(8)));
  EXPECT_TRUE(client.requests_.empty());
  EXPECT_TRUE(client.alive_);
}

TEST(GrpcConnection, MoreBytesThanTheMessageDeclaresIsInternal) {
  TestClient client;
  client.Send(FrameBytes(kHeaders, kEndHeaders, 1, RequestBlock("/a/b")) +
              FrameBytes(kData, 0, 1, Message("one") + "tail"));
  EXPECT_EQ(client.Value(client.HeaderBlocks(1)[0], "grpc-status"), "13");
}

TEST(ServerSession, HeadersOnAStreamWeResetAreIgnored) {
  GrpcConnectionOptions options;
  options.message_bytes_max = 10;
  TestClient client(options);
  // Rejected while the client is still sending: we end the stream with RST_STREAM(NO_ERROR).
  client.Send(FrameBytes(kHeaders, kEndHeaders, 1, RequestBlock("/a/b")) +
              FrameBytes(kData, 0, 1, PrefixOf(100, 20)));
  ASSERT_EQ(client.OfType(kRst).size(), 1u);
  // The client's trailers were already on their way: ignored, the connection lives.
  std::string trailers;
  EncodeLiteralField("x-late", "1", &trailers);
  EXPECT_TRUE(client.Send(FrameBytes(kHeaders, kEndHeaders | kEndStream, 1, trailers)));
  client.Call(3, "/a/b", "fine");
  EXPECT_EQ(client.requests_.size(), 1u);
  // HEADERS on a lower stream that was never opened is still a connection error.
  client.Call(7, "/a/b", "fine");
  EXPECT_FALSE(client.Send(FrameBytes(kHeaders, kEndHeaders, 5, RequestBlock("/a/b"))));
}

TEST(ServerSession, WindowUpdateFloodCostsLittleWithManyBlockedStreams) {
  TestClient client({}, Setting(4, 0));  // Every stream's window starts at 0.
  for (StreamId id = 1; id < 400; id += 2) {
    client.Call(id, "/a/b", "q");
    ASSERT_TRUE(client.connection_.Reply(id, Message("r")));
  }
  client.Drain();
  EXPECT_EQ(client.OfType(kData).size(), 0u);
  std::string flood;
  for (int i = 0; i < 1000; ++i) flood += FrameBytes(kWindowUpdate, 0, 0, Be32(1));
  EXPECT_TRUE(client.Send(flood));
  EXPECT_EQ(client.OfType(kData).size(), 0u) << "no stream has room of its own";
  client.Send(FrameBytes(kWindowUpdate, 0, 1, Be32(100)));
  EXPECT_EQ(client.DataOf(1), Message("r"));
}

TEST(GrpcConnection, RandomBytesNeverCrashTheServer) {
  std::mt19937 random(5);
  for (int round = 0; round < 500; ++round) {
    TestClient client;
    // A valid call first, so the random bytes hit a connection in use.
    client.Call(1, "/a/b", "x");
    std::string noise(random() % 400, '\0');
    for (char& c : noise) c = static_cast<char>(random() % 256);
    // Mostly well-formed frame headers with random contents.
    std::string bytes;
    for (int f = 0; f < 4; ++f) {
      const std::string payload = noise.substr(0, random() % (noise.size() + 1));
      bytes += FrameBytes(static_cast<uint8_t>(random() % 11), static_cast<uint8_t>(random() % 64),
                          random() % 8, payload);
    }
    client.Send(bytes);
    client.Send(noise);
    (void)client.connection_.Reply(1, Message("y"));
    client.Drain();
  }
}

}  // namespace
}  // namespace cairn::http2
