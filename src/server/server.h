// Server: one Cairn member process put together — the member's Singular Update Queue
// (MemberNode), the peer channels (PeerTransport), the etcd v3 gRPC services and the metrics
// endpoint — started in dependency order and stopped in reverse.
//
// Threads: the member thread (MemberNode), which also runs Asio (peer channels, metrics HTTP),
// the log writer (LogWriter), the client threads (ClientPort, or EtcdServices on the gRPC library
// with gRPC's own timer and executor threads). Only the member thread
// changes member state; the others hand it work.
#pragma once

#include <grpcpp/server.h>

#include <asio.hpp>
#include <memory>
#include <thread>

#include "server/client_port.h"
#include "server/etcd_services.h"
#include "server/member_node.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/peer_transport.h"
#include "storage/file_system.h"

namespace cairn::server {

// How the client port speaks gRPC (see ClientPort and EtcdServices).
enum class ClientTransport { kCairn, kGrpcLibrary };

struct ServerOptions {
  MemberNodeOptions member{};
  std::vector<Url> listen_client_urls{};
  std::vector<Url> listen_peer_urls{};
  std::vector<Url> listen_metrics_urls{};
  size_t max_request_bytes = 3 * 512 * 1024;
  int client_threads = 1;  // ClientPortOptions::threads or EtcdServicesOptions::threads
  ClientTransport client_transport = ClientTransport::kCairn;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Start(FileSystem& fs, ServerOptions options);
  ~Server();
  // Answers what is pending, closes every port, joins every thread. Idempotent.
  void Shutdown();

 private:
  Server() = default;

  Metrics metrics_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<MemberNode> node_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<MetricsHttp> metrics_http_;
  std::unique_ptr<EtcdServices> services_;
  std::unique_ptr<ClientPort> client_port_;  // ClientTransport::kCairn
  std::unique_ptr<grpc::Server> grpc_server_;
  bool shut_down_ = false;
};

}  // namespace cairn::server
