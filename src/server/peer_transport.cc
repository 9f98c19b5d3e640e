#include "server/peer_transport.h"

#include <spdlog/spdlog.h>

#include <deque>

#include "server/listener.h"

namespace cairn::server {

using asio::ip::tcp;
using transport::PeerFrame;

struct PeerTransport::Outbound {
  Outbound(asio::io_context& io, NodeId id_in, Url url_in)
      : id(id_in), url(std::move(url_in)), socket(io), retry_timer(io) {}
  NodeId id;
  Url url;
  tcp::socket socket;
  asio::steady_timer retry_timer;
  enum class State { kDisconnected, kConnecting, kConnected } state = State::kDisconnected;
  bool retry_scheduled = false;
  bool writing = false;
  uint32_t backoff_ms = 0;
  std::chrono::steady_clock::time_point connected_at{};
  std::deque<std::string> queue;
  size_t queued_bytes = 0;
  std::vector<std::string> in_flight;
  char watch_byte = 0;
  uint64_t connection_epoch = 0;  // Handlers of an old connection see a newer epoch and stop.
};

class PeerTransport::Inbound : public std::enable_shared_from_this<Inbound> {
 public:
  Inbound(PeerTransport& transport, tcp::socket socket)
      : transport_(transport),
        socket_(std::move(socket)),
        hello_timer_(socket_.get_executor()),
        decoder_(transport.options_.frame_bytes_max) {}

  void Start() {
    // A connection that does not say who it is in time gives its slot back: silent connections
    // must not crowd out the members' own.
    hello_timer_.expires_after(std::chrono::milliseconds(transport_.options_.hello_timeout_ms));
    hello_timer_.async_wait([self = shared_from_this()](asio::error_code error) {
      if (!error && self->from_ == NodeId(0)) self->Refuse("no hello in time");
    });
    Read();
  }
  void Close() {
    asio::error_code ignored;
    socket_.close(ignored);
    hello_timer_.cancel();
  }

 private:
  void Read() {
    socket_.async_read_some(asio::buffer(buffer_),
                            [self = shared_from_this()](asio::error_code error, size_t bytes) {
                              self->OnRead(error, bytes);
                            });
  }

  void OnRead(asio::error_code error, size_t bytes) {
    if (error) return Finish();
    if (!decoder_.Feed(std::string_view(buffer_.data(), bytes)).ok()) return Refuse("bad stream");
    while (true) {
      auto next = decoder_.Next();
      if (!next.ok()) return Refuse(next.status().message());
      if (!next->has_value()) break;
      PeerFrame frame = std::move(**next);
      if (from_ == NodeId(0)) {
        const auto* hello = std::get_if<transport::Hello>(&frame);
        if (hello == nullptr) return Refuse("the first frame is not a hello");
        if (hello->cluster_id != transport_.options_.cluster_id) {
          return Refuse(fmt::format("hello from cluster {:x}, this is cluster {:x}",
                                    hello->cluster_id, transport_.options_.cluster_id));
        }
        if (transport_.options_.peers.count(hello->from) == 0) {
          return Refuse(fmt::format("hello from {:x}, not a member", hello->from.value()));
        }
        from_ = hello->from;
        hello_timer_.cancel();
        continue;
      }
      if (!FromClaimed(frame)) return Refuse("a frame claims another sender");
      transport_.on_frame_(from_, std::move(frame));
    }
    Read();
  }

  bool FromClaimed(const PeerFrame& frame) const {
    if (const auto* message = std::get_if<consensus::Message>(&frame)) {
      return message->from == from_ && message->to == transport_.options_.self;
    }
    if (const auto* write = std::get_if<transport::ForwardedWrite>(&frame)) {
      return write->from == from_;
    }
    if (const auto* rejected = std::get_if<transport::ForwardRejected>(&frame)) {
      return rejected->from == from_;
    }
    return false;  // A second hello.
  }

  void Refuse(std::string_view why) {
    transport_.metrics_->peer_connections_refused.fetch_add(1, std::memory_order_relaxed);
    asio::error_code ignored;
    const auto remote = socket_.remote_endpoint(ignored);
    spdlog::warn("peer connection from {}:{} closed: {}", remote.address().to_string(),
                 remote.port(), why);
    Finish();
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    Close();
    transport_.inbound_.erase(shared_from_this());
  }

  PeerTransport& transport_;
  tcp::socket socket_;
  asio::steady_timer hello_timer_;
  transport::FrameDecoder decoder_;
  std::array<char, 64 * 1024> buffer_{};
  NodeId from_{};
  bool finished_ = false;
};

PeerTransport::PeerTransport(asio::io_context& io, PeerTransportOptions options,
                             FrameHandler on_frame, Metrics* metrics)
    : io_(io), options_(std::move(options)), on_frame_(std::move(on_frame)), metrics_(metrics) {
  for (const auto& [id, url] : options_.peers) {
    outbound_.emplace(id, std::make_unique<Outbound>(io_, id, url));
  }
}

PeerTransport::~PeerTransport() { Close(); }

Status PeerTransport::Start() {
  for (const Url& url : options_.listen) {
    CAIRN_ASSIGN_OR_RETURN(auto acceptor, OpenListener(io_, url, "--listen-peer-urls"));
    acceptors_.push_back(std::move(acceptor));
  }
  for (auto& acceptor : acceptors_) Accept(*acceptor);
  asio::post(io_, [this] {
    for (auto& [id, peer] : outbound_) Connect(*peer);
  });
  return Status::Ok();
}

void PeerTransport::Close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  for (auto& acceptor : acceptors_) acceptor->close(ignored);
  for (auto& [id, peer] : outbound_) {
    peer->socket.close(ignored);
    peer->retry_timer.cancel();
  }
  auto inbound = inbound_;
  for (const auto& connection : inbound) connection->Close();
}

void PeerTransport::Accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](asio::error_code error, tcp::socket socket) {
    if (closed_ || error == asio::error::operation_aborted) return;
    if (!error) {
      if (inbound_.size() >= options_.inbound_connections_max) {
        metrics_->peer_connections_refused.fetch_add(1, std::memory_order_relaxed);
        asio::error_code ignored;
        socket.close(ignored);
      } else {
        asio::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto connection = std::make_shared<Inbound>(*this, std::move(socket));
        inbound_.insert(connection);
        connection->Start();
      }
    }
    Accept(acceptor);
  });
}

void PeerTransport::Send(std::vector<std::pair<NodeId, std::string>> frames) {
  asio::post(io_, [this, frames = std::move(frames)]() mutable {
    if (closed_) return;
    for (auto& [to, frame] : frames) {
      auto it = outbound_.find(to);
      if (it == outbound_.end()) {
        metrics_->peer_frames_dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      Enqueue(*it->second, std::move(frame));
    }
  });
}

void PeerTransport::Enqueue(Outbound& peer, std::string frame) {
  if (peer.queue.size() >= options_.send_queue_frames_max ||
      peer.queued_bytes + frame.size() > options_.send_queue_bytes_max) {
    metrics_->peer_frames_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  peer.queued_bytes += frame.size();
  peer.queue.push_back(std::move(frame));
  if (peer.state == Outbound::State::kConnected && !peer.writing) WriteQueued(peer);
}

void PeerTransport::Connect(Outbound& peer) {
  if (closed_ || peer.state != Outbound::State::kDisconnected) return;
  peer.state = Outbound::State::kConnecting;
  asio::error_code error;
  const auto address = asio::ip::make_address(peer.url.host, error);
  if (error) {
    spdlog::error("peer {:x}: '{}' is not an IP address", peer.id.value(), peer.url.host);
    return;
  }
  const uint64_t epoch = ++peer.connection_epoch;
  peer.socket.async_connect(tcp::endpoint(address, peer.url.port),
                            [this, &peer, epoch](asio::error_code connect_error) {
                              if (closed_ || epoch != peer.connection_epoch) return;
                              if (connect_error) return Disconnect(peer, connect_error.message());
                              asio::error_code ignored;
                              peer.socket.set_option(tcp::no_delay(true), ignored);
                              peer.state = Outbound::State::kConnected;
                              peer.connected_at = std::chrono::steady_clock::now();
                              if (peer.backoff_ms == 0) {
                                spdlog::info("peer {:x}: connected to {}", peer.id.value(),
                                             peer.url.ToString());
                              }
                              const std::string hello = transport::EncodeFrame(
                                  transport::Hello{options_.self, options_.cluster_id});
                              peer.queued_bytes += hello.size();
                              peer.queue.push_front(hello);
                              WatchForClose(peer);
                              WriteQueued(peer);
                            });
}

void PeerTransport::WatchForClose(Outbound& peer) {
  // Peers never write on our outgoing connection: a read completes only when it closes.
  const uint64_t epoch = peer.connection_epoch;
  peer.socket.async_read_some(asio::buffer(&peer.watch_byte, 1),
                              [this, &peer, epoch](asio::error_code error, size_t) {
                                if (closed_ || epoch != peer.connection_epoch) return;
                                Disconnect(peer, error ? error.message() : "unexpected bytes");
                              });
}

void PeerTransport::WriteQueued(Outbound& peer) {
  if (peer.queue.empty()) {
    peer.writing = false;
    return;
  }
  peer.writing = true;
  peer.in_flight.clear();
  std::vector<asio::const_buffer> buffers;
  size_t bytes = 0;
  constexpr size_t kWriteBytesMax = 4u << 20;
  while (!peer.queue.empty() && (bytes == 0 || bytes + peer.queue.front().size() <= kWriteBytesMax)) {
    bytes += peer.queue.front().size();
    peer.queued_bytes -= peer.queue.front().size();
    peer.in_flight.push_back(std::move(peer.queue.front()));
    peer.queue.pop_front();
  }
  buffers.reserve(peer.in_flight.size());
  for (const std::string& frame : peer.in_flight) buffers.push_back(asio::buffer(frame));
  const uint64_t epoch = peer.connection_epoch;
  asio::async_write(peer.socket, buffers,
                    [this, &peer, epoch](asio::error_code error, size_t) {
                      if (closed_ || epoch != peer.connection_epoch) return;
                      if (error) return Disconnect(peer, error.message());
                      peer.in_flight.clear();
                      WriteQueued(peer);
                    });
}

void PeerTransport::Disconnect(Outbound& peer, const std::string& why) {
  if (peer.state == Outbound::State::kConnected) {
    // A connection that lasted is a healthy peer that went away: retry quickly. One closed at
    // once (refused hello, full peer) keeps backing off, so a refusing peer is not hammered.
    if (std::chrono::steady_clock::now() - peer.connected_at > std::chrono::seconds(1)) {
      peer.backoff_ms = 0;
    }
    if (peer.backoff_ms == 0) {
      spdlog::info("peer {:x}: connection to {} lost: {}", peer.id.value(), peer.url.ToString(),
                   why);
    }
  }
  ++peer.connection_epoch;
  asio::error_code ignored;
  peer.socket.close(ignored);
  peer.state = Outbound::State::kDisconnected;
  peer.writing = false;
  metrics_->peer_frames_dropped.fetch_add(peer.queue.size() + peer.in_flight.size(),
                                          std::memory_order_relaxed);
  peer.queue.clear();
  peer.queued_bytes = 0;
  peer.in_flight.clear();
  peer.backoff_ms = peer.backoff_ms == 0
                        ? options_.reconnect_min_ms
                        : std::min(options_.reconnect_max_ms, peer.backoff_ms * 2);
  if (peer.retry_scheduled) return;
  peer.retry_scheduled = true;
  peer.retry_timer.expires_after(std::chrono::milliseconds(peer.backoff_ms));
  peer.retry_timer.async_wait([this, &peer](asio::error_code error) {
    peer.retry_scheduled = false;
    if (closed_ || error) return;
    Connect(peer);
  });
}

}  // namespace cairn::server
