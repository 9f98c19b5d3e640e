// ClientPort: the etcd v3 gRPC API on Cairn's own HTTP/2 (src/http2), the default way clients
// reach a member. EtcdServices holds the handlers; this is the thin shell that carries their
// calls: Asio sockets, one GrpcConnection per socket, requests to handlers, replies back.
//
// Design note. Threads: `threads` client threads ("cairn-client"), each running its own
// io_context and owning the connections it accepted (round-robin). A connection's bytes are read,
// decoded and dispatched on its thread; each request becomes a WireCall handed to EtcdServices,
// which gives it to the member's Singular Update Queue and returns at once. The member answers on
// its own thread: the answered call goes on its client thread's reply list, and one post per
// batch wakes that thread, which encodes every reply of the batch and then writes each touched
// connection once. That last step is what gRPC's library could not do: it wrote every finished
// call with its own sendmsg. (Figures: docs/benchmarks.md.) The member thread never encodes or
// writes.
//
// Bounds, per connection: a connection stops reading while its unwritten output passes
// `output_bytes_pause` or 4,096 of its calls wait at the member (reading resumes as they drain),
// so a client that sends but does not read, or opens and cancels streams in a loop, cannot grow
// the server's memory or the member's queue; replies held back by the client's own flow-control
// window do not stop reading (only reading brings the WINDOW_UPDATE that releases them), but past
// 64 MiB of them new calls are refused (RESOURCE_EXHAUSTED). 10 s to send the preface and
// SETTINGS; 4,096 connections per port.
//
// Shutdown (Stop): after the member has stopped (every call answered), each connection gets
// GOAWAY; once it is written the connection shuts its sending side and reads until the client
// closes (at most a second), so the client sees the GOAWAY rather than a reset. Whatever has not
// finished in `drain_timeout_ms` is closed.
#pragma once

#include <grpcpp/support/status.h>

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "http2/grpc_connection.h"
#include "server/cluster_config.h"
#include "server/etcd_api.h"
#include "server/metrics.h"

namespace cairn::server {

class EtcdServices;

struct ClientPortOptions {
  int threads = 1;
  size_t connections_max = 4096;  // Per port; more are closed on accept.
  size_t output_bytes_pause = 8u << 20;
  int drain_timeout_ms = 1000;
  // Answers HTTP/1.1 GET /health, /version and /metrics on the client port, as etcd does; null:
  // such connections are closed.
  const Metrics* metrics = nullptr;
  http2::GrpcConnectionOptions grpc{};
};

class ClientPort {
 public:
  ClientPort(EtcdServices& services, ClientPortOptions options);
  ~ClientPort();
  ClientPort(const ClientPort&) = delete;
  ClientPort& operator=(const ClientPort&) = delete;

  // Binds every URL (an error names the URL) and starts the threads.
  Status Start(const std::vector<Url>& urls);
  // See the design note. Idempotent.
  void Stop();

  // Internal types (defined in the .cc file, except WireCall below).
  class Connection;
  struct Worker;

  // A call answered by the member, waiting for its client thread to send it.
  class PendingReply {
   public:
    virtual ~PendingReply() = default;
    // On the client thread: encodes the reply onto its connection (unless it is gone) and
    // deletes this.
    virtual void SendAndDelete() = 0;
  };

  // Hands `reply` to its client thread; any thread.
  static void Post(Worker& worker, PendingReply* reply);
  // On the client thread: encodes `response` (or `status`) onto the connection's stream.
  static void Encode(Connection& connection, http2::StreamId stream, const grpc::Status& status,
                     const google::protobuf::MessageLite& response);

 private:
  void Accept(asio::ip::tcp::acceptor& acceptor);
  void Dispatch(Worker& worker, const std::shared_ptr<Connection>& connection,
                http2::GrpcRequest request);

  EtcdServices& services_;
  const ClientPortOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;  // Worker 0's thread.
  std::atomic<size_t> connections_{0};
  size_t next_worker_ = 0;  // Worker 0's thread.
  bool started_ = false;
  bool stopped_ = false;
};

// One unary call in flight, in the shape EtcdServices' handlers take: request(), response(),
// Answer(status) from any thread, once.
template <typename Request, typename Response>
class WireCall final : public ClientPort::PendingReply {
 public:
  WireCall(ClientPort::Worker& worker, std::shared_ptr<ClientPort::Connection> connection,
           http2::StreamId stream)
      : worker_(worker), connection_(std::move(connection)), stream_(stream) {}

  Request& request() { return request_; }
  Response& response() { return response_; }

  void Answer(grpc::Status status) {
    status_ = std::move(status);
    ClientPort::Post(worker_, this);
  }
  void Answer(const Status& status) { Answer(ToGrpcStatus(status)); }

  void SendAndDelete() override {
    ClientPort::Encode(*connection_, stream_, status_, response_);
    delete this;
  }

 private:
  ClientPort::Worker& worker_;
  const std::shared_ptr<ClientPort::Connection> connection_;
  const http2::StreamId stream_;
  Request request_;
  Response response_;
  grpc::Status status_;
};

}  // namespace cairn::server
