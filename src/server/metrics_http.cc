#include "server/metrics_http.h"

#include <fmt/format.h>

#include "server/etcd_api.h"
#include "server/listener.h"

namespace cairn::server {

using asio::ip::tcp;

namespace {
constexpr size_t kRequestHeadBytesMax = 8 * 1024;
constexpr size_t kConnectionsMax = 64;
constexpr auto kIdleTimeout = std::chrono::seconds(10);
}  // namespace

class MetricsHttp::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(MetricsHttp& server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

  void Start() {
    timer_.expires_after(kIdleTimeout);
    timer_.async_wait([self = shared_from_this()](asio::error_code error) {
      if (!error) self->Finish();
    });
    Read();
  }
  void Close() {
    asio::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
  }

 private:
  void Read() {
    asio::async_read_until(socket_, asio::dynamic_buffer(head_, kRequestHeadBytesMax), "\r\n\r\n",
                           [self = shared_from_this()](asio::error_code error, size_t) {
                             if (error) return self->Finish();
                             self->Respond();
                           });
  }

  void Respond() {
    response_ = HttpResponseFor(*server_.metrics_, head_);
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](asio::error_code, size_t) { self->Finish(); });
  }

  void Finish() {
    Close();
    server_.connections_.erase(shared_from_this());
  }

  MetricsHttp& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string head_;
  std::string response_;
};

std::string HttpResponseFor(const Metrics& metrics, std::string_view request_head) {
  const std::string_view line = request_head.substr(0, request_head.find("\r\n"));
  auto is = [line](std::string_view path) {
    const std::string prefix = fmt::format("GET {}", path);
    return line.substr(0, prefix.size()) == prefix && line.size() > prefix.size() &&
           (line[prefix.size()] == ' ' || line[prefix.size()] == '?');
  };
  std::string status = "200 OK";
  std::string type = "text/plain; version=0.0.4; charset=utf-8";
  std::string body;
  if (line.substr(0, 4) != "GET ") {
    status = "405 Method Not Allowed";
    body = "only GET\n";
  } else if (is("/metrics")) {
    body = metrics.RenderPrometheus();
  } else if (is("/health")) {
    body = metrics.RenderHealth();
    type = "application/json";
    if (metrics.has_leader.load() == 0) status = "503 Service Unavailable";
  } else if (is("/version")) {
    body = fmt::format(R"({{"etcdserver":"{}","etcdcluster":"{}"}})", kEtcdApiVersion,
                       kEtcdApiVersion);
    type = "application/json";
  } else {
    status = "404 Not Found";
    body = "not found\n";
  }
  return fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      status, type, body.size(), body);
}

MetricsHttp::MetricsHttp(asio::io_context& io, std::vector<Url> listen, const Metrics* metrics)
    : io_(io), listen_(std::move(listen)), metrics_(metrics) {}

Status MetricsHttp::Start() {
  for (const Url& url : listen_) {
    CAIRN_ASSIGN_OR_RETURN(auto acceptor, OpenListener(io_, url, "--listen-metrics-urls"));
    acceptors_.push_back(std::move(acceptor));
  }
  for (auto& acceptor : acceptors_) Accept(*acceptor);
  return Status::Ok();
}

void MetricsHttp::Close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  for (auto& acceptor : acceptors_) acceptor->close(ignored);
  auto connections = connections_;
  for (const auto& connection : connections) connection->Close();
}

void MetricsHttp::Accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](asio::error_code error, tcp::socket socket) {
    if (closed_ || error == asio::error::operation_aborted) return;
    if (!error) {
      if (connections_.size() >= kConnectionsMax) {
        asio::error_code ignored;
        socket.close(ignored);
      } else {
        auto connection = std::make_shared<Connection>(*this, std::move(socket));
        connections_.insert(connection);
        connection->Start();
      }
    }
    Accept(acceptor);
  });
}

}  // namespace cairn::server
