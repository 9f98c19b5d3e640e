// Status and Result<T>: how Cairn reports expected failures.
//
// Design note. A function that can fail for reasons outside the program's control (a full disk, a
// corrupt file, a bad request) returns a Status or a Result<T>. Both are [[nodiscard]], so a caller
// cannot drop a failure by accident (leveldb's one ignored trailer append is the warning). A broken
// invariant is not an expected failure: it goes through CAIRN_CHECK (check.h) and crashes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/check.h"

namespace cairn {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,   // The caller asked for something that can never succeed as asked.
  kNotFound,          // A file, entry or key that does not exist.
  kAlreadyExists,     // Creating something that is already there.
  kOutOfRange,        // An index or revision outside what is held (compacted, or in the future).
  kCorruption,        // Stored data fails its checksum or its structural rules.
  kIoError,           // The operating system reported an I/O failure.
  kNoSpace,           // The disk (or a quota) is full.
  kPermissionDenied,  // The operating system refused access.
  kUnsupported,       // A format version this build does not read.
  kFailed,            // The component stopped for good after an earlier fatal error (e.g. fsync).
  kBusy,              // A bounded queue is full; try again later.
  kNotLeader,         // Only the leader can do this; the message names the leader if known.
  kUnavailable,       // Not possible right now (no leader, leader changed, stopping); retry.
  kTimedOut,          // Gave up waiting; the outcome is unknown (it may still happen).
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status NoSpace(std::string m) { return {StatusCode::kNoSpace, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status Failed(std::string m) { return {StatusCode::kFailed, std::move(m)}; }
  static Status Busy(std::string m) { return {StatusCode::kBusy, std::move(m)}; }
  static Status NotLeader(std::string m) { return {StatusCode::kNotLeader, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status TimedOut(std::string m) { return {StatusCode::kTimedOut, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Corruption: segment 00000000000000000001.wal offset 4096: record checksum mismatch".
  std::string ToString() const;

  // Returns a copy whose message starts with `context: `.
  Status WithContext(std::string_view context) const;

  bool operator==(const Status&) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a failed Status. Accessing the value of a failed Result crashes.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : storage_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit
  Result(Status status) : storage_(std::in_place_index<0>, std::move(status)) {  // NOLINT
    CAIRN_CHECK(!std::get<0>(storage_).ok(), "a Result is built from a failed Status, never Ok");
  }

  bool ok() const { return storage_.index() == 1; }
  Status status() const { return ok() ? Status::Ok() : std::get<0>(storage_); }

  T& value() & {
    CheckHasValue();
    return std::get<1>(storage_);
  }
  const T& value() const& {
    CheckHasValue();
    return std::get<1>(storage_);
  }
  T&& value() && {
    CheckHasValue();
    return std::get<1>(std::move(storage_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void CheckHasValue() const {
    CAIRN_CHECK(ok(), "value() is only read from a successful Result; status was: {}",
                std::get<0>(storage_).ToString());
  }
  std::variant<Status, T> storage_;
};

}  // namespace cairn

#define CAIRN_STATUS_CONCAT_INNER(a, b) a##b
#define CAIRN_STATUS_CONCAT(a, b) CAIRN_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function with the Status of `expr` when it failed.
#define CAIRN_TRY(expr)                               \
  do {                                                \
    ::cairn::Status cairn_try_status_ = (expr);       \
    if (!cairn_try_status_.ok()) return cairn_try_status_; \
  } while (false)

// `CAIRN_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result, or returns its Status.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL(CAIRN_STATUS_CONCAT(cairn_result_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL(result, lhs, expr) \
  auto result = (expr);                                \
  if (!result.ok()) return result.status();            \
  lhs = std::move(result).value()
