// GrpcClient: unary gRPC calls over one client Session — the other end of GrpcConnection, used by
// cairn-bench to load Cairn and etcd alike, and by tests to drive the server's stack end to end.
// Pure: requests in, bytes out; bytes in, finished calls out.
//
// Design note. Calls beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS wait in a bounded queue
// (`queued_calls_max`) and start as streams close. A request's fixed fields (method, scheme,
// path, authority, content type, te) are indexed, so after the first call on a connection each
// costs one byte. A response is complete when its stream ends: its status comes from the trailers
// (or a trailers-only response), its message from the DATA; anything else — a reset stream, a
// missing grpc-status, an HTTP status other than 200 — is reported as a failed call with gRPC's
// usual mapping (UNAVAILABLE, INTERNAL, UNKNOWN), never a crash.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "http2/grpc_connection.h"
#include "http2/session.h"

namespace cairn::http2 {

struct GrpcResponse {
  uint64_t call_id = 0;  // What Call returned.
  GrpcCode code = GrpcCode::kUnknown;
  std::string message;  // grpc-message, percent-decoded.
  std::string body;     // The length-prefixed response message as received (empty on errors).
  std::string_view response_message() const {
    return body.size() < kGrpcMessagePrefixBytes
               ? std::string_view()
               : std::string_view(body).substr(kGrpcMessagePrefixBytes);
  }
};

struct GrpcClientOptions {
  SessionOptions http2{.role = Role::kClient};
  std::string authority = "localhost";
  size_t queued_calls_max = 1u << 16;
};

class GrpcClient {
 public:
  explicit GrpcClient(GrpcClientOptions options);

  // Starts (or queues) a call of `path` ("/etcdserverpb.KV/Put") with `framed_request` (5-byte
  // prefix + message, see WriteMessagePrefix). Returns its id, or 0 if the queue is full.
  uint64_t Call(std::string_view path, std::string framed_request);
  // Feeds bytes from the socket; appends the calls they finish. False: the connection is over
  // (every call still open has been reported as failed).
  bool Receive(std::string_view bytes, std::vector<GrpcResponse>* done);

  Session& session() { return session_; }
  size_t calls_in_flight() const { return streams_.size() + queued_.size(); }

 private:
  struct Pending {
    uint64_t call_id = 0;
    std::string path;
    std::string framed_request;
  };
  struct Open {
    uint64_t call_id = 0;
    std::string http_status;
    std::string grpc_status;
    std::string grpc_message;
    std::string body;
  };
  void StartQueued();
  void Start(Pending call);
  void Finish(StreamId stream, std::vector<GrpcResponse>* done);
  void FailEverything(std::vector<GrpcResponse>* done);

  const GrpcClientOptions options_;
  Session session_;
  uint64_t next_call_id_ = 1;
  std::deque<Pending> queued_;
  std::map<StreamId, Open> streams_;
  std::vector<StreamEvent> events_;
};

// grpc-message's percent-decoding (the inverse of PercentEncode; bad escapes are kept as is).
std::string PercentDecode(std::string_view text);

}  // namespace cairn::http2
