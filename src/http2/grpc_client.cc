#include "http2/grpc_client.h"

#include <charconv>

namespace cairn::http2 {

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    int value = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ptr ==
            text.data() + i + 3) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

GrpcClient::GrpcClient(GrpcClientOptions options)
    : options_(std::move(options)), session_(options_.http2) {
  CAIRN_CHECK(options_.http2.role == Role::kClient, "a GrpcClient's session is a client's");
}

uint64_t GrpcClient::Call(std::string_view path, std::string framed_request) {
  if (queued_.size() >= options_.queued_calls_max) return 0;
  Pending call{next_call_id_++, std::string(path), std::move(framed_request)};
  const uint64_t id = call.call_id;
  if (queued_.empty() && session_.CanOpenStream()) {
    Start(std::move(call));
  } else {
    queued_.push_back(std::move(call));
  }
  return id;
}

void GrpcClient::Start(Pending call) {
  const StreamId stream = session_.OpenStream();
  CAIRN_CHECK(stream != 0, "a call starts only when a stream can open");
  HpackEncoder& encoder = session_.encoder();
  std::string block;
  encoder.Encode(":method", "POST", true, &block);
  encoder.Encode(":scheme", "http", true, &block);
  encoder.Encode(":path", call.path, true, &block);
  encoder.Encode(":authority", options_.authority, true, &block);
  encoder.Encode("content-type", "application/grpc", true, &block);
  encoder.Encode("te", "trailers", true, &block);
  session_.SendHeaders(stream, block, /*end_stream=*/false);
  session_.SendData(stream, call.framed_request, /*end_stream=*/true);
  streams_[stream].call_id = call.call_id;
}

void GrpcClient::StartQueued() {
  while (!queued_.empty() && session_.CanOpenStream()) {
    Start(std::move(queued_.front()));
    queued_.pop_front();
  }
}

bool GrpcClient::Receive(std::string_view bytes, std::vector<GrpcResponse>* done) {
  events_.clear();
  const bool alive = session_.Receive(bytes, &events_);
  for (StreamEvent& event : events_) {
    auto it = streams_.find(event.stream);
    if (it == streams_.end()) continue;
    Open& call = it->second;
    switch (event.kind) {
      case StreamEvent::Kind::kHeaders:
        for (const HeaderField& field : event.headers) {
          if (field.name == ":status") {
            call.http_status = field.value;
          } else if (field.name == "grpc-status") {
            call.grpc_status = field.value;
          } else if (field.name == "grpc-message") {
            call.grpc_message = PercentDecode(field.value);
          }
        }
        break;
      case StreamEvent::Kind::kData:
        if (call.body.empty()) {
          call.body.swap(event.data);
        } else {
          call.body.append(event.data);
        }
        break;
      case StreamEvent::Kind::kReset:
        call.grpc_status = std::to_string(static_cast<int>(GrpcCode::kUnavailable));
        call.grpc_message = "stream reset by the server";
        call.body.clear();
        event.end_stream = true;
        break;
    }
    if (event.end_stream) Finish(event.stream, done);
  }
  events_.clear();
  if (!alive || session_.closed()) {
    FailEverything(done);
    return false;
  }
  StartQueued();
  return true;
}

void GrpcClient::Finish(StreamId stream, std::vector<GrpcResponse>* done) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  Open call = std::move(it->second);
  streams_.erase(it);
  GrpcResponse response;
  response.call_id = call.call_id;
  int code = -1;
  std::from_chars(call.grpc_status.data(), call.grpc_status.data() + call.grpc_status.size(), code);
  if (call.http_status != "200" && !call.http_status.empty()) {
    response.code = GrpcCode::kUnknown;
    response.message = "HTTP status " + call.http_status;
  } else if (code < 0 || code > static_cast<int>(GrpcCode::kUnauthenticated)) {
    response.code = GrpcCode::kInternal;
    response.message = "response without a grpc-status";
  } else {
    response.code = static_cast<GrpcCode>(code);
    response.message = std::move(call.grpc_message);
    if (response.code == GrpcCode::kOk) response.body = std::move(call.body);
  }
  done->push_back(std::move(response));
}

void GrpcClient::FailEverything(std::vector<GrpcResponse>* done) {
  auto fail = [done](uint64_t call_id) {
    GrpcResponse response;
    response.call_id = call_id;
    response.code = GrpcCode::kUnavailable;
    response.message = "connection closed";
    done->push_back(std::move(response));
  };
  for (const auto& [stream, call] : streams_) fail(call.call_id);
  for (const Pending& call : queued_) fail(call.call_id);
  streams_.clear();
  queued_.clear();
}

}  // namespace cairn::http2
