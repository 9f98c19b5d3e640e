#include "server/client_port.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <unordered_set>

#include "server/etcd_services.h"
#include "server/listener.h"
#include "server/metrics_http.h"

namespace cairn::server {

using asio::ip::tcp;

struct ClientPort::Worker {
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::thread thread;
  std::unordered_set<std::shared_ptr<Connection>> connections;  // This thread only.
  // Connections with replies encoded but not yet written.
  std::vector<std::shared_ptr<Connection>> dirty;
  std::optional<asio::steady_timer> drain_timer;  // Set by Stop.
  bool member_wakes_held = false;                 // See ClientPort::Dispatch.
  bool stopping = false;  // Set by Stop on this thread: late connections are closed.

  std::mutex mutex;
  std::vector<PendingReply*> replies;  // Answered, not yet sent.
  bool wake_posted = false;

  static thread_local Worker* current;

  void SendReplies();
  void FlushDirty();
};

thread_local ClientPort::Worker* ClientPort::Worker::current = nullptr;

// Bounds of one connection (see the design note in client_port.h).
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);  // Preface + SETTINGS.
constexpr auto kLingerTimeout = std::chrono::seconds(1);      // After our last bytes.
constexpr size_t kCallsInFlightMax = 4096;  // Handed to the member, not yet answered.
// Reply bytes waiting for the client's flow-control window beyond which new calls are refused.
constexpr size_t kBlockedBytesMax = 64u << 20;

class ClientPort::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ClientPort& port, Worker& worker, tcp::socket socket)
      : port_(port),
        worker_(worker),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        grpc_(port.options_.grpc) {}

  void Start() {
    // The server's SETTINGS wait in the session until the client's first bytes show HTTP/2 (an
    // HTTP/1.1 client gets a plain HTTP response instead, see Sniff).
    Read();
    timer_.expires_after(kHandshakeTimeout);
    timer_.async_wait([self = shared_from_this()](asio::error_code error) {
      if (!error && !self->grpc_.session().handshake_done()) self->Close();
    });
  }

  // Marks the connection for the end of the current batch's writes.
  void MarkDirty() {
    if (dirty_ || closed_) return;
    dirty_ = true;
    worker_.dirty.push_back(shared_from_this());
  }

  // Writes what the session has produced, unless a write is in flight (its completion writes
  // the rest). Once closing and written, lingers (see Linger).
  void Flush() {
    dirty_ = false;
    if (closed_ || writing_) return;
    if (!grpc_.session().HasOutput()) {
      if (closing_) Linger();
      return;
    }
    grpc_.session().TakeOutput(&write_buffer_);
    writing_ = true;
    asio::async_write(socket_, asio::buffer(write_buffer_),
                      [self = shared_from_this()](asio::error_code error, size_t) {
                        self->writing_ = false;
                        if (error) return self->Close();
                        self->Flush();
                        self->ResumeReadingIfDrained();
                      });
  }

  // Sends GOAWAY; the connection closes once it is written (Linger).
  void GoAway() {
    if (closed_) return;
    grpc_.session().GoAway(http2::ErrorCode::kNoError, "server shutting down");
    closing_ = true;
    Flush();
  }

  void Close() {
    if (closed_) return;
    auto self = shared_from_this();  // Erasing it from the set must not destroy it here.
    closed_ = true;
    asio::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    port_.connections_.fetch_sub(1);
    worker_.connections.erase(self);
    if (worker_.connections.empty() && worker_.drain_timer) worker_.drain_timer->cancel();
  }

  // A call of this connection was answered (its reply encoded, or dropped).
  void CallDone() {
    CAIRN_CHECK(calls_in_flight_ > 0, "a call is answered once");
    --calls_in_flight_;
    ResumeReadingIfDrained();
  }
  void CallStarted() { ++calls_in_flight_; }

  http2::GrpcConnection& grpc() { return grpc_; }
  bool closed() const { return closed_; }

 private:
  void Read() {
    reading_ = true;
    socket_.async_read_some(asio::buffer(read_buffer_),
                            [self = shared_from_this()](asio::error_code error, size_t bytes) {
                              self->reading_ = false;
                              self->OnRead(error, bytes);
                            });
  }

  void OnRead(asio::error_code error, size_t bytes) {
    if (closed_) return;
    if (error) return Close();
    if (closing_) return Read();  // Lingering: what the client still sends is discarded.
    std::string_view input(read_buffer_.data(), bytes);
    if (protocol_ != Protocol::kHttp2) {
      if (!Sniff(input)) return;
      input = sniffed_;
    }
    requests_.clear();
    const bool alive = grpc_.Receive(input, &requests_);
    std::string().swap(sniffed_);
    auto self = shared_from_this();
    for (http2::GrpcRequest& request : requests_) {
      if (grpc_.session().blocked_data_bytes() > kBlockedBytesMax) {
        // The client leaves its replies unread (its flow-control window stays shut): no more
        // work for it until it reads.
        grpc_.ReplyError(request.stream, http2::GrpcCode::kResourceExhausted,
                         "too many response bytes waiting for the client to read them");
        continue;
      }
      port_.Dispatch(worker_, self, std::move(request));
    }
    requests_.clear();
    if (!alive) closing_ = true;
    MarkDirty();
    worker_.FlushDirty();
    if (closing_ || closed_) return;
    if (ShouldPause()) {
      reading_paused_ = true;  // Resumed by ResumeReadingIfDrained.
      return;
    }
    Read();
  }

  // The first bytes decide the protocol: HTTP/2's preface (gRPC), or an HTTP/1.1 request, which
  // gets etcd's /health, /version or /metrics answer and the connection closed. True once the
  // bytes so far (in sniffed_) are HTTP/2 and may go to the session; false when they were
  // handled here (more is being read, or the HTTP/1.1 answer is on its way).
  bool Sniff(std::string_view input) {
    sniffed_.append(input);
    if (protocol_ == Protocol::kUnknown) {
      const std::string_view preface = http2::kClientPreface;
      const size_t n = std::min(sniffed_.size(), preface.size());
      const bool preface_so_far = std::string_view(sniffed_).substr(0, n) == preface.substr(0, n);
      if (preface_so_far && n < preface.size()) {
        Read();
        return false;
      }
      protocol_ = !preface_so_far && port_.options_.metrics != nullptr && LooksLikeHttp1()
                      ? Protocol::kHttp1
                      : Protocol::kHttp2;  // Not HTTP/1.1 either: the session refuses it.
      if (protocol_ == Protocol::kHttp2) return true;
    }
    constexpr size_t kRequestHeadBytesMax = 8 * 1024;
    if (sniffed_.find("\r\n\r\n") == std::string::npos) {
      if (sniffed_.size() > kRequestHeadBytesMax) {
        Close();
      } else {
        Read();
      }
      return false;
    }
    std::string unsent;
    grpc_.session().TakeOutput(&unsent);  // The SETTINGS an HTTP/1.1 client must not see.
    closing_ = true;
    write_buffer_ = HttpResponseFor(*port_.options_.metrics, sniffed_);
    writing_ = true;
    asio::async_write(socket_, asio::buffer(write_buffer_),
                      [self = shared_from_this()](asio::error_code error, size_t) {
                        self->writing_ = false;
                        if (error) return self->Close();
                        self->Flush();  // Nothing left: lingers, then closes.
                      });
    return false;
  }

  bool LooksLikeHttp1() const {
    for (std::string_view method : {"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS "}) {
      if (std::string_view(sniffed_).substr(0, method.size()) == method) return true;
    }
    return false;
  }

  // Unwritten output (not replies waiting for the client's window: only reading brings the
  // WINDOW_UPDATE that sends them) or too many calls at the member.
  // Past a bound (pause) or still above half of one (resume): hysteresis, so reading does not
  // flip on and off with every reply.
  bool OverBounds(size_t divisor) const {
    return grpc_.session().output_bytes() + (writing_ ? write_buffer_.size() : 0) >
               port_.options_.output_bytes_pause / divisor ||
           calls_in_flight_ >= kCallsInFlightMax / divisor;
  }
  bool ShouldPause() const { return OverBounds(1); }

  void ResumeReadingIfDrained() {
    if (!reading_paused_ || closed_ || closing_ || reading_ || OverBounds(2)) return;
    reading_paused_ = false;
    Read();
  }

  // Everything is written: end our side and read until the client closes (or a second passes),
  // so the client reads the GOAWAY and the last replies instead of a reset (closing a socket
  // with unread input makes the kernel send RST, and the peer may drop what it had not read).
  void Linger() {
    if (lingering_ || closed_) return;
    lingering_ = true;
    asio::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    timer_.cancel();
    timer_.expires_after(kLingerTimeout);
    timer_.async_wait([self = shared_from_this()](asio::error_code error) {
      if (!error) self->Close();
    });
    if (!reading_) Read();
  }

  ClientPort& port_;
  Worker& worker_;
  tcp::socket socket_;
  asio::steady_timer timer_;  // The handshake deadline, then the linger deadline.
  http2::GrpcConnection grpc_;
  std::array<char, 64 * 1024> read_buffer_{};
  std::vector<http2::GrpcRequest> requests_;
  std::string write_buffer_;
  size_t calls_in_flight_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  bool reading_paused_ = false;
  bool closing_ = false;  // No more requests; close once the output is written.
  bool lingering_ = false;
  bool closed_ = false;
  bool dirty_ = false;
  enum class Protocol { kUnknown, kHttp2, kHttp1 };
  Protocol protocol_ = Protocol::kUnknown;
  std::string sniffed_;  // The first bytes, until the protocol is known.
};

void ClientPort::Worker::SendReplies() {
  std::vector<PendingReply*> batch;
  {
    std::lock_guard lock(mutex);
    batch.swap(replies);
    wake_posted = false;
  }
  for (PendingReply* reply : batch) reply->SendAndDelete();
  FlushDirty();
}

void ClientPort::Worker::FlushDirty() {
  // Flush may close a connection (a failed write), which never adds to `dirty`.
  std::vector<std::shared_ptr<Connection>> touched;
  touched.swap(dirty);
  for (const auto& connection : touched) connection->Flush();
}

void ClientPort::Post(Worker& worker, PendingReply* reply) {
  if (Worker::current == &worker) {  // Answered while dispatching (a request refused up front).
    reply->SendAndDelete();
    return;
  }
  std::lock_guard lock(worker.mutex);
  worker.replies.push_back(reply);
  if (!worker.wake_posted) {
    worker.wake_posted = true;
    asio::post(worker.io, [&worker] { worker.SendReplies(); });
  }
}

void ClientPort::Encode(Connection& connection, http2::StreamId stream, const grpc::Status& status,
                        const google::protobuf::MessageLite& response) {
  connection.CallDone();
  if (connection.closed()) return;
  // Protobuf serializes at most 2 GiB (and a gRPC message's length is 32 bits).
  constexpr size_t kResponseBytesMax = (size_t{1} << 31) - 1;
  // ByteSizeLong walks the message and caches the sizes the serializer below reuses: once.
  const size_t bytes = status.ok() ? response.ByteSizeLong() : 0;
  if (bytes > kResponseBytesMax) {
    connection.grpc().ReplyError(
        stream, http2::GrpcCode::kResourceExhausted,
        fmt::format("grpc: trying to send message larger than max ({} vs. {})", bytes,
                    kResponseBytesMax));
  } else if (status.ok()) {
    std::string framed(http2::kGrpcMessagePrefixBytes + bytes, '\0');
    http2::WriteMessagePrefix(framed.data(), bytes);
    response.SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(framed.data() + http2::kGrpcMessagePrefixBytes));
    connection.grpc().Reply(stream, framed);
  } else {
    connection.grpc().ReplyError(stream, static_cast<http2::GrpcCode>(status.error_code()),
                                 status.error_message());
  }
  connection.MarkDirty();
}

ClientPort::ClientPort(EtcdServices& services, ClientPortOptions options)
    : services_(services), options_(std::move(options)) {
  CAIRN_CHECK(options_.threads >= 1, "the client port needs at least one thread");
}

ClientPort::~ClientPort() {
  Stop();
}

Status ClientPort::Start(const std::vector<Url>& urls) {
  for (int i = 0; i < options_.threads; ++i) workers_.push_back(std::make_unique<Worker>());
  for (const Url& url : urls) {
    auto acceptor = OpenListener(workers_[0]->io, url, "--listen-client-urls");
    if (!acceptor.ok()) {
      return Status::IoError(fmt::format("cannot listen for clients on {}: {}", url.ToString(),
                                         acceptor.status().message()));
    }
    acceptors_.push_back(std::move(*acceptor));
  }
  for (auto& acceptor : acceptors_) Accept(*acceptor);
  started_ = true;
  for (auto& worker : workers_) {
    Worker& w = *worker;
    w.thread = std::thread([&w] {
      pthread_setname_np(pthread_self(), "cairn-client");
      Worker::current = &w;
      w.io.run();
      Worker::current = nullptr;
    });
  }
  return Status::Ok();
}

void ClientPort::Accept(tcp::acceptor& acceptor) {
  Worker& target = *workers_[next_worker_];
  next_worker_ = (next_worker_ + 1) % workers_.size();
  acceptor.async_accept(
      target.io, [this, &acceptor, &target](asio::error_code error, tcp::socket socket) {
        if (error == asio::error::operation_aborted || !acceptor.is_open()) return;
        if (error) {
          // Out of descriptors or memory, most likely: try again shortly rather than spin.
          spdlog::warn("accepting a client connection failed: {}", error.message());
          auto retry =
              std::make_shared<asio::steady_timer>(workers_[0]->io, std::chrono::milliseconds(100));
          retry->async_wait([this, &acceptor, retry](asio::error_code) { Accept(acceptor); });
          return;
        }
        if (connections_.load() >= options_.connections_max) {
          spdlog::warn("client connection refused: {} connections open", connections_.load());
          asio::error_code ignored;
          socket.close(ignored);
        } else {
          connections_.fetch_add(1);
          // The socket already belongs to `target`'s io_context; the connection starts on its
          // thread.
          asio::post(target.io, [this, &target, s = std::move(socket)]() mutable {
            asio::error_code ignored;
            if (target.stopping) {  // Accepted just before Stop: not served.
              s.close(ignored);
              connections_.fetch_sub(1);
              return;
            }
            s.set_option(tcp::no_delay(true), ignored);
            auto connection = std::make_shared<Connection>(*this, target, std::move(s));
            target.connections.insert(connection);
            connection->Start();
          });
        }
        Accept(acceptor);
      });
}

void ClientPort::Dispatch(Worker& worker, const std::shared_ptr<Connection>& connection,
                          http2::GrpcRequest request) {
  using namespace etcdserverpb;
  if (!worker.member_wakes_held) {
    // Hold the member's wake-ups until every read this poll found has been dispatched: the
    // release is posted behind the completions already queued (MemberNode::HoldWakes).
    worker.member_wakes_held = true;
    services_.HoldMemberWakes();
    asio::post(worker.io, [this, &worker] {
      worker.member_wakes_held = false;
      services_.ReleaseMemberWakes();
    });
  }
  const std::string_view path = request.path;
  const std::string_view message = request.message();
  auto serve = [&]<typename Req, typename Resp>(
                   void (EtcdServices::*handler)(WireCall<Req, Resp>&)) {
    connection->CallStarted();
    auto* call = new WireCall<Req, Resp>(worker, connection, request.stream);
    if (!call->request().ParseFromArray(message.data(), static_cast<int>(message.size()))) {
      call->Answer(grpc::Status(grpc::StatusCode::INTERNAL,
                                "grpc: error unmarshalling request: proto: cannot parse invalid "
                                "wire-format data"));
      return;
    }
    (services_.*handler)(*call);
  };
  if (path == "/etcdserverpb.KV/Range") {
    serve(&EtcdServices::Range<WireCall<RangeRequest, RangeResponse>>);
  } else if (path == "/etcdserverpb.KV/Put") {
    serve(&EtcdServices::Put<WireCall<PutRequest, PutResponse>>);
  } else if (path == "/etcdserverpb.KV/DeleteRange") {
    serve(&EtcdServices::DeleteRange<WireCall<DeleteRangeRequest, DeleteRangeResponse>>);
  } else if (path == "/etcdserverpb.KV/Txn") {
    serve(&EtcdServices::Txn<WireCall<TxnRequest, TxnResponse>>);
  } else if (path == "/etcdserverpb.KV/Compact") {
    serve(&EtcdServices::Compact<WireCall<CompactionRequest, CompactionResponse>>);
  } else if (path == "/etcdserverpb.Maintenance/Status") {
    serve(&EtcdServices::MaintenanceStatus<WireCall<StatusRequest, StatusResponse>>);
  } else {
    // grpc-go's answers for a service or a method the server does not have.
    std::string text;
    const size_t slash = path.find('/', 1);
    const std::string_view service =
        slash == std::string_view::npos ? path.substr(1) : path.substr(1, slash - 1);
    const bool known_service =
        service == "etcdserverpb.KV" || service == "etcdserverpb.Maintenance";
    if (path.empty() || path[0] != '/' || slash == std::string_view::npos) {
      text = fmt::format("malformed method name: \"{}\"", path);
    } else if (known_service) {
      text = fmt::format("unknown method {} for service {}", path.substr(slash + 1), service);
    } else {
      text = fmt::format("unknown service {}", service);
    }
    connection->grpc().ReplyError(request.stream, http2::GrpcCode::kUnimplemented, text);
  }
}

void ClientPort::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!started_) {
    acceptors_.clear();
    return;
  }
  for (auto& worker : workers_) {
    Worker& w = *worker;
    asio::post(w.io, [this, &w] {
      if (&w == workers_[0].get()) {
        for (auto& acceptor : acceptors_) {
          asio::error_code ignored;
          acceptor->close(ignored);
        }
      }
      w.stopping = true;
      w.SendReplies();  // The member's last answers ("server stopped") go out before GOAWAY.
      const auto connections = w.connections;
      for (const auto& connection : connections) connection->GoAway();
      w.work.reset();
      if (w.connections.empty()) return;
      w.drain_timer.emplace(w.io, std::chrono::milliseconds(options_.drain_timeout_ms));
      w.drain_timer->async_wait([&w](asio::error_code) {
        const auto left = w.connections;
        for (const auto& connection : left) connection->Close();
      });
    });
  }
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
    // Replies posted after the thread ended (none once the member has stopped first).
    for (PendingReply* reply : worker->replies) delete reply;
    worker->replies.clear();
  }
  acceptors_.clear();
}

}  // namespace cairn::server
