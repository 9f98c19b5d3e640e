// CAIRN_CHECK: invariants that hold in every build, release included.
//
// Design note. A broken invariant means the program's own state is wrong; continuing would spread
// the damage (TigerBeetle; etcd's raft stops a node on storage errors). So the check is never
// compiled out, and its message names the invariant, not just the expression:
//
//   CAIRN_CHECK(commit_index <= last_index, "the commit index never passes the last log index "
//               "(commit {} last {})", commit_index, last_index);
//
// The message is formatted with fmt only when the check fails.
#pragma once

#include <fmt/format.h>

#include <string>

namespace cairn {

// Called instead of abort() when a check fails, if set. It must not return: the deterministic
// simulator installs one that throws, so that a broken invariant fails one seed (and prints its
// replay command) instead of killing the run. Production code never sets it.
using CheckFailureHandler = void (*)(const std::string& message);
void SetCheckFailureHandler(CheckFailureHandler handler);

}  // namespace cairn

namespace cairn::internal {

[[noreturn]] void CheckFailed(const char* expression, const char* file, int line,
                              const std::string& invariant);

}  // namespace cairn::internal

#define CAIRN_CHECK(condition, ...)                                                  \
  do {                                                                               \
    if (!(condition)) [[unlikely]] {                                                 \
      ::cairn::internal::CheckFailed(#condition, __FILE__, __LINE__,                 \
                                     ::fmt::format(__VA_ARGS__));                    \
    }                                                                                \
  } while (false)
