#include "http2/session.h"

#include <algorithm>
#include <optional>

namespace cairn::http2 {
namespace {

enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoAway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};

enum Flags : uint8_t {
  kEndStream = 0x1,
  kAck = 0x1,
  kEndHeaders = 0x4,
  kPadded = 0x8,
  kPriorityFlag = 0x20,
};

enum SettingId : uint16_t {
  kHeaderTableSize = 0x1,
  kEnablePush = 0x2,
  kMaxConcurrentStreams = 0x3,
  kInitialWindowSize = 0x4,
  kMaxFrameSize = 0x5,
  kMaxHeaderListSize = 0x6,
};

uint32_t ReadU32(std::string_view s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[at + 3])};
}

void AppendU32(std::string* out, uint32_t v) {
  const char bytes[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                         static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(bytes, 4);
}

void AppendSetting(std::string* out, uint16_t id, uint32_t value) {
  out->push_back(static_cast<char>(id >> 8));
  out->push_back(static_cast<char>(id));
  AppendU32(out, value);
}

}  // namespace

Session::Session(SessionOptions options)
    : options_(options), decoder_(4096, options.header_list_bytes_max) {
  CAIRN_CHECK(
      options_.stream_window_bytes >= 65535 && options_.stream_window_bytes <= kWindowBytesMax,
      "the advertised stream window is at least the protocol's default");
  CAIRN_CHECK(options_.connection_window_bytes >= 65535 &&
                  options_.connection_window_bytes <= kWindowBytesMax,
              "the connection window is at least the protocol's default");
  // §3.4: the client's preface is the magic string and SETTINGS; the server's is SETTINGS, sent
  // without waiting for the client's.
  std::string settings;
  if (options_.role == Role::kClient) {
    output_.append(kClientPreface);
    preface_received_ = true;  // The server sends none; its first frame must be SETTINGS.
    AppendSetting(&settings, kEnablePush, 0);
  } else {
    AppendSetting(&settings, kMaxConcurrentStreams, options_.streams_max);
  }
  AppendSetting(&settings, kInitialWindowSize, options_.stream_window_bytes);
  AppendSetting(&settings, kMaxHeaderListSize, options_.header_list_bytes_max);
  WriteFrame(kSettings, 0, 0, settings);
  if (options_.connection_window_bytes > 65535) {
    std::string increment;
    AppendU32(&increment, options_.connection_window_bytes - 65535);
    WriteFrame(kWindowUpdate, 0, 0, increment);
    connection_receive_window_ = options_.connection_window_bytes;
  }
}

void Session::WriteFrame(uint8_t type, uint8_t flags, StreamId stream, std::string_view payload) {
  CAIRN_CHECK(payload.size() < (1u << 24), "an HTTP/2 frame's length fits 24 bits");
  const size_t n = payload.size();
  const char header[kFrameHeaderBytes] = {static_cast<char>(n >> 16),
                                          static_cast<char>(n >> 8),
                                          static_cast<char>(n),
                                          static_cast<char>(type),
                                          static_cast<char>(flags),
                                          static_cast<char>(stream >> 24),
                                          static_cast<char>(stream >> 16),
                                          static_cast<char>(stream >> 8),
                                          static_cast<char>(stream)};
  output_.append(header, kFrameHeaderBytes);
  output_.append(payload);
}

void Session::TakeOutput(std::string* out) {
  out->clear();
  out->swap(output_);
}

bool Session::Fail(ErrorCode code, std::string_view debug) {
  GoAway(code, debug);
  return false;
}

void Session::GoAway(ErrorCode code, std::string_view debug) {
  closed_ = true;
  if (goaway_sent_) return;
  goaway_sent_ = true;
  std::string payload;
  AppendU32(&payload, last_stream_);
  AppendU32(&payload, static_cast<uint32_t>(code));
  payload.append(debug.substr(0, 256));
  WriteFrame(kGoAway, 0, 0, payload);
}

bool Session::Receive(std::string_view bytes, std::vector<StreamEvent>* events) {
  if (closed_) return false;
  // Frames are parsed straight from `bytes` unless part of one waits from an earlier read; only
  // a trailing partial frame is copied.
  const bool buffered = !input_.empty();
  if (buffered) input_.append(bytes);
  const std::string_view in = buffered ? std::string_view(input_) : bytes;
  size_t pos = 0;
  if (!preface_received_) {
    const size_t n = std::min(in.size(), kClientPreface.size());
    if (in.substr(0, n) != kClientPreface.substr(0, n)) {
      input_.clear();
      return Fail(ErrorCode::kProtocolError, "not an HTTP/2 client preface");
    }
    if (in.size() < kClientPreface.size()) {
      input_.assign(in);
      return true;
    }
    preface_received_ = true;
    pos = kClientPreface.size();
  }
  while (!closed_ && in.size() - pos >= kFrameHeaderBytes) {
    const uint32_t length = ReadU32(in, pos) >> 8;
    const auto type = static_cast<uint8_t>(in[pos + 3]);
    const auto flags = static_cast<uint8_t>(in[pos + 4]);
    const StreamId stream = ReadU32(in, pos + 5) & 0x7fffffffu;
    if (length > kDefaultFrameBytesMax) {
      input_.clear();
      return Fail(ErrorCode::kFrameSizeError, "frame larger than SETTINGS_MAX_FRAME_SIZE");
    }
    if (in.size() - pos - kFrameHeaderBytes < length) break;
    const std::string_view payload = in.substr(pos + kFrameHeaderBytes, length);
    pos += kFrameHeaderBytes + length;
    bool ok = true;
    if (!settings_received_ && type != kSettings) {
      ok = Fail(ErrorCode::kProtocolError, "the peer's first frame is not SETTINGS");
    } else if (in_header_block_ && type != kContinuation) {
      ok = Fail(ErrorCode::kProtocolError, "a header block interrupted by another frame");
    } else {
      ok = HandleFrame(type, flags, stream, payload, events);
    }
    if (!ok) {
      input_.clear();
      return false;
    }
  }
  if (buffered) {
    input_.erase(0, pos);
  } else {
    input_.assign(in.substr(pos));
  }
  return !closed_;
}

bool Session::HandleFrame(uint8_t type, uint8_t flags, StreamId stream, std::string_view payload,
                          std::vector<StreamEvent>* events) {
  switch (type) {
    case kData:
      return HandleData(flags, stream, payload, events);
    case kHeaders:
      return HandleHeaders(flags, stream, payload, events);
    case kContinuation:
      if (!in_header_block_ || stream != header_stream_) {
        return Fail(ErrorCode::kProtocolError, "CONTINUATION without a header block");
      }
      if (header_block_.size() + payload.size() > options_.header_block_bytes_max) {
        return Fail(ErrorCode::kEnhanceYourCalm, "header block too large");
      }
      header_block_.append(payload);
      if ((flags & kEndHeaders) == 0) return true;
      in_header_block_ = false;
      return HandleHeaderBlock(events);
    case kPriority:
      if (stream == 0) return Fail(ErrorCode::kProtocolError, "PRIORITY on stream 0");
      if (payload.size() != 5 && streams_.count(stream) != 0) {
        ResetAndForget(stream, ErrorCode::kFrameSizeError, events);
      }
      return true;  // Priorities are advisory; replies leave in the order they are ready.
    case kRstStream:
      return HandleResetStream(stream, payload, events);
    case kSettings:
      return HandleSettings(flags, stream, payload);
    case kPushPromise:
      return Fail(ErrorCode::kProtocolError, "a client sent PUSH_PROMISE");
    case kPing:
      if (stream != 0) return Fail(ErrorCode::kProtocolError, "PING on a stream");
      if (payload.size() != 8) return Fail(ErrorCode::kFrameSizeError, "PING is 8 bytes");
      if ((flags & kAck) == 0) WriteFrame(kPing, kAck, 0, payload);
      return true;
    case kGoAway:
      if (stream != 0) return Fail(ErrorCode::kProtocolError, "GOAWAY on a stream");
      return HandleGoAway(payload, events);
    case kWindowUpdate:
      return HandleWindowUpdate(stream, payload, events);
    default:
      return true;  // §5.5: unknown frame types are ignored.
  }
}

bool Session::HandleData(uint8_t flags, StreamId id, std::string_view payload,
                         std::vector<StreamEvent>* events) {
  if (id == 0) return Fail(ErrorCode::kProtocolError, "DATA on stream 0");
  const size_t flow_bytes = payload.size();  // Padding counts against the windows too.
  std::string_view data = payload;
  if (flags & kPadded) {
    if (data.empty()) return Fail(ErrorCode::kFrameSizeError, "padded DATA without a pad length");
    const size_t pad = static_cast<uint8_t>(data[0]);
    data.remove_prefix(1);
    if (pad > data.size()) return Fail(ErrorCode::kProtocolError, "DATA padding beyond the frame");
    data.remove_suffix(pad);
  }
  if (static_cast<int64_t>(flow_bytes) > connection_receive_window_) {
    return Fail(ErrorCode::kFlowControlError, "DATA beyond the connection window");
  }
  connection_receive_window_ -= static_cast<int64_t>(flow_bytes);
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.remote_closed) {
    ReturnCredit(id, nullptr, flow_bytes);
    if (IsIdle(id)) return Fail(ErrorCode::kProtocolError, "DATA on an idle stream");
    // A stream we closed or reset: its late frames are dropped (§5.1). A half-closed one broke
    // the protocol by sending after END_STREAM.
    if (it != streams_.end()) ResetAndForget(id, ErrorCode::kStreamClosed, events);
    return true;
  }
  Stream& stream = it->second;
  if (static_cast<int64_t>(flow_bytes) > stream.receive_window) {
    ReturnCredit(id, nullptr, flow_bytes);
    ResetAndForget(id, ErrorCode::kFlowControlError, events);
    return true;
  }
  stream.receive_window -= static_cast<int64_t>(flow_bytes);
  const bool end = (flags & kEndStream) != 0;
  if (end) stream.remote_closed = true;
  StreamEvent event;
  event.kind = StreamEvent::Kind::kData;
  event.stream = id;
  event.end_stream = end;
  event.data.assign(data);
  events->push_back(std::move(event));
  ReturnCredit(id, end ? nullptr : &stream, flow_bytes);
  if (end) FinishIfDone(id);
  return true;
}

void Session::ReturnCredit(StreamId id, Stream* stream, size_t bytes) {
  // Credit goes back in batches of half a window: one WINDOW_UPDATE per many frames.
  connection_credit_unreturned_ += bytes;
  if (connection_credit_unreturned_ >= options_.connection_window_bytes / 2) {
    std::string increment;
    AppendU32(&increment, static_cast<uint32_t>(connection_credit_unreturned_));
    WriteFrame(kWindowUpdate, 0, 0, increment);
    connection_receive_window_ += static_cast<int64_t>(connection_credit_unreturned_);
    connection_credit_unreturned_ = 0;
  }
  if (stream == nullptr) return;
  const int64_t used = int64_t{options_.stream_window_bytes} - stream->receive_window;
  if (used >= int64_t{options_.stream_window_bytes} / 2) {
    std::string increment;
    AppendU32(&increment, static_cast<uint32_t>(used));
    WriteFrame(kWindowUpdate, 0, id, increment);
    stream->receive_window += used;
  }
}

bool Session::HandleHeaders(uint8_t flags, StreamId id, std::string_view payload,
                            std::vector<StreamEvent>* events) {
  if (id == 0) return Fail(ErrorCode::kProtocolError, "HEADERS on stream 0");
  std::string_view block = payload;
  size_t pad = 0;
  if (flags & kPadded) {
    if (block.empty()) return Fail(ErrorCode::kFrameSizeError, "padded HEADERS without a length");
    pad = static_cast<uint8_t>(block[0]);
    block.remove_prefix(1);
  }
  if (flags & kPriorityFlag) {
    if (block.size() < 5) return Fail(ErrorCode::kFrameSizeError, "HEADERS priority truncated");
    block.remove_prefix(5);
  }
  if (pad > block.size())
    return Fail(ErrorCode::kProtocolError, "HEADERS padding beyond the frame");
  block.remove_suffix(pad);
  in_header_block_ = true;
  header_stream_ = id;
  header_end_stream_ = (flags & kEndStream) != 0;
  header_block_.assign(block);
  if ((flags & kEndHeaders) == 0) return true;
  in_header_block_ = false;
  return HandleHeaderBlock(events);
}

bool Session::HandleHeaderBlock(std::vector<StreamEvent>* events) {
  // A gRPC call's headers are about ten fields: room for them up front, or the vector grows
  // (and copies its fields) four times per call, 4.5% of a 1-member put run's server CPU.
  constexpr size_t kHeaderFieldsExpected = 16;
  std::vector<HeaderField> fields;
  fields.reserve(kHeaderFieldsExpected);
  const Status decoded = decoder_.Decode(header_block_, &fields);
  header_block_.clear();
  if (decoded.code() == StatusCode::kCorruption) {
    return Fail(ErrorCode::kCompressionError, decoded.message());
  }
  const bool too_large = !decoded.ok();
  const StreamId id = header_stream_;
  auto it = streams_.find(id);
  if (it != streams_.end()) {  // A response's headers, or trailers of either.
    Stream& stream = it->second;
    const bool trailers = stream.headers_received;
    if (stream.remote_closed || (trailers && !header_end_stream_) || too_large) {
      ResetAndForget(id,
                     too_large              ? ErrorCode::kEnhanceYourCalm
                     : stream.remote_closed ? ErrorCode::kStreamClosed
                                            : ErrorCode::kProtocolError,
                     events);
      return true;
    }
    stream.headers_received = true;
    if (header_end_stream_) stream.remote_closed = true;
    StreamEvent event;
    event.kind = StreamEvent::Kind::kHeaders;
    event.stream = id;
    event.end_stream = header_end_stream_;
    event.headers = std::move(fields);
    events->push_back(std::move(event));
    if (header_end_stream_) FinishIfDone(id);
    return true;
  }
  if (options_.role == Role::kClient) {
    if (!IsIdle(id)) return true;  // A stream we reset: its late response is dropped.
    return Fail(ErrorCode::kProtocolError, "HEADERS on a stream the client did not open");
  }
  if (id % 2 == 0) return Fail(ErrorCode::kProtocolError, "a client opened an even stream id");
  if (id <= last_stream_) {
    // §5.1: after our RST_STREAM the client may still have frames on the way; they are ignored
    // (the block was decoded above, which is all the connection needs). On any other closed
    // stream HEADERS is a connection error.
    if (reset_by_us_.count(id) != 0) return true;
    return Fail(ErrorCode::kStreamClosed, "HEADERS on a closed stream");
  }
  last_stream_ = id;
  if (goaway_sent_) return true;  // §6.8: streams after our GOAWAY are ignored.
  if (streams_.size() >= options_.streams_max) {
    WriteReset(id, ErrorCode::kRefusedStream);
    return true;
  }
  if (too_large) {
    WriteReset(id, ErrorCode::kEnhanceYourCalm);
    return true;
  }
  Stream& stream = streams_[id];
  stream.send_window = peer_stream_window_bytes_;
  stream.receive_window = options_.stream_window_bytes;
  stream.headers_received = true;
  stream.remote_closed = header_end_stream_;
  StreamEvent event;
  event.kind = StreamEvent::Kind::kHeaders;
  event.stream = id;
  event.end_stream = header_end_stream_;
  event.headers = std::move(fields);
  events->push_back(std::move(event));
  return true;
}

bool Session::HandleSettings(uint8_t flags, StreamId id, std::string_view payload) {
  if (id != 0) return Fail(ErrorCode::kProtocolError, "SETTINGS on a stream");
  if (flags & kAck) {
    if (!payload.empty()) return Fail(ErrorCode::kFrameSizeError, "SETTINGS ACK with a payload");
    return true;
  }
  if (payload.size() % 6 != 0) return Fail(ErrorCode::kFrameSizeError, "SETTINGS length");
  std::optional<int64_t> new_stream_window;
  for (size_t at = 0; at < payload.size(); at += 6) {
    const uint16_t setting = static_cast<uint16_t>((static_cast<uint8_t>(payload[at]) << 8) |
                                                   static_cast<uint8_t>(payload[at + 1]));
    const uint32_t value = ReadU32(payload, at + 2);
    switch (setting) {
      case kHeaderTableSize:
        encoder_.SetPeerTableBytes(value);
        break;
      case kMaxConcurrentStreams:
        peer_streams_max_ = value;
        break;
      case kEnablePush:
        if (value > 1) return Fail(ErrorCode::kProtocolError, "SETTINGS_ENABLE_PUSH above 1");
        break;
      case kInitialWindowSize:
        if (value > kWindowBytesMax) {
          return Fail(ErrorCode::kFlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1");
        }
        new_stream_window = value;  // Applied once, after the loop: the last value wins.
        break;
      case kMaxFrameSize:
        if (value < kDefaultFrameBytesMax || value > (1u << 24) - 1) {
          return Fail(ErrorCode::kProtocolError, "SETTINGS_MAX_FRAME_SIZE out of range");
        }
        peer_frame_bytes_max_ = value;
        break;
      default:
        break;  // The rest are advisory.
    }
  }
  if (new_stream_window) {
    const int64_t delta = *new_stream_window - peer_stream_window_bytes_;
    for (auto& [stream_id, stream] : streams_) {
      stream.send_window += delta;
      if (stream.send_window > kWindowBytesMax) {
        return Fail(ErrorCode::kFlowControlError, "a stream window above 2^31-1");
      }
    }
    peer_stream_window_bytes_ = *new_stream_window;
  }
  settings_received_ = true;
  WriteFrame(kSettings, kAck, 0, {});
  if (new_stream_window) FlushPending(/*every_stream=*/true);
  return true;
}

bool Session::HandleWindowUpdate(StreamId id, std::string_view payload,
                                 std::vector<StreamEvent>* events) {
  if (payload.size() != 4) return Fail(ErrorCode::kFrameSizeError, "WINDOW_UPDATE is 4 bytes");
  const uint32_t increment = ReadU32(payload, 0) & 0x7fffffffu;
  if (id == 0) {
    if (increment == 0) return Fail(ErrorCode::kProtocolError, "WINDOW_UPDATE of 0");
    connection_send_window_ += increment;
    if (connection_send_window_ > kWindowBytesMax) {
      return Fail(ErrorCode::kFlowControlError, "connection window above 2^31-1");
    }
    FlushPending();
    return true;
  }
  if (IsIdle(id)) return Fail(ErrorCode::kProtocolError, "WINDOW_UPDATE on an idle stream");
  auto it = streams_.find(id);
  if (it == streams_.end()) return true;  // A closed stream.
  if (increment == 0 || it->second.send_window + increment > kWindowBytesMax) {
    ResetAndForget(id, increment == 0 ? ErrorCode::kProtocolError : ErrorCode::kFlowControlError,
                   events);
    return true;
  }
  it->second.send_window += increment;
  if (it->second.pending_offset < it->second.pending.size() && FlushStream(id, it->second) &&
      it->second.local_closed) {
    FinishIfDone(id);
  }
  return true;
}

bool Session::HandleResetStream(StreamId id, std::string_view payload,
                                std::vector<StreamEvent>* events) {
  if (id == 0) return Fail(ErrorCode::kProtocolError, "RST_STREAM on stream 0");
  if (payload.size() != 4) return Fail(ErrorCode::kFrameSizeError, "RST_STREAM is 4 bytes");
  if (IsIdle(id)) return Fail(ErrorCode::kProtocolError, "RST_STREAM on an idle stream");
  auto it = streams_.find(id);
  if (it == streams_.end()) return true;
  blocked_data_bytes_ -= it->second.pending.size() - it->second.pending_offset;
  waiting_for_connection_.erase(id);
  streams_.erase(it);
  StreamEvent event;
  event.kind = StreamEvent::Kind::kReset;
  event.stream = id;
  events->push_back(std::move(event));
  return true;
}

bool Session::HandleGoAway(std::string_view payload, std::vector<StreamEvent>* events) {
  if (payload.size() < 8) return Fail(ErrorCode::kFrameSizeError, "GOAWAY is at least 8 bytes");
  goaway_received_ = true;
  if (options_.role == Role::kServer) return true;  // The client's streams in flight still run.
  // §6.8: streams above the server's last one were never processed; they end here.
  const StreamId last = ReadU32(payload, 0) & 0x7fffffffu;
  for (auto it = streams_.upper_bound(last); it != streams_.end();) {
    blocked_data_bytes_ -= it->second.pending.size() - it->second.pending_offset;
    waiting_for_connection_.erase(it->first);
    StreamEvent event;
    event.kind = StreamEvent::Kind::kReset;
    event.stream = it->first;
    events->push_back(std::move(event));
    it = streams_.erase(it);
  }
  return true;
}

bool Session::IsIdle(StreamId id) const {
  if (options_.role == Role::kServer) return id > last_stream_;
  return id % 2 == 0 || id >= next_stream_;
}

bool Session::CanOpenStream() const {
  return options_.role == Role::kClient && !closed_ && !goaway_received_ &&
         streams_.size() < peer_streams_max_ && next_stream_ <= 0x7fffffffu;
}

StreamId Session::OpenStream() {
  if (!CanOpenStream()) return 0;
  const StreamId id = next_stream_;
  next_stream_ += 2;
  Stream& stream = streams_[id];
  stream.send_window = peer_stream_window_bytes_;
  stream.receive_window = options_.stream_window_bytes;
  return id;
}

void Session::ResetStream(StreamId id, ErrorCode code) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  blocked_data_bytes_ -= it->second.pending.size() - it->second.pending_offset;
  waiting_for_connection_.erase(id);
  streams_.erase(it);
  WriteReset(id, code);
}

void Session::WriteReset(StreamId id, ErrorCode code) {
  std::string payload;
  AppendU32(&payload, static_cast<uint32_t>(code));
  WriteFrame(kRstStream, 0, id, payload);
  constexpr size_t kRememberedResetsMax = 4096;
  if (reset_by_us_.insert(id).second) reset_order_.push_back(id);
  if (reset_order_.size() > kRememberedResetsMax) {
    reset_by_us_.erase(reset_order_.front());
    reset_order_.pop_front();
  }
}

void Session::ResetAndForget(StreamId id, ErrorCode code, std::vector<StreamEvent>* events) {
  ResetStream(id, code);
  StreamEvent event;
  event.kind = StreamEvent::Kind::kReset;
  event.stream = id;
  events->push_back(std::move(event));
}

void Session::WriteHeaderBlock(StreamId stream, std::string_view block, bool end_stream) {
  std::string prefixed;
  encoder_.TakeDueUpdate(&prefixed);
  if (!prefixed.empty()) {
    prefixed.append(block);
    block = prefixed;
  }
  const size_t chunk = peer_frame_bytes_max_;
  size_t at = std::min(block.size(), chunk);
  WriteFrame(
      kHeaders,
      static_cast<uint8_t>((end_stream ? kEndStream : 0) | (at == block.size() ? kEndHeaders : 0)),
      stream, block.substr(0, at));
  while (at < block.size()) {
    const size_t n = std::min(block.size() - at, chunk);
    WriteFrame(kContinuation, at + n == block.size() ? kEndHeaders : 0, stream,
               block.substr(at, n));
    at += n;
  }
}

bool Session::SendHeaders(StreamId id, std::string_view header_block, bool end_stream) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.local_closed || it->second.headers_sent) return false;
  it->second.headers_sent = true;
  WriteHeaderBlock(id, header_block, end_stream);
  if (end_stream) {
    it->second.local_closed = true;
    FinishIfDone(id);
  }
  return true;
}

bool Session::SendData(StreamId id, std::string_view data, bool end_stream) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.local_closed) return false;
  Stream& stream = it->second;
  CAIRN_CHECK(stream.headers_sent, "a response's DATA follows its HEADERS");
  if (stream.pending_offset < stream.pending.size()) {  // Behind data already waiting.
    stream.pending.append(data);
    blocked_data_bytes_ += data.size();
    stream.end_after_pending = end_stream;
    if (end_stream) stream.local_closed = true;
    return true;
  }
  const size_t sent = WriteData(id, stream, data, end_stream);
  if (sent < data.size()) {
    stream.pending.assign(data.substr(sent));
    stream.pending_offset = 0;
    blocked_data_bytes_ += stream.pending.size();
    stream.end_after_pending = end_stream;
  }
  if (end_stream) {
    stream.local_closed = true;
    FinishIfDone(id);
  }
  return true;
}

bool Session::SendTrailers(StreamId id, std::string_view header_block) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.local_closed) return false;
  Stream& stream = it->second;
  if (!stream.headers_sent) return SendHeaders(id, header_block, /*end_stream=*/true);
  stream.local_closed = true;
  if (stream.pending_offset < stream.pending.size()) {
    stream.has_trailers = true;
    stream.trailers.assign(header_block);
    return true;
  }
  WriteHeaderBlock(id, header_block, /*end_stream=*/true);
  FinishIfDone(id);
  return true;
}

size_t Session::WriteData(StreamId id, Stream& stream, std::string_view data, bool end_stream) {
  size_t sent = 0;
  while (sent < data.size()) {
    const int64_t allowed = std::min(
        {connection_send_window_, stream.send_window, static_cast<int64_t>(peer_frame_bytes_max_)});
    if (allowed <= 0) {
      // Only the connection's window is shut: a connection-level WINDOW_UPDATE resumes it.
      if (stream.send_window > 0) waiting_for_connection_.insert(id);
      return sent;
    }
    const size_t n = std::min(data.size() - sent, static_cast<size_t>(allowed));
    const bool last = end_stream && sent + n == data.size();
    WriteFrame(kData, last ? kEndStream : 0, id, data.substr(sent, n));
    connection_send_window_ -= static_cast<int64_t>(n);
    stream.send_window -= static_cast<int64_t>(n);
    sent += n;
  }
  if (data.empty() && end_stream) WriteFrame(kData, kEndStream, id, {});
  return sent;
}

bool Session::FlushStream(StreamId id, Stream& stream) {
  waiting_for_connection_.erase(id);
  const std::string_view rest = std::string_view(stream.pending).substr(stream.pending_offset);
  const size_t sent = WriteData(id, stream, rest, stream.end_after_pending && !stream.has_trailers);
  stream.pending_offset += sent;
  blocked_data_bytes_ -= sent;
  if (sent < rest.size()) return false;
  stream.pending.clear();
  stream.pending_offset = 0;
  if (stream.has_trailers) {
    WriteHeaderBlock(id, stream.trailers, /*end_stream=*/true);
    stream.has_trailers = false;
    stream.trailers.clear();
  }
  return true;
}

void Session::FlushPending(bool every_stream) {
  if (blocked_data_bytes_ == 0) return;
  if (!every_stream && connection_send_window_ <= 0) return;
  std::vector<StreamId> candidates;
  if (every_stream) {
    for (const auto& [id, stream] : streams_) {
      if (stream.pending_offset < stream.pending.size()) candidates.push_back(id);
    }
  } else {
    candidates.assign(waiting_for_connection_.begin(), waiting_for_connection_.end());
  }
  for (const StreamId id : candidates) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    if (connection_send_window_ <= 0) {
      // Out of connection window: the rest wait for it (those in the set already are).
      if (it->second.send_window > 0) waiting_for_connection_.insert(id);
      continue;
    }
    if (FlushStream(id, it->second) && it->second.local_closed) FinishIfDone(id);
  }
}

void Session::FinishIfDone(StreamId id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const Stream& stream = it->second;
  if (!stream.local_closed || stream.pending_offset < stream.pending.size() ||
      stream.has_trailers) {
    return;
  }
  const bool remote_closed = stream.remote_closed;
  if (!remote_closed && options_.role == Role::kClient) return;  // The response is still due.
  waiting_for_connection_.erase(id);
  streams_.erase(it);
  if (!remote_closed) {
    // §8.1: the response is complete while the request is not; tell the client to stop sending.
    WriteReset(id, ErrorCode::kNoError);
  }
}

}  // namespace cairn::http2
