#include "consensus/planted_bugs.h"

namespace cairn::consensus {

const std::vector<PlantedBugInfo>& AllPlantedBugs() {
  static const std::vector<PlantedBugInfo> kBugs = {
      {PlantedBug::kCommitOnMinority, "commit-on-minority", "consensus",
       "the leader commits entries that only it holds"},
      {PlantedBug::kCommitOldGeneration, "commit-old-generation", "consensus",
       "an entry of an earlier generation commits by counting replicas"},
      {PlantedBug::kDoubleVote, "double-vote", "consensus", "a replica grants two votes in one generation"},
      {PlantedBug::kSkipLogMatching, "skip-log-matching", "consensus",
       "a follower appends without checking the entry before the new ones"},
      {PlantedBug::kApplyAboveHighWaterMark, "apply-above-high-water-mark", "consensus",
       "entries are applied before they are committed"},
      {PlantedBug::kVoteBeforePersist, "vote-before-persist", "member",
       "messages (votes) leave before the generation and vote are durable"},
      {PlantedBug::kReadWithoutHeartbeat, "read-without-heartbeat", "consensus",
       "a read-index read is served without the heartbeat round that confirms leadership"},
      {PlantedBug::kCommitNoticeWaitsForHeartbeat, "commit-notice-waits-for-heartbeat", "consensus",
       "followers learn that their entries committed only from the next heartbeat or append"},
  };
  return kBugs;
}

std::optional<PlantedBug> PlantedBugByName(std::string_view name) {
  for (const PlantedBugInfo& info : AllPlantedBugs()) {
    if (info.name == name) return info.bug;
  }
  return std::nullopt;
}

std::string_view PlantedBugName(PlantedBug bug) {
  for (const PlantedBugInfo& info : AllPlantedBugs()) {
    if (info.bug == bug) return info.name;
  }
  return "none";
}

}  // namespace cairn::consensus
