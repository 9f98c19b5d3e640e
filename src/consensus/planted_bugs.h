// PlantedBugs: deliberate bugs that the deterministic simulator can switch on.
//
// A checker that cannot fail proves nothing. Each bug here breaks one rule the protocol depends
// on, for safety or for timeliness (commit-notice-waits-for-heartbeat loses nothing, it only
// makes writes through followers wait for a heartbeat); `cairn-sim --bug NAME` runs with it, and a test asserts that the simulator's invariant checks
// or its linearizability check fail within a bounded number of seeds. They default to off and
// nothing outside the simulator sets them.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace cairn::consensus {

enum class PlantedBug : uint8_t {
  kNone,
  kCommitOnMinority,         // The leader commits what it alone holds.
  kCommitOldGeneration,      // An entry of an earlier generation commits by counting replicas.
  kDoubleVote,               // A replica grants a vote to anyone in the same generation.
  kSkipLogMatching,          // A follower appends without checking the previous entry.
  kApplyAboveHighWaterMark,  // Entries are applied before they are committed.
  kVoteBeforePersist,        // The shell sends messages before persisting the generation/vote.
  kReadWithoutHeartbeat,     // A read-index read is served without a confirming heartbeat round.
  kCommitNoticeWaitsForHeartbeat,  // Followers learn of a commit only from the next heartbeat.
};

struct PlantedBugInfo {
  PlantedBug bug;
  std::string_view name;
  // Where the bug lives: consensus (the Replica), member (the shell that carries out a Ready),
  // mvcc or storage.
  std::string_view layer;
  std::string_view description;
};

// Every planted bug except kNone, in a stable order.
const std::vector<PlantedBugInfo>& AllPlantedBugs();
std::optional<PlantedBug> PlantedBugByName(std::string_view name);
std::string_view PlantedBugName(PlantedBug bug);

}  // namespace cairn::consensus
