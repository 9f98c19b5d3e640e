#include "base/check.h"

#include <cstdio>
#include <cstdlib>

namespace cairn {
namespace {
CheckFailureHandler check_failure_handler = nullptr;
}  // namespace

void SetCheckFailureHandler(CheckFailureHandler handler) { check_failure_handler = handler; }

}  // namespace cairn

namespace cairn::internal {

void CheckFailed(const char* expression, const char* file, int line,
                 const std::string& invariant) {
  if (check_failure_handler != nullptr) {
    check_failure_handler(std::string(file) + ":" + std::to_string(line) + ": " + invariant +
                          " (check: " + expression + ")");
    std::fprintf(stderr, "cairn: the check failure handler returned; aborting\n");
    std::abort();
  }
  std::fprintf(stderr, "cairn: invariant broken at %s:%d: %s\n  check: %s\n", file, line,
               invariant.c_str(), expression);
  std::fflush(stderr);
  std::abort();
}

}  // namespace cairn::internal
