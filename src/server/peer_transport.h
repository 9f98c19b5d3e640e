// PeerTransport: the Single Socket Channel between members, over TCP with standalone Asio.
//
// Design note. Each member keeps exactly one outgoing TCP connection to every other member and
// sends everything for that member over it, so messages from A to B arrive in the order A sent
// them (Single Socket Channel). B answers over its own connection to A: one connection per ordered
// pair. On that channel the leader keeps many appends in flight (Request Pipeline; the core bounds
// how many).
//
//   - Outgoing: a bounded queue per peer (frames and bytes). Queued frames are written with one
//     gather write; whatever queued meanwhile goes in the next one. A failed connect or write
//     closes the socket, drops what was queued (the consensus protocol tolerates loss and
//     retransmits) and reconnects after a backoff that doubles from 50 ms to 1 s (reset once a
//     connection has lasted a second, so a peer that closes at once is not hammered).
//   - The first frame on every connection is a Hello (member id, cluster id). The accepting side
//     closes a connection without a hello within hello_timeout_ms, one whose hello names another
//     cluster or an unknown member, and any
//     connection that sends a malformed frame (bad length, checksum, type or fields) or a frame
//     claiming another sender. Nothing a peer sends can crash the member: frames are decoded by
//     transport::FrameDecoder, which refuses before allocating beyond frame_bytes_max.
//   - The member thread runs the io_context (MemberNode::Start), so a received frame is decoded
//     and handed to the core on the thread that steps it; Send posts one closure per batch (from
//     the member thread it runs in the same loop; from the log writer it wakes the loop).
#pragma once

#include <asio.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "server/cluster_config.h"
#include "server/metrics.h"
#include "transport/message_codec.h"

namespace cairn::server {

struct PeerTransportOptions {
  NodeId self{};
  uint64_t cluster_id = 0;
  std::vector<Url> listen{};
  std::map<NodeId, Url> peers{};  // Every other member and where to reach it.
  size_t send_queue_frames_max = 8'192;
  size_t send_queue_bytes_max = 64u << 20;
  uint32_t frame_bytes_max = 16u << 20;
  size_t inbound_connections_max = 64;
  uint32_t hello_timeout_ms = 3'000;  // An inbound connection must send its Hello by then.
  uint32_t reconnect_min_ms = 50;
  uint32_t reconnect_max_ms = 1'000;
};

class PeerTransport {
 public:
  using FrameHandler = std::function<void(NodeId from, transport::PeerFrame frame)>;

  PeerTransport(asio::io_context& io, PeerTransportOptions options, FrameHandler on_frame,
                Metrics* metrics);
  ~PeerTransport();

  // Binds the listeners (an error if a port is taken) and starts connecting to peers. Runs on
  // any thread before the io_context runs.
  Status Start();
  // Closes every socket. Call from the thread running the io_context, or after it stopped.
  void Close();

  // Thread-safe: queue frames for peers; frames for unknown members are dropped.
  void Send(std::vector<std::pair<NodeId, std::string>> frames);

 private:
  struct Outbound;
  class Inbound;

  void Accept(asio::ip::tcp::acceptor& acceptor);
  void Enqueue(Outbound& peer, std::string frame);
  void Connect(Outbound& peer);
  void WriteQueued(Outbound& peer);
  void WatchForClose(Outbound& peer);
  void Disconnect(Outbound& peer, const std::string& why);

  asio::io_context& io_;
  const PeerTransportOptions options_;
  const FrameHandler on_frame_;
  Metrics* const metrics_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::map<NodeId, std::unique_ptr<Outbound>> outbound_;
  std::set<std::shared_ptr<Inbound>> inbound_;
  bool closed_ = false;
};

}  // namespace cairn::server
