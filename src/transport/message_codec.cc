#include "transport/message_codec.h"

#include <fmt/format.h>

#include "base/coding.h"
#include "base/crc32c.h"

namespace cairn::transport {
namespace {

using consensus::Message;
using consensus::MessageType;

constexpr uint8_t kMessageTypeMax = static_cast<uint8_t>(MessageType::kSnapshotResponse);

void PutString(std::string* out, std::string_view text) {
  PutFixed32(out, static_cast<uint32_t>(text.size()));
  out->append(text);
}

// Reads from a body, never past its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool U8(uint8_t* value) {
    if (bytes_.empty()) return false;
    *value = static_cast<uint8_t>(bytes_[0]);
    bytes_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* value) {
    if (bytes_.size() < 4) return false;
    *value = DecodeFixed32(bytes_.data());
    bytes_.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* value) {
    if (bytes_.size() < 8) return false;
    *value = DecodeFixed64(bytes_.data());
    bytes_.remove_prefix(8);
    return true;
  }
  bool Bool(bool* value) {
    uint8_t byte = 0;
    if (!U8(&byte) || byte > 1) return false;
    *value = byte == 1;
    return true;
  }
  bool String(std::string* text) {
    uint32_t size = 0;
    if (!U32(&size) || bytes_.size() < size) return false;
    text->assign(bytes_.data(), size);
    bytes_.remove_prefix(size);
    return true;
  }
  size_t remaining() const { return bytes_.size(); }

 private:
  std::string_view bytes_;
};

}  // namespace

namespace {

enum class ShellKind : uint8_t { kHello = 64, kForwardedWrite = 65, kForwardRejected = 66 };
constexpr uint8_t kStatusCodeMax = static_cast<uint8_t>(StatusCode::kTimedOut);

void EncodeMessage(const Message& message, std::string* body) {
  body->push_back(static_cast<char>(message.type));
  for (uint64_t value :
       {message.from.value(), message.to.value(), message.generation.value(),
        message.log_index.value(), message.log_generation.value(), message.commit_index.value(),
        message.match_index.value(), message.hint_index.value(), message.hint_generation.value(),
        message.read_round, message.read_id, message.snapshot_offset}) {
    PutFixed64(body, value);
  }
  for (bool flag : {message.granted, message.rejected, message.transfer, message.snapshot_done}) {
    body->push_back(flag ? 1 : 0);
  }
  PutString(body, message.snapshot_chunk);
  PutString(body, message.snapshot_membership);
  PutFixed32(body, static_cast<uint32_t>(message.entries.size()));
  for (const wal::Entry& entry : message.entries) {
    PutFixed64(body, entry.index.value());
    PutFixed64(body, entry.generation.value());
    body->push_back(static_cast<char>(entry.type));
    PutString(body, entry.payload);
  }
}

Status Corrupt(std::string_view what) {
  return Status::Corruption(fmt::format("malformed peer frame: {}", what));
}

Result<PeerFrame> DecodeMessage(MessageType type, Reader& reader) {
  Message message;
  message.type = type;
  uint64_t values[12];
  for (uint64_t& value : values) {
    if (!reader.U64(&value)) return Corrupt("truncated header fields");
  }
  message.from = NodeId(values[0]);
  message.to = NodeId(values[1]);
  message.generation = Generation(values[2]);
  message.log_index = LogIndex(values[3]);
  message.log_generation = Generation(values[4]);
  message.commit_index = LogIndex(values[5]);
  message.match_index = LogIndex(values[6]);
  message.hint_index = LogIndex(values[7]);
  message.hint_generation = Generation(values[8]);
  message.read_round = values[9];
  message.read_id = values[10];
  message.snapshot_offset = values[11];
  if (!reader.Bool(&message.granted) || !reader.Bool(&message.rejected) ||
      !reader.Bool(&message.transfer) || !reader.Bool(&message.snapshot_done)) {
    return Corrupt("bad flag byte");
  }
  if (!reader.String(&message.snapshot_chunk) || !reader.String(&message.snapshot_membership)) {
    return Corrupt("truncated snapshot fields");
  }
  uint32_t count = 0;
  if (!reader.U32(&count)) return Corrupt("truncated entry count");
  // Each entry takes at least 21 bytes: an absurd count is refused before anything is reserved.
  if (count > reader.remaining() / 21) return Corrupt("entry count exceeds the frame");
  message.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    wal::Entry entry;
    uint64_t index = 0;
    uint64_t generation = 0;
    if (!reader.U64(&index) || !reader.U64(&generation) || !reader.U8(&entry.type) ||
        !reader.String(&entry.payload)) {
      return Corrupt("truncated entry");
    }
    entry.index = LogIndex(index);
    entry.generation = Generation(generation);
    message.entries.push_back(std::move(entry));
  }
  return PeerFrame(std::move(message));
}

Result<PeerFrame> DecodeShellFrame(ShellKind kind, Reader& reader) {
  uint64_t from = 0;
  uint64_t number = 0;
  if (!reader.U64(&from) || !reader.U64(&number)) return Corrupt("truncated shell frame");
  switch (kind) {
    case ShellKind::kHello:
      return PeerFrame(Hello{NodeId(from), number});
    case ShellKind::kForwardedWrite: {
      ForwardedWrite write{NodeId(from), number, {}};
      if (!reader.String(&write.command)) return Corrupt("truncated forwarded write");
      return PeerFrame(std::move(write));
    }
    case ShellKind::kForwardRejected: {
      ForwardRejected rejected{NodeId(from), number, StatusCode::kNotLeader, {}};
      uint8_t code = 0;
      if (!reader.U8(&code) || code == 0 || code > kStatusCodeMax ||
          !reader.String(&rejected.message)) {
        return Corrupt("bad forward rejection");
      }
      rejected.code = static_cast<StatusCode>(code);
      return PeerFrame(std::move(rejected));
    }
  }
  return Corrupt("unknown frame kind");
}

}  // namespace

std::string EncodeFrame(const PeerFrame& frame) {
  std::string body;
  body.push_back(static_cast<char>(kCodecVersion));
  if (const auto* message = std::get_if<Message>(&frame)) {
    EncodeMessage(*message, &body);
  } else if (const auto* hello = std::get_if<Hello>(&frame)) {
    body.push_back(static_cast<char>(ShellKind::kHello));
    PutFixed64(&body, hello->from.value());
    PutFixed64(&body, hello->cluster_id);
  } else if (const auto* write = std::get_if<ForwardedWrite>(&frame)) {
    body.push_back(static_cast<char>(ShellKind::kForwardedWrite));
    PutFixed64(&body, write->from.value());
    PutFixed64(&body, write->request_id);
    PutString(&body, write->command);
  } else {
    const auto& rejected = std::get<ForwardRejected>(frame);
    body.push_back(static_cast<char>(ShellKind::kForwardRejected));
    PutFixed64(&body, rejected.from.value());
    PutFixed64(&body, rejected.request_id);
    body.push_back(static_cast<char>(rejected.code));
    PutString(&body, rejected.message);
  }
  std::string out;
  out.reserve(kFrameHeaderBytes + body.size());
  PutFixed32(&out, static_cast<uint32_t>(body.size()));
  PutFixed32(&out, crc32c::Value(body));
  out += body;
  return out;
}

Result<PeerFrame> DecodeBody(std::string_view body) {
  Reader reader(body);
  uint8_t version = 0;
  uint8_t kind = 0;
  if (!reader.U8(&version)) return Corrupt("empty body");
  if (version != kCodecVersion) {
    return Corrupt(fmt::format("codec version {} (this build speaks {})", version, kCodecVersion));
  }
  if (!reader.U8(&kind)) return Corrupt("missing frame kind");
  Result<PeerFrame> frame = Corrupt("unknown frame kind");
  if (kind <= kMessageTypeMax) {
    frame = DecodeMessage(static_cast<MessageType>(kind), reader);
  } else if (kind >= static_cast<uint8_t>(ShellKind::kHello) &&
             kind <= static_cast<uint8_t>(ShellKind::kForwardRejected)) {
    frame = DecodeShellFrame(static_cast<ShellKind>(kind), reader);
  }
  if (frame.ok() && reader.remaining() != 0) return Corrupt("trailing bytes");
  return frame;
}

Status FrameDecoder::Feed(std::string_view bytes) {
  if (failure_) return *failure_;
  // Drop what was consumed before growing, so the buffer stays near one frame.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
  return Status::Ok();
}

Result<std::optional<PeerFrame>> FrameDecoder::Next() {
  if (failure_) return *failure_;
  const std::string_view pending(buffer_.data() + consumed_, buffer_.size() - consumed_);
  if (pending.size() < kFrameHeaderBytes) return std::optional<PeerFrame>();
  const uint32_t length = DecodeFixed32(pending.data());
  const uint32_t checksum = DecodeFixed32(pending.data() + 4);
  if (length == 0 || length > frame_bytes_max_) {
    failure_ = Status::Corruption(fmt::format(
        "malformed peer frame: length {} outside 1..{}", length, frame_bytes_max_));
    return *failure_;
  }
  if (pending.size() - kFrameHeaderBytes < length) return std::optional<PeerFrame>();
  const std::string_view body = pending.substr(kFrameHeaderBytes, length);
  if (crc32c::Value(body) != checksum) {
    failure_ = Status::Corruption("malformed peer frame: checksum mismatch");
    return *failure_;
  }
  Result<PeerFrame> frame = DecodeBody(body);
  if (!frame.ok()) {
    failure_ = frame.status();
    return *failure_;
  }
  consumed_ += kFrameHeaderBytes + length;
  return std::optional<PeerFrame>(std::move(frame).value());
}

}  // namespace cairn::transport
