// Entry: one entry of the replicated log, as the consensus core produces it and the write-ahead
// log stores it. A plain value type, so the pure consensus core can use it without depending on
// any storage code.
#pragma once

#include <cstdint>
#include <string>

#include "base/strong_types.h"

namespace cairn::wal {

// `type` is not interpreted by the log (the consensus layer gives it meaning) but 0 is reserved,
// so that zeroed bytes never look like an entry.
struct Entry {
  LogIndex index;
  Generation generation;
  uint8_t type = 1;
  std::string payload;

  bool operator==(const Entry&) const = default;
};

}  // namespace cairn::wal
