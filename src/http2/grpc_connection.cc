#include "http2/grpc_connection.h"

#include <fmt/format.h>

namespace cairn::http2 {
namespace {

constexpr uint8_t kStaticStatus200 = 8;  // ":status: 200" in HPACK's static table.

const std::string& ResponseHeaders() {
  static const std::string block = [] {
    std::string b;
    EncodeIndexedField(kStaticStatus200, &b);
    EncodeLiteralField("content-type", "application/grpc", &b);
    return b;
  }();
  return block;
}

const std::string& OkTrailers() {
  static const std::string block = [] {
    std::string b;
    EncodeLiteralField("grpc-status", "0", &b);
    return b;
  }();
  return block;
}

std::string HttpStatusOnly(std::string_view status) {
  std::string b;
  EncodeLiteralField(":status", status, &b);
  return b;
}

uint32_t DeclaredLength(std::string_view body) {
  return (uint32_t{static_cast<uint8_t>(body[1])} << 24) |
         (uint32_t{static_cast<uint8_t>(body[2])} << 16) |
         (uint32_t{static_cast<uint8_t>(body[3])} << 8) | uint32_t{static_cast<uint8_t>(body[4])};
}

}  // namespace

void WriteMessagePrefix(char* out, size_t message_bytes) {
  CAIRN_CHECK(message_bytes <= 0xffffffffu, "a gRPC message's length fits 32 bits");
  out[0] = 0;  // Not compressed.
  out[1] = static_cast<char>(message_bytes >> 24);
  out[2] = static_cast<char>(message_bytes >> 16);
  out[3] = static_cast<char>(message_bytes >> 8);
  out[4] = static_cast<char>(message_bytes);
}

std::string PercentEncode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    if (byte < 0x20 || byte > 0x7e || byte == '%') {
      out += fmt::format("%{:02X}", byte);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

GrpcConnection::GrpcConnection(GrpcConnectionOptions options)
    : options_(options), session_(options.http2) {}

bool GrpcConnection::Receive(std::string_view bytes, std::vector<GrpcRequest>* requests) {
  events_.clear();
  const bool alive = session_.Receive(bytes, &events_);
  for (StreamEvent& event : events_) {
    switch (event.kind) {
      case StreamEvent::Kind::kHeaders:
        OnHeaders(event, requests);
        break;
      case StreamEvent::Kind::kData:
        OnData(event, requests);
        break;
      case StreamEvent::Kind::kReset: {
        Forget(event.stream);
        // A request completed and reset in the same read is not worth serving (a client that
        // opens and cancels streams in a loop must not turn each into work for the member).
        const StreamId stream = event.stream;
        std::erase_if(*requests, [stream](const GrpcRequest& r) { return r.stream == stream; });
        break;
      }
    }
  }
  events_.clear();
  if (alive && buffered_bytes_ > options_.buffered_bytes_max) {
    session_.GoAway(ErrorCode::kEnhanceYourCalm, "too many request bytes buffered");
    return false;
  }
  return alive && !session_.closed();
}

void GrpcConnection::OnHeaders(StreamEvent& event, std::vector<GrpcRequest>* requests) {
  const StreamId stream = event.stream;
  if (pending_.count(stream) != 0) {  // The request's trailers: it is complete.
    if (event.end_stream) Complete(stream, requests);
    return;
  }
  std::string_view method, content_type, encoding;
  std::string path;
  for (const HeaderField& field : event.headers) {
    if (field.name == ":method") {
      method = field.value;
    } else if (field.name == ":path") {
      path = field.value;
    } else if (field.name == "content-type") {
      content_type = field.value;
    } else if (field.name == "grpc-encoding") {
      encoding = field.value;
    }
  }
  if (method != "POST") {
    session_.SendHeaders(stream, HttpStatusOnly("405"), /*end_stream=*/true);
    return;
  }
  if (content_type.substr(0, 16) != "application/grpc" ||
      (content_type.size() > 16 && content_type[16] != '+' && content_type[16] != ';')) {
    session_.SendHeaders(stream, HttpStatusOnly("415"), /*end_stream=*/true);
    return;
  }
  if (!encoding.empty() && encoding != "identity") {
    return Reject(
        stream, GrpcCode::kUnimplemented,
        fmt::format("grpc: Decompressor is not installed for grpc-encoding \"{}\"", encoding));
  }
  if (path.empty()) return Reject(stream, GrpcCode::kUnimplemented, "malformed method name: \"\"");
  PendingCall& call = pending_[stream];
  buffered_bytes_ += path.size();
  call.path = std::move(path);
  if (event.end_stream) Complete(stream, requests);
}

void GrpcConnection::OnData(StreamEvent& event, std::vector<GrpcRequest>* requests) {
  auto it = pending_.find(event.stream);
  if (it == pending_.end()) return;  // Already answered (rejected); the rest is dropped.
  std::string& body = it->second.body;
  const size_t added = event.data.size();
  if (body.empty() && event.end_stream && event.data.size() >= kGrpcMessagePrefixBytes) {
    body.swap(event.data);  // The usual case: the whole message in one frame, no copy.
  } else {
    body.append(event.data);
  }
  buffered_bytes_ += added;
  if (body.size() >= kGrpcMessagePrefixBytes) {
    const uint32_t declared = DeclaredLength(body);
    if (declared > options_.message_bytes_max) {
      return Reject(event.stream, GrpcCode::kResourceExhausted,
                    fmt::format("grpc: received message larger than max ({} vs. {})", declared,
                                options_.message_bytes_max));
    }
    if (body.size() > kGrpcMessagePrefixBytes + declared) {  // More than one message.
      return Reject(event.stream, GrpcCode::kInternal,
                    "grpc: a unary request must carry exactly one complete message");
    }
  }
  if (event.end_stream) Complete(event.stream, requests);
}

void GrpcConnection::Complete(StreamId stream, std::vector<GrpcRequest>* requests) {
  auto it = pending_.find(stream);
  if (it == pending_.end()) return;
  buffered_bytes_ -= std::min(buffered_bytes_, it->second.body.size() + it->second.path.size());
  PendingCall call = std::move(it->second);
  pending_.erase(it);
  const std::string_view body = call.body;
  if (body.size() < kGrpcMessagePrefixBytes) {
    return Reject(stream, GrpcCode::kInternal,
                  "grpc: the request ended before its message was complete");
  }
  if (body[0] != 0) {
    return Reject(stream, GrpcCode::kInternal,
                  "grpc: compressed flag set with identity or empty encoding");
  }
  if (DeclaredLength(body) != body.size() - kGrpcMessagePrefixBytes) {
    return Reject(stream, GrpcCode::kInternal,
                  "grpc: a unary request must carry exactly one complete message");
  }
  GrpcRequest request;
  request.stream = stream;
  request.path = std::move(call.path);
  request.body = std::move(call.body);
  requests->push_back(std::move(request));
}

void GrpcConnection::Forget(StreamId stream) {
  auto it = pending_.find(stream);
  if (it == pending_.end()) return;
  buffered_bytes_ -= std::min(buffered_bytes_, it->second.body.size() + it->second.path.size());
  pending_.erase(it);
}

void GrpcConnection::Reject(StreamId stream, GrpcCode code, std::string_view message) {
  Forget(stream);
  ReplyError(stream, code, message);
}

bool GrpcConnection::Reply(StreamId stream, std::string_view framed_message) {
  if (!session_.SendHeaders(stream, ResponseHeaders(), /*end_stream=*/false)) return false;
  session_.SendData(stream, framed_message, /*end_stream=*/false);
  session_.SendTrailers(stream, OkTrailers());
  return true;
}

bool GrpcConnection::ReplyError(StreamId stream, GrpcCode code, std::string_view message) {
  CAIRN_CHECK(code != GrpcCode::kOk, "an error reply carries an error code");
  std::string block = ResponseHeaders();
  EncodeLiteralField("grpc-status", std::to_string(static_cast<int>(code)), &block);
  if (!message.empty()) EncodeLiteralField("grpc-message", PercentEncode(message), &block);
  return session_.SendHeaders(stream, block, /*end_stream=*/true);
}

}  // namespace cairn::http2
