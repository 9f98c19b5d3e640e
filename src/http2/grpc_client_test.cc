#include "http2/grpc_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "http2/grpc_connection.h"

namespace cairn::http2 {
namespace {

std::string Framed(std::string_view message) {
  std::string out(kGrpcMessagePrefixBytes, '\0');
  WriteMessagePrefix(out.data(), message.size());
  return out + std::string(message);
}

// A client and a server session joined in memory.
struct Pair {
  explicit Pair(GrpcConnectionOptions server_options = {}, GrpcClientOptions client_options = {})
      : server(server_options), client(client_options) {}

  // Moves bytes both ways until neither side has anything to say.
  void Pump() {
    for (int round = 0; round < 10000; ++round) {
      std::string to_server, to_client;
      client.session().TakeOutput(&to_server);
      server.session().TakeOutput(&to_client);
      if (to_server.empty() && to_client.empty()) return;
      if (!to_server.empty()) server_alive = server.Receive(to_server, &requests);
      if (!to_client.empty()) client_alive = client.Receive(to_client, &responses);
    }
    FAIL() << "the sessions never went quiet";
  }

  GrpcConnection server;
  GrpcClient client;
  std::vector<GrpcRequest> requests;
  std::vector<GrpcResponse> responses;
  bool server_alive = true;
  bool client_alive = true;
};

TEST(GrpcClient, CallsOfEverySizeRoundTripInAnyOrder) {
  Pair pair;
  std::mt19937 random(3);
  std::map<uint64_t, std::string> sent;
  for (int i = 0; i < 200; ++i) {
    const size_t bytes = i % 10 == 0 ? 100000 + random() % 200000 : random() % 300;
    std::string message(bytes, static_cast<char>('a' + i % 26));
    const uint64_t id = pair.client.Call("/test.Echo/Echo", Framed(message));
    ASSERT_NE(id, 0u);
    sent[id] = message;
  }
  pair.Pump();
  ASSERT_EQ(pair.requests.size(), sent.size())
      << "client blocked " << pair.client.session().blocked_data_bytes() << " open "
      << pair.client.session().open_streams() << " server open "
      << pair.server.session().open_streams();
  // The server answers in a shuffled order, each with its request reversed.
  std::shuffle(pair.requests.begin(), pair.requests.end(), random);
  for (const GrpcRequest& request : pair.requests) {
    std::string reply(request.message());
    std::reverse(reply.begin(), reply.end());
    ASSERT_TRUE(pair.server.Reply(request.stream, Framed(reply)));
    if (random() % 4 == 0) pair.Pump();
  }
  pair.Pump();
  ASSERT_EQ(pair.responses.size(), sent.size());
  for (const GrpcResponse& response : pair.responses) {
    ASSERT_EQ(response.code, GrpcCode::kOk) << response.message;
    std::string expected = sent.at(response.call_id);
    std::reverse(expected.begin(), expected.end());
    EXPECT_EQ(response.response_message(), expected);
  }
  EXPECT_EQ(pair.client.calls_in_flight(), 0u);
  EXPECT_EQ(pair.server.session().open_streams(), 0u);
  EXPECT_EQ(pair.client.session().open_streams(), 0u);
}

TEST(GrpcClient, ErrorsKeepTheirCodeAndMessage) {
  Pair pair;
  pair.client.Call("/test.Echo/Echo", Framed("x"));
  pair.Pump();
  ASSERT_EQ(pair.requests.size(), 1u);
  pair.server.ReplyError(pair.requests[0].stream, GrpcCode::kFailedPrecondition,
                         "etcdserver: 100% \"bad\"\n");
  pair.Pump();
  ASSERT_EQ(pair.responses.size(), 1u);
  EXPECT_EQ(pair.responses[0].code, GrpcCode::kFailedPrecondition);
  EXPECT_EQ(pair.responses[0].message, "etcdserver: 100% \"bad\"\n");
}

TEST(GrpcClient, UnknownMethodIsUnimplementedByTheLayerAbove) {
  Pair pair;
  pair.client.Call("/nope.Service/Method", Framed(""));
  pair.Pump();
  ASSERT_EQ(pair.requests.size(), 1u) << "GrpcConnection delivers any well-formed call";
  EXPECT_EQ(pair.requests[0].path, "/nope.Service/Method");
}

TEST(GrpcClient, CallsBeyondTheServersStreamLimitWait) {
  GrpcConnectionOptions server_options;
  server_options.http2.streams_max = 2;
  Pair pair(server_options);
  pair.Pump();  // The client learns the limit.
  for (int i = 0; i < 9; ++i) pair.client.Call("/test.Echo/Echo", Framed("q"));
  size_t answered = 0;
  for (int round = 0; round < 20 && answered < 9; ++round) {
    pair.Pump();
    EXPECT_LE(pair.server.session().open_streams(), 2u);
    for (const GrpcRequest& request : pair.requests) {
      ASSERT_TRUE(pair.server.Reply(request.stream, Framed("a")));
      ++answered;
    }
    pair.requests.clear();
  }
  pair.Pump();
  EXPECT_EQ(pair.responses.size(), 9u);
}

TEST(GrpcClient, ServerGoingAwayFailsWhatIsInFlight) {
  Pair pair;
  pair.client.Call("/test.Echo/Echo", Framed("q"));
  pair.Pump();
  pair.server.session().GoAway(ErrorCode::kNoError, "bye");
  pair.client.Call("/test.Echo/Echo", Framed("late"));
  pair.Pump();
  // The first call was taken by the server (below its GOAWAY's last stream): it stays open until
  // the connection closes; the second was never processed and fails at once.
  ASSERT_EQ(pair.responses.size(), 1u);
  EXPECT_EQ(pair.responses[0].code, GrpcCode::kUnavailable);
  std::vector<GrpcResponse> failed;
  EXPECT_FALSE(pair.client.Receive(std::string(9, '\xff'), &failed));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].code, GrpcCode::kUnavailable);
}

TEST(HpackEncoder, IndexedFieldsCostOneByteTheSecondTime) {
  HpackEncoder encoder;
  HpackDecoder decoder;
  std::string first, second;
  encoder.Encode(":path", "/etcdserverpb.KV/Put", true, &first);
  encoder.Encode("te", "trailers", true, &first);
  encoder.Encode(":method", "POST", true, &first);
  encoder.Encode(":path", "/etcdserverpb.KV/Put", true, &second);
  encoder.Encode("te", "trailers", true, &second);
  encoder.Encode(":method", "POST", true, &second);
  EXPECT_EQ(second.size(), 3u);
  std::vector<HeaderField> fields;
  ASSERT_TRUE(decoder.Decode(first, &fields).ok());
  ASSERT_TRUE(decoder.Decode(second, &fields).ok());
  EXPECT_EQ(fields[0], (HeaderField{":path", "/etcdserverpb.KV/Put"}));
  EXPECT_EQ(fields[1], (HeaderField{"te", "trailers"}));
  EXPECT_EQ(fields[2], (HeaderField{":method", "POST"}));
  EXPECT_EQ(encoder.table_bytes(), decoder.dynamic_table_bytes());
}

TEST(HpackEncoder, ShrunkTableIsAnnouncedAndStaysInStep) {
  HpackEncoder encoder;
  HpackDecoder decoder;
  std::string block;
  encoder.Encode("x-a", std::string(40, 'a'), true, &block);
  std::vector<HeaderField> first;
  ASSERT_TRUE(decoder.Decode(block, &first).ok());
  encoder.SetPeerTableBytes(0);
  encoder.SetPeerTableBytes(100);
  block.clear();
  encoder.TakeDueUpdate(&block);
  encoder.Encode("x-b", std::string(50, 'b'), true, &block);
  encoder.Encode("x-a", std::string(40, 'a'), true, &block);  // Evicted: a literal again.
  std::vector<HeaderField> fields;
  ASSERT_TRUE(decoder.Decode(block, &fields).ok());
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[1].value, std::string(40, 'a'));
  EXPECT_EQ(encoder.table_bytes(), decoder.dynamic_table_bytes());
}

TEST(GrpcClient, PercentDecodingUndoesEncoding) {
  const std::string text = "a%b\n\x01 ~";
  EXPECT_EQ(PercentDecode(PercentEncode(text)), text);
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz"), "%zz");
}

}  // namespace
}  // namespace cairn::http2
