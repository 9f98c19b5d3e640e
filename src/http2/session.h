// Session: one end of an HTTP/2 connection (RFC 9113), as a pure state machine — bytes in, stream
// events and bytes out. No socket, thread or clock: the shell (the client port's Asio connection,
// or cairn-bench's) reads, feeds Receive, hands the events to the gRPC layer and writes
// TakeOutput's bytes; tests drive it directly. The server end (Role::kServer) takes streams the
// client opens; the client end opens them (OpenStream) within the server's stream limit.
//
// Design note. HTTP/2 multiplexes many requests on one connection (the Request Pipeline pattern on
// the client side): every frame of every stream goes through here, in order. What is kept:
// - Streams: open → half-closed (the client sent END_STREAM) → closed (we sent END_STREAM or a
//   RST_STREAM, or the client reset it). Ids are never reused, so a reply for a stream that is no
//   longer open (the client cancelled) is dropped by id.
// - Flow control both ways. Receiving: SETTINGS_INITIAL_WINDOW_SIZE and a connection window of
//   our choosing; credit is returned as frames arrive (the layer above bounds what it buffers).
//   Sending: DATA never exceeds the peer's stream and connection windows or its max frame size;
//   what does not fit waits in the stream's queue until a WINDOW_UPDATE or SETTINGS opens it, and
//   the stream's trailers wait behind its data.
// - One HPACK decoder and one encoder (the connection's two compression contexts, hpack.h); every
//   header block leaves in the order it was built, and the encoder's size update owed after the
//   peer's SETTINGS_HEADER_TABLE_SIZE starts the next block written.
// Errors: a connection error queues GOAWAY with its code and makes Receive return false — the
// shell writes what is queued and closes. A stream error resets only the stream.
//
// Bounds: streams open at once (`streams_max`, advertised as SETTINGS_MAX_CONCURRENT_STREAMS;
// more are refused with REFUSED_STREAM), one header block (`header_block_bytes_max`, then
// ENHANCE_YOUR_CALM), frames at most 16,384 bytes (the default SETTINGS_MAX_FRAME_SIZE we keep).
// Output is unbounded here; the shell stops reading while its unsent output is large.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "http2/hpack.h"

namespace cairn::http2 {

using StreamId = uint32_t;

// RFC 9113 §7.
enum class ErrorCode : uint32_t {
  kNoError = 0x0,
  kProtocolError = 0x1,
  kInternalError = 0x2,
  kFlowControlError = 0x3,
  kSettingsTimeout = 0x4,
  kStreamClosed = 0x5,
  kFrameSizeError = 0x6,
  kRefusedStream = 0x7,
  kCancel = 0x8,
  kCompressionError = 0x9,
  kConnectError = 0xa,
  kEnhanceYourCalm = 0xb,
  kInadequateSecurity = 0xc,
  kHttp11Required = 0xd,
};

// RFC 9113 §3.4: what every client sends first.
inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr size_t kFrameHeaderBytes = 9;
inline constexpr uint32_t kDefaultFrameBytesMax = 16384;
inline constexpr int64_t kWindowBytesMax = (int64_t{1} << 31) - 1;

enum class Role { kServer, kClient };

struct SessionOptions {
  Role role = Role::kServer;
  uint32_t streams_max = 1024;              // Server: advertised SETTINGS_MAX_CONCURRENT_STREAMS.
  uint32_t stream_window_bytes = 4u << 20;  // Advertised SETTINGS_INITIAL_WINDOW_SIZE.
  uint32_t connection_window_bytes = 16u << 20;  // Raised to by a WINDOW_UPDATE at start.
  uint32_t header_list_bytes_max = 64u << 10;    // Advertised SETTINGS_MAX_HEADER_LIST_SIZE.
  uint32_t header_block_bytes_max = 64u << 10;   // HEADERS + CONTINUATION bytes of one block.
};

struct StreamEvent {
  enum class Kind {
    kHeaders,  // A request's (server) or a response's (client) headers, or their trailers when
               // the stream already had headers.
    kData,     // Body bytes, in order.
    kReset,    // The stream ended without a reply to send: the client reset it, or it broke a
               // rule of the protocol (and we reset it). Anything buffered for it can go.
  };
  Kind kind = Kind::kHeaders;
  StreamId stream = 0;
  bool end_stream = false;  // The client sent its last frame on this stream.
  std::vector<HeaderField> headers;
  std::string data;
};

class Session {
 public:
  explicit Session(SessionOptions options = {});

  // Feeds bytes read from the connection, appending what they complete to `events`. Returns false
  // once the connection is over (a connection error or our GOAWAY): write the output and close.
  bool Receive(std::string_view bytes, std::vector<StreamEvent>* events);

  // The reply side. Each returns false, doing nothing, if the stream is not open for sending (the
  // client reset it): the caller drops its reply. `header_block` is HPACK-encoded (hpack.h).
  bool SendHeaders(StreamId stream, std::string_view header_block, bool end_stream);
  bool SendData(StreamId stream, std::string_view data, bool end_stream);
  // Trailers end the stream; they leave after every byte of data queued before them.
  bool SendTrailers(StreamId stream, std::string_view header_block);
  void ResetStream(StreamId stream, ErrorCode code);

  // Client: opens the next stream (then SendHeaders, SendData); 0 while the server's
  // SETTINGS_MAX_CONCURRENT_STREAMS are all open or after its GOAWAY.
  StreamId OpenStream();
  bool CanOpenStream() const;
  HpackEncoder& encoder() { return encoder_; }
  // Stops taking new streams; the connection is over once output is written.
  void GoAway(ErrorCode code, std::string_view debug);

  bool HasOutput() const { return !output_.empty(); }
  size_t output_bytes() const { return output_.size(); }
  // Moves every byte produced so far into `out` (which is cleared first).
  void TakeOutput(std::string* out);

  bool closed() const { return closed_; }
  // The peer's preface (server) and first SETTINGS have arrived.
  bool handshake_done() const { return settings_received_; }
  size_t open_streams() const { return streams_.size(); }
  // Bytes of DATA waiting for the peer's flow-control window, over all streams.
  size_t blocked_data_bytes() const { return blocked_data_bytes_; }
  StreamId last_stream() const { return last_stream_; }

 private:
  struct Stream {
    int64_t send_window = 0;
    bool headers_received = false;
    int64_t receive_window = 0;
    bool remote_closed = false;  // The client sent END_STREAM.
    bool headers_sent = false;
    bool local_closed = false;  // We queued our END_STREAM (data or trailers).
    std::string pending;        // DATA not yet sent for lack of window.
    size_t pending_offset = 0;
    bool end_after_pending = false;
    bool has_trailers = false;
    std::string trailers;  // Sent after `pending`.
  };

  bool HandleFrame(uint8_t type, uint8_t flags, StreamId stream, std::string_view payload,
                   std::vector<StreamEvent>* events);
  bool HandleData(uint8_t flags, StreamId id, std::string_view payload,
                  std::vector<StreamEvent>* events);
  bool HandleHeaders(uint8_t flags, StreamId id, std::string_view payload,
                     std::vector<StreamEvent>* events);
  bool HandleHeaderBlock(std::vector<StreamEvent>* events);
  bool HandleSettings(uint8_t flags, StreamId id, std::string_view payload);
  bool HandleWindowUpdate(StreamId id, std::string_view payload, std::vector<StreamEvent>* events);
  bool HandleResetStream(StreamId id, std::string_view payload, std::vector<StreamEvent>* events);

  bool HandleGoAway(std::string_view payload, std::vector<StreamEvent>* events);
  // A stream id the peer may not use yet (§5.1.1): above the ones opened so far.
  bool IsIdle(StreamId id) const;
  // Queues GOAWAY with `code` and ends the connection; returns false for `return Fail(...)`.
  bool Fail(ErrorCode code, std::string_view debug);
  // Resets a stream we hold and tells the layer above.
  void ResetAndForget(StreamId id, ErrorCode code, std::vector<StreamEvent>* events);

  void WriteFrame(uint8_t type, uint8_t flags, StreamId stream, std::string_view payload);
  void WriteHeaderBlock(StreamId stream, std::string_view block, bool end_stream);
  // Sends what the windows allow of the pending data (and trailers behind it) of the streams
  // that waited for the connection window (or, after SETTINGS, of every stream with data).
  void FlushPending(bool every_stream = false);
  // Writes DATA frames of `data` as far as the windows and the peer's frame size allow (the last
  // frame ends the stream if `end_stream` and all of it went); returns the bytes written.
  size_t WriteData(StreamId id, Stream& stream, std::string_view data, bool end_stream);
  // Sends as much of `stream`'s pending data as the windows allow; true if all of it went.
  bool FlushStream(StreamId id, Stream& stream);
  void ReturnCredit(StreamId id, Stream* stream, size_t bytes);
  void FinishIfDone(StreamId id);
  // Sends RST_STREAM for `id` and remembers it in reset_by_us_.
  void WriteReset(StreamId id, ErrorCode code);

  const SessionOptions options_;
  HpackDecoder decoder_;
  HpackEncoder encoder_;
  std::string input_;  // Bytes received and not yet consumed as whole frames.
  std::string output_;
  bool preface_received_ = false;
  bool settings_received_ = false;
  bool closed_ = false;
  bool goaway_sent_ = false;

  // Peer settings (what we must respect when sending).
  uint32_t peer_frame_bytes_max_ = kDefaultFrameBytesMax;
  int64_t peer_stream_window_bytes_ = 65535;
  uint32_t peer_streams_max_ = UINT32_MAX;
  bool goaway_received_ = false;

  int64_t connection_send_window_ = 65535;
  int64_t connection_receive_window_ = 65535;
  size_t connection_credit_unreturned_ = 0;

  // A header block being assembled from HEADERS + CONTINUATION.
  bool in_header_block_ = false;
  StreamId header_stream_ = 0;
  bool header_end_stream_ = false;
  std::string header_block_;

  StreamId last_stream_ = 0;  // Server: the highest stream the client opened.
  StreamId next_stream_ = 1;  // Client: the id OpenStream gives next.
  std::map<StreamId, Stream> streams_;
  size_t blocked_data_bytes_ = 0;
  // Streams whose data waits for the connection window (their own window had room): what a
  // connection-level WINDOW_UPDATE can move. Streams waiting on their own window are moved by
  // their own WINDOW_UPDATE or by SETTINGS, so a flood of small updates costs O(1) each.
  std::set<StreamId> waiting_for_connection_;
  // Streams we reset lately (bounded, oldest forgotten): the client may still send on them, and
  // those frames are ignored rather than treated as the protocol error they would be otherwise.
  std::set<StreamId> reset_by_us_;
  std::deque<StreamId> reset_order_;
};

}  // namespace cairn::http2
