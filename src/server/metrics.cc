#include "server/metrics.h"

#include <fmt/format.h>

namespace cairn::server {
namespace {

constexpr double kFirstBucketSeconds = 0.001;

void Series(std::string* out, const char* name, const char* type, const char* help,
            auto value) {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help,
                 name, type, name, value);
}

}  // namespace

void Histogram::Observe(double seconds) {
  size_t bucket = 0;
  double bound = kFirstBucketSeconds;
  while (bucket < kBuckets && seconds > bound) {
    ++bucket;
    bound *= 2;
  }
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& help, std::string* out) const {
  auto it = std::back_inserter(*out);
  fmt::format_to(it, "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  double bound = kFirstBucketSeconds;
  for (size_t i = 0; i < kBuckets; ++i, bound *= 2) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    fmt::format_to(it, "{}_bucket{{le=\"{}\"}} {}\n", name, bound, cumulative);
  }
  cumulative += counts_[kBuckets].load(std::memory_order_relaxed);
  fmt::format_to(it, "{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  fmt::format_to(it, "{}_sum {}\n{}_count {}\n", name,
                 static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6, name,
                 cumulative);
}

std::string Metrics::RenderPrometheus() const {
  std::string out;
  Series(&out, "etcd_server_has_leader", "gauge", "Whether a leader exists: 1 yes, 0 no.",
         has_leader.load());
  Series(&out, "etcd_server_is_leader", "gauge", "Whether this member is the leader.",
         is_leader.load());
  Series(&out, "etcd_server_leader_changes_seen_total", "counter",
         "Leader changes this member has seen.", leader_changes.load());
  Series(&out, "etcd_server_proposals_committed_total", "counter",
         "Committed entries this member applied.", proposals_committed.load());
  Series(&out, "etcd_server_proposals_failed_total", "counter",
         "Client writes answered with an error.", proposals_failed.load());
  Series(&out, "etcd_server_proposals_pending", "gauge", "Client writes waiting to commit.",
         proposals_pending.load());
  Series(&out, "etcd_server_proposals_applied_total", "counter", "The applied log index.",
         applied_index.load());
  Series(&out, "etcd_debugging_mvcc_current_revision", "gauge", "The key-value store revision.",
         revision.load());
  Series(&out, "cairn_mvcc_value_log_live_bytes", "gauge",
         "Bytes of values the key-value store holds, over all versions (the value log).",
         value_log_live_bytes.load());
  Series(&out, "cairn_mvcc_value_log_garbage_bytes", "gauge",
         "Bytes of released values still in value-log segments, until relocation reclaims them.",
         value_log_garbage_bytes.load());
  Series(&out, "cairn_mvcc_value_log_segments", "gauge",
         "Value-log segments (files under <data-dir>/values, or in memory).",
         value_log_segments.load());
  Series(&out, "cairn_server_generation", "gauge", "The member's generation (raft term).",
         generation.load());
  Series(&out, "cairn_peer_frames_sent_total", "counter", "Frames sent to peers.",
         peer_frames_sent.load());
  Series(&out, "cairn_peer_frames_dropped_total", "counter",
         "Frames dropped: send queue full or peer unreachable.", peer_frames_dropped.load());
  Series(&out, "cairn_peer_frames_received_total", "counter", "Frames received from peers.",
         peer_frames_received.load());
  Series(&out, "cairn_peer_connections_refused_total", "counter",
         "Peer connections closed for a bad hello or a malformed frame.",
         peer_connections_refused.load());
  Series(&out, "cairn_snapshots_saved_total", "counter", "Snapshots taken (Low-Water Mark).",
         snapshots_saved.load());
  Series(&out, "cairn_client_requests_refused_total", "counter",
         "Client requests refused because the member's queue was full.",
         client_requests_refused.load());
  wal_fsync_seconds.Render("etcd_disk_wal_fsync_duration_seconds",
                           "Latency of one log write and fdatasync.", &out);
  apply_seconds.Render("cairn_server_apply_duration_seconds",
                       "Latency of applying one batch of committed entries.", &out);
  return out;
}

std::string Metrics::RenderHealth() const {
  return has_leader.load() != 0 ? R"({"health":"true"})" : R"({"health":"false"})";
}

}  // namespace cairn::server
