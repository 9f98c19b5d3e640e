// cairn: one Cairn member, serving the etcd v3 API.
//
// Flags carry etcd's names and meanings (see --help), so scripts written for etcd start Cairn by
// changing the binary's name. With no flags a single member serves clients on 127.0.0.1:2379 and
// peers on 127.0.0.1:2380, with its data in ./default.cairn. SIGINT or SIGTERM stops it cleanly;
// SIGKILL loses nothing that was acknowledged (every acknowledged write was fsynced first).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <csignal>
#include <cstdlib>

#include "server/server.h"
#include "storage/posix_file_system.h"

namespace {

int Fail(const cairn::Status& status) {
  spdlog::critical("cairn cannot start: {}", status.ToString());
  return EXIT_FAILURE;
}

}  // namespace

int main(int argc, char** argv) {
  using cairn::server::ParseUrlList;
  CLI::App app{
      "Cairn: a consistent key-value store speaking the etcd v3 API.\n"
      "Flags have etcd's names and meanings."};
  std::string name = "default";
  std::string data_dir;
  std::string listen_client_urls = "http://127.0.0.1:2379";
  std::string advertise_client_urls = "http://127.0.0.1:2379";
  std::string listen_peer_urls = "http://127.0.0.1:2380";
  std::string initial_advertise_peer_urls = "http://127.0.0.1:2380";
  std::string initial_cluster;
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  uint32_t heartbeat_interval_ms = 100;
  uint32_t election_timeout_ms = 1000;
  uint64_t snapshot_count = 100'000;
  int64_t quota_backend_bytes = 0;
  uint64_t max_request_bytes = 3 * 512 * 1024;
  int client_threads = 1;
  std::string client_transport = "cairn";
  uint64_t max_txn_ops = 128;
  std::string listen_metrics_urls;
  uint64_t wal_segment_bytes = 64ull << 20;
  bool values_in_memory = false;
  bool wal_plain_segments = false;
  std::string log_level = "info";

  app.add_option("--name", name, "Human-readable name for this member")->capture_default_str();
  app.add_option("--data-dir", data_dir, "Path to the data directory (default: <name>.cairn)");
  app.add_option("--listen-client-urls", listen_client_urls,
                 "Comma-separated URLs to serve the etcd v3 gRPC API on")
      ->capture_default_str();
  app.add_option("--advertise-client-urls", advertise_client_urls,
                 "This member's client URLs to advertise to the rest of the cluster")
      ->capture_default_str();
  app.add_option("--listen-peer-urls", listen_peer_urls,
                 "Comma-separated URLs to listen on for peer traffic")
      ->capture_default_str();
  app.add_option("--initial-advertise-peer-urls", initial_advertise_peer_urls,
                 "This member's peer URLs to advertise to the rest of the cluster")
      ->capture_default_str();
  app.add_option("--initial-cluster", initial_cluster,
                 "Initial cluster configuration: name=peer-url,... "
                 "(default: <name>=<initial-advertise-peer-urls>)");
  app.add_option("--initial-cluster-state", initial_cluster_state,
                 "new: bootstrap a new cluster; existing: join (restart) an existing one")
      ->check(CLI::IsMember({"new", "existing"}))
      ->capture_default_str();
  app.add_option("--initial-cluster-token", initial_cluster_token,
                 "Initial cluster token; member and cluster ids derive from it")
      ->capture_default_str();
  app.add_option("--heartbeat-interval", heartbeat_interval_ms,
                 "Time (in milliseconds) of a heartbeat interval")
      ->check(CLI::Range(1u, 60'000u))
      ->capture_default_str();
  app.add_option("--election-timeout", election_timeout_ms,
                 "Time (in milliseconds) for an election to timeout")
      ->check(CLI::Range(1u, 600'000u))
      ->capture_default_str();
  app.add_option("--snapshot-count", snapshot_count,
                 "Number of applied entries between snapshots (Low-Water Mark); 0 disables")
      ->capture_default_str();
  app.add_flag("--values-in-memory", values_in_memory,
               "Keep values in the heap instead of files under <data-dir>/values read through "
               "the page cache (faster reads of cold values, about 270 more bytes of memory "
               "per 256-byte value)");
  app.add_option("--quota-backend-bytes", quota_backend_bytes,
                 "Raise an alarm when the key-value data exceeds this many bytes "
                 "(0: the default of 2 GiB)")
      ->capture_default_str();
  app.add_option("--max-request-bytes", max_request_bytes,
                 "Maximum client request size in bytes the server will accept")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--max-txn-ops", max_txn_ops,
                 "Maximum number of operations permitted in a transaction")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--listen-metrics-urls", listen_metrics_urls,
                 "Comma-separated URLs to serve /metrics and /health on");
  app.add_option("--client-threads", client_threads,
                 "Threads serving client gRPC calls (each owns its connections and hands "
                 "requests to the member thread)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--client-transport", client_transport,
                 "How the client port speaks gRPC: cairn (Cairn's own HTTP/2) or grpc (the gRPC "
                 "C++ library, kept for comparison)")
      ->check(CLI::IsMember({"cairn", "grpc"}))
      ->capture_default_str();
  app.add_option("--wal-segment-bytes", wal_segment_bytes,
                 "Size at which a write-ahead log segment is sealed and a new one started")
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_flag("--wal-plain-segments", wal_plain_segments,
               "Append to new log segment files instead of writing over spare ones zero-filled "
               "ahead of time (which makes each fdatasync cheaper)");
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(log_level));
  // As Go's runtime does for etcd: the soft limit on open files up to the hard one. Client
  // connections (up to 4,096), log segments and value-log files all take descriptors.
  if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) {
      spdlog::warn("could not raise the open-file limit to {}", files.rlim_max);
    }
  }
  if (data_dir.empty()) data_dir = name + ".cairn";
  if (initial_cluster.empty()) initial_cluster = name + "=" + initial_advertise_peer_urls;
  if (election_timeout_ms < 5 * heartbeat_interval_ms) {
    return Fail(cairn::Status::InvalidArgument(fmt::format(
        "--election-timeout[{}ms] should be at least as 5 times as --heartbeat-interval[{}ms]",
        election_timeout_ms, heartbeat_interval_ms)));
  }
  if (quota_backend_bytes < 0) {
    return Fail(cairn::Status::InvalidArgument("--quota-backend-bytes must not be negative"));
  }

  cairn::server::ServerOptions options;
  auto client_urls = ParseUrlList(listen_client_urls);
  if (!client_urls.ok()) return Fail(client_urls.status());
  auto peer_urls = ParseUrlList(listen_peer_urls);
  if (!peer_urls.ok()) return Fail(peer_urls.status());
  auto advertise_peer = ParseUrlList(initial_advertise_peer_urls);
  if (!advertise_peer.ok()) return Fail(advertise_peer.status());
  if (auto advertise_client = ParseUrlList(advertise_client_urls); !advertise_client.ok()) {
    return Fail(advertise_client.status());
  }
  if (!listen_metrics_urls.empty()) {
    auto metrics_urls = ParseUrlList(listen_metrics_urls);
    if (!metrics_urls.ok()) return Fail(metrics_urls.status());
    options.listen_metrics_urls = *metrics_urls;
  }
  auto cluster = cairn::server::ParseInitialCluster(initial_cluster, initial_cluster_token, name,
                                                    *advertise_peer);
  if (!cluster.ok()) return Fail(cluster.status());
  options.listen_client_urls = *client_urls;
  options.listen_peer_urls = *peer_urls;
  options.max_request_bytes = max_request_bytes;
  options.client_threads = client_threads;
  options.client_transport = client_transport == "grpc"
                                 ? cairn::server::ClientTransport::kGrpcLibrary
                                 : cairn::server::ClientTransport::kCairn;
  options.member.cluster = *cluster;
  options.member.data_dir = data_dir;
  options.member.heartbeat_interval_ms = heartbeat_interval_ms;
  options.member.election_timeout_ms = election_timeout_ms;
  options.member.snapshot_count = snapshot_count;
  options.member.wal_segment_bytes = wal_segment_bytes;
  options.member.values_in_files = !values_in_memory;
  options.member.wal_preallocated_segments = !wal_plain_segments;
  options.member.mvcc.max_txn_ops = max_txn_ops;
  options.member.mvcc.quota_bytes =
      quota_backend_bytes == 0 ? (2ull << 30) : static_cast<uint64_t>(quota_backend_bytes);

  // Block the stop signals before any thread exists (threads inherit the mask), then wait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("cairn member '{}' (id {:x}) of cluster {:x}, {} member(s), data directory {}", name,
               cluster->self.value(), cluster->cluster_id, cluster->members.size(), data_dir);
  cairn::PosixFileSystem fs;
  auto server = cairn::server::Server::Start(fs, std::move(options));
  if (!server.ok()) return Fail(server.status());

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}, shutting down", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  spdlog::info("stopped cleanly");
  return EXIT_SUCCESS;
}
