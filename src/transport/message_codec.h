// Peer message framing: how consensus messages cross a Single Socket Channel.
//
// Design note. Members talk over one TCP connection per ordered pair (Single Socket Channel,
// issue #4); this is the byte format on that connection, kept pure so it can be tested and fuzzed
// without sockets. A frame is
//
//   length   u32  bytes of `body` (1 .. frame_bytes_max)
//   crc32c   u32  CRC32C of `body`
//   body          version u8 (kCodecVersion), kind u8, then the fields of that kind in a fixed order
//
// Kinds 0..63 are consensus::MessageType values (a consensus Message follows). Kinds from 64 on
// belong to the member shell, not to consensus:
//   kHello (64)           the first frame on every connection: who is calling, for which cluster;
//   kForwardedWrite (65)  a follower hands a client's write (a serialized command) to the leader;
//   kForwardRejected (66) the leader could not take a forwarded write (not leader, busy).
//
// All integers little-endian; strings and entry payloads are u32-length-prefixed; the entry count
// is a u32. Decoding is the boundary where a peer's bytes become trusted values: every length is
// checked against what remains and against the bounds before anything is allocated, and any
// violation (bad checksum, unknown version or message type, trailing bytes, a length beyond the
// bound) is a Corruption status on which the caller closes the connection. A peer can make the
// reader allocate at most frame_bytes_max for one frame.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "base/status.h"
#include "consensus/message.h"

namespace cairn::transport {

inline constexpr uint8_t kCodecVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 8;
// Default bound on one frame: a full append (entries_max x 16 MiB payload bound is far larger,
// but the leader's append_bytes_max keeps real frames near 1 MiB) with ample room.
inline constexpr uint32_t kFrameBytesMaxDefault = 64u << 20;

// The first frame a caller sends on a new connection. The receiver closes the connection when
// the cluster id differs or the caller is not a member it knows.
struct Hello {
  NodeId from{};
  uint64_t cluster_id = 0;
};

// A client's write a follower forwards to the leader: `command` is what the leader proposes.
struct ForwardedWrite {
  NodeId from{};
  uint64_t request_id = 0;
  std::string command{};
};

// The leader's refusal of a ForwardedWrite (the follower fails or retries the client's request).
struct ForwardRejected {
  NodeId from{};
  uint64_t request_id = 0;
  StatusCode code = StatusCode::kNotLeader;
  std::string message{};
};

using PeerFrame = std::variant<consensus::Message, Hello, ForwardedWrite, ForwardRejected>;

// The whole frame (header and body).
std::string EncodeFrame(const PeerFrame& frame);

// Decodes one frame body (without the 8-byte header).
Result<PeerFrame> DecodeBody(std::string_view body);

// Reassembles frames from a byte stream that arrives in arbitrary pieces.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t frame_bytes_max = kFrameBytesMaxDefault)
      : frame_bytes_max_(frame_bytes_max) {}

  // Appends received bytes. Refused (Corruption) once the decoder has failed.
  Status Feed(std::string_view bytes);
  // The next complete frame, nullopt when more bytes are needed, or Corruption (final: the
  // stream cannot be resynchronised, so the connection must be closed).
  Result<std::optional<PeerFrame>> Next();
  // Bytes received but not yet consumed.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  uint32_t frame_bytes_max_;
  std::string buffer_;
  size_t consumed_ = 0;
  std::optional<Status> failure_;
};

}  // namespace cairn::transport
