#include "base/check.h"

#include <cstdio>
#include <cstdlib>

namespace cairn::internal {

void CheckFailed(const char* expression, const char* file, int line,
                 const std::string& invariant) {
  std::fprintf(stderr, "cairn: invariant broken at %s:%d: %s\n  check: %s\n", file, line,
               invariant.c_str(), expression);
  std::fflush(stderr);
  std::abort();
}

}  // namespace cairn::internal
