// MetricsHttp: a minimal HTTP/1.1 endpoint on --listen-metrics-urls serving GET /metrics
// (Prometheus text format), GET /health (etcd's {"health":"true"}) and GET /version, on the
// thread running the io_context (the member thread).
//
// Design note. Only what a scraper or a load balancer's health check sends is understood: one GET
// per connection, answered with Connection: close. A request head larger than 8 KiB, a method
// other than GET or a connection idle for 10 s is closed. Bounded connections (64).
#pragma once

#include <asio.hpp>
#include <memory>
#include <set>
#include <vector>

#include "server/cluster_config.h"
#include "server/metrics.h"

namespace cairn::server {

// The whole HTTP/1.1 response (Connection: close) to a request head: GET /metrics (Prometheus
// text), /health (etcd's {"health":"true"}, 503 without a leader), /version (etcd's
// {"etcdserver":...,"etcdcluster":...}); 404 for other paths, 405 for other methods. Shared by
// MetricsHttp and the client port (ClientPort answers HTTP/1.1 there, as etcd does).
std::string HttpResponseFor(const Metrics& metrics, std::string_view request_head);

class MetricsHttp {
 public:
  MetricsHttp(asio::io_context& io, std::vector<Url> listen, const Metrics* metrics);
  Status Start();
  void Close();  // On the thread running the io_context, or after it stopped.

 private:
  class Connection;
  void Accept(asio::ip::tcp::acceptor& acceptor);

  asio::io_context& io_;
  const std::vector<Url> listen_;
  const Metrics* const metrics_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::set<std::shared_ptr<Connection>> connections_;
  bool closed_ = false;
};

}  // namespace cairn::server
