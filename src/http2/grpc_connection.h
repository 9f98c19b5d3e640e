// GrpcConnection: gRPC's HTTP/2 mapping (the "gRPC over HTTP2" protocol) for unary calls, on one
// Session. Pure like the session: bytes in, whole requests out; replies in, bytes out.
//
// Design note. A request is a stream whose HEADERS carry :method POST, :path
// "/package.Service/Method" and content-type application/grpc[+proto]; its DATA is one
// length-prefixed message (1 flag byte, 4-byte big-endian length). A reply is HEADERS (:status
// 200, content-type), DATA (one length-prefixed message) and trailers (grpc-status 0); an error is
// a trailers-only response (grpc-status, grpc-message percent-encoded). Everything wrong with a
// request is answered here, with grpc-go's texts so clients see what etcd would send: not POST
// (HTTP 405), another content type (HTTP 415), a compressed request (UNIMPLEMENTED, no
// decompressor), a message above the limit (RESOURCE_EXHAUSTED "grpc: received message larger than
// max (N vs. M)"), a body that is not exactly one message (INTERNAL). What reaches the caller is a
// well-formed call; which methods exist is the caller's business (UNIMPLEMENTED for the rest).
//
// Not yet: streaming calls (Watch, LeaseKeepAlive) — a request is delivered when its stream ends;
// grpc-timeout is not enforced (the client enforces its own deadline). Both fit here: deliver each
// message as it completes; keep the deadline with the pending call.
//
// Bounds: one request message (`message_bytes_max`); request bytes buffered on the connection for
// calls not yet complete (`buffered_bytes_max`: beyond it the connection gets GOAWAY
// ENHANCE_YOUR_CALM).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "http2/session.h"

namespace cairn::http2 {

// gRPC status codes (grpc/include/grpc/impl/codegen/status.h, the same numbers everywhere).
enum class GrpcCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

inline constexpr size_t kGrpcMessagePrefixBytes = 5;

struct GrpcRequest {
  StreamId stream = 0;
  std::string path;  // "/etcdserverpb.KV/Put"
  std::string body;  // The length-prefixed message as received.
  std::string_view message() const {
    return std::string_view(body).substr(kGrpcMessagePrefixBytes);
  }
};

struct GrpcConnectionOptions {
  SessionOptions http2{};
  size_t message_bytes_max = 4u << 20;
  size_t buffered_bytes_max = 64u << 20;
};

class GrpcConnection {
 public:
  explicit GrpcConnection(GrpcConnectionOptions options);

  // Feeds bytes from the socket; appends the requests they complete. False: the connection is
  // over (write the output, then close).
  bool Receive(std::string_view bytes, std::vector<GrpcRequest>* requests);

  // Answers `stream` with a message that already carries its 5-byte prefix (see
  // WriteMessagePrefix), or with an error. False if the client reset the stream meanwhile.
  bool Reply(StreamId stream, std::string_view framed_message);
  bool ReplyError(StreamId stream, GrpcCode code, std::string_view message);

  Session& session() { return session_; }
  const Session& session() const { return session_; }

 private:
  struct PendingCall {
    std::string path;
    std::string body;
  };
  void OnHeaders(StreamEvent& event, std::vector<GrpcRequest>* requests);
  void OnData(StreamEvent& event, std::vector<GrpcRequest>* requests);
  void Complete(StreamId stream, std::vector<GrpcRequest>* requests);
  void Reject(StreamId stream, GrpcCode code, std::string_view message);
  void Forget(StreamId stream);

  const GrpcConnectionOptions options_;
  Session session_;
  std::map<StreamId, PendingCall> pending_;  // Requests whose stream has not ended.
  size_t buffered_bytes_ = 0;
  std::vector<StreamEvent> events_;  // Reused between Receive calls.
};

// Writes the 5-byte prefix of an uncompressed message of `message_bytes` into `out[0..5)`.
void WriteMessagePrefix(char* out, size_t message_bytes);
// grpc-message's percent-encoding: bytes outside 0x20..0x7e, and '%', become %XX.
std::string PercentEncode(std::string_view text);

}  // namespace cairn::http2
