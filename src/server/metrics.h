// Metrics: what a running member reports on /metrics (Prometheus text format) and /health.
//
// Design note. Counters, gauges and histograms are plain atomics updated from the member's
// threads without locks; the HTTP side reads them when scraped. Names follow etcd's where the
// meaning is the same (etcd_server_has_leader, etcd_server_leader_changes_seen_total,
// etcd_server_proposals_committed_total, etcd_server_proposals_failed_total,
// etcd_server_proposals_pending, etcd_disk_wal_fsync_duration_seconds), so dashboards and alerts
// written for etcd keep working; Cairn-only series start with cairn_. Histogram buckets are
// etcd's (exponential from 1 ms, doubling).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace cairn::server {

class Histogram {
 public:
  static constexpr size_t kBuckets = 14;  // 0.001 s .. 8.192 s, then +Inf.
  void Observe(double seconds);
  // Appends the series `name` (with _bucket, _sum, _count) in Prometheus text format.
  void Render(const std::string& name, const std::string& help, std::string* out) const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets + 1> counts_{};
  std::atomic<uint64_t> sum_micros_{0};
};

struct Metrics {
  std::atomic<int64_t> has_leader{0};
  std::atomic<uint64_t> leader_changes{0};
  std::atomic<uint64_t> proposals_committed{0};  // Entries this member applied.
  std::atomic<uint64_t> proposals_failed{0};     // Client writes answered with an error.
  std::atomic<int64_t> proposals_pending{0};     // Client writes waiting for their entry.
  std::atomic<uint64_t> applied_index{0};
  std::atomic<int64_t> revision{0};
  std::atomic<uint64_t> value_log_live_bytes{0};     // mvcc::ValueLog, values held.
  std::atomic<uint64_t> value_log_garbage_bytes{0};  // Released values not yet reclaimed.
  std::atomic<uint64_t> value_log_segments{0};
  std::atomic<uint64_t> generation{0};
  std::atomic<int64_t> is_leader{0};
  std::atomic<uint64_t> peer_frames_sent{0};
  std::atomic<uint64_t> peer_frames_dropped{0};  // Send queue full or peer unreachable.
  std::atomic<uint64_t> peer_frames_received{0};
  std::atomic<uint64_t> peer_connections_refused{0};  // Bad hello or malformed frames.
  std::atomic<uint64_t> snapshots_saved{0};
  std::atomic<uint64_t> client_requests_refused{0};  // Queue full: "too many requests".
  Histogram wal_fsync_seconds;   // One Ready's log write + fdatasync.
  Histogram apply_seconds;       // Applying one batch of committed entries.

  std::string RenderPrometheus() const;
  // etcd's /health body: {"health":"true"} when a leader is known.
  std::string RenderHealth() const;
};

}  // namespace cairn::server
