#include "server/server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <climits>

namespace cairn::server {

Result<std::unique_ptr<Server>> Server::Start(FileSystem& fs, ServerOptions options) {
  std::unique_ptr<Server> server(new Server());
  const ClusterConfig cluster = options.member.cluster;
  options.member.mvcc.request_bytes_max = options.max_request_bytes;
  CAIRN_ASSIGN_OR_RETURN(server->node_,
                         MemberNode::Open(fs, std::move(options.member), &server->metrics_));

  PeerTransportOptions transport_options;
  transport_options.self = cluster.self;
  transport_options.cluster_id = cluster.cluster_id;
  transport_options.listen = options.listen_peer_urls;
  for (const auto& [id, member] : cluster.members) {
    if (id != cluster.self) transport_options.peers[id] = member.peer_urls.front();
  }
  // A frame holds at most about append_bytes_max (1 MiB) plus one entry of a maximal request;
  // --max-request-bytes is at most 1 GiB (main.cc), so the bound fits the frame header's u32.
  transport_options.frame_bytes_max =
      static_cast<uint32_t>(std::max<size_t>(16u << 20, options.max_request_bytes + (4u << 20)));
  MemberNode* node = server->node_.get();
  server->transport_ = std::make_unique<PeerTransport>(
      server->io_, transport_options,
      [node](NodeId from, transport::PeerFrame frame) {
        node->DeliverPeerFrame(from, std::move(frame));
      },
      &server->metrics_);
  CAIRN_TRY(server->transport_->Start());
  server->metrics_http_ =
      std::make_unique<MetricsHttp>(server->io_, options.listen_metrics_urls, &server->metrics_);
  CAIRN_TRY(server->metrics_http_->Start());
  // The member thread runs the io_context itself (MemberNode::Start): no separate I/O thread.
  server->work_.emplace(server->io_.get_executor());
  PeerTransport* transport = server->transport_.get();
  node->Start(
      [transport](std::vector<std::pair<NodeId, std::string>> frames) {
        transport->Send(std::move(frames));
      },
      &server->io_);

  EtcdServicesOptions services_options;
  services_options.max_request_bytes = options.max_request_bytes;
  services_options.threads = options.client_threads;
  server->services_ = std::make_unique<EtcdServices>(*node, services_options);
  if (options.client_transport == ClientTransport::kCairn) {
    ClientPortOptions port_options;
    port_options.threads = options.client_threads;
    port_options.metrics = &server->metrics_;
    // As etcd: requests up to max_request_bytes plus gRPC overhead are received (larger ones get
    // gRPC's "message larger than max" error); responses are unbounded.
    port_options.grpc.message_bytes_max = options.max_request_bytes + 512 * 1024;
    port_options.grpc.buffered_bytes_max =
        std::max<size_t>(64u << 20, 4 * port_options.grpc.message_bytes_max);
    server->client_port_ = std::make_unique<ClientPort>(*server->services_, port_options);
    if (Status started = server->client_port_->Start(options.listen_client_urls); !started.ok()) {
      server->Shutdown();
      return started;
    }
  } else {
    grpc::ServerBuilder builder;
    std::vector<int> ports(options.listen_client_urls.size(), 0);
    for (size_t i = 0; i < options.listen_client_urls.size(); ++i) {
      builder.AddListeningPort(options.listen_client_urls[i].HostPort(),
                               grpc::InsecureServerCredentials(), &ports[i]);
    }
    // As etcd: requests up to max_request_bytes plus gRPC overhead are received (larger ones get
    // gRPC's own "message larger than max" error), responses are unbounded, and clients may send
    // keepalive pings every 5 s even without calls in flight.
    builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes + 512 * 1024));
    builder.SetMaxSendMessageSize(INT_MAX);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    server->services_->AddTo(builder);
    server->grpc_server_ = builder.BuildAndStart();
    if (server->grpc_server_ != nullptr) server->services_->Start();
    for (size_t i = 0; i < ports.size(); ++i) {
      if (server->grpc_server_ == nullptr || ports[i] == 0) {
        const std::string url = options.listen_client_urls[i].ToString();
        server->Shutdown();
        return Status::IoError(fmt::format("cannot listen for clients on {}", url));
      }
    }
  }
  for (const Url& url : options.listen_client_urls) {
    spdlog::info("serving the etcd v3 API on {}", url.ToString());
  }
  for (const Url& url : options.listen_metrics_urls) {
    spdlog::info("serving /metrics and /health on {}", url.ToString());
  }
  return server;
}

Server::~Server() {
  Shutdown();
}

void Server::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // The member answers every waiting request first ("server stopped"), so gRPC's shutdown has
  // no call left to wait for.
  if (node_) node_->Stop();
  // The client port sends those answers, then GOAWAY, and closes its connections.
  if (client_port_) client_port_->Stop();
  if (grpc_server_)
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  // Then the client threads: their completion queues may shut down only after the server has.
  if (services_) services_->Stop();
  // The member thread, which ran the io_context, has stopped: its sockets may be closed here.
  if (transport_) transport_->Close();
  if (metrics_http_) metrics_http_->Close();
  work_.reset();
}

}  // namespace cairn::server
