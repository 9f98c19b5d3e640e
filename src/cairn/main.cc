// cairn: one Cairn member.
//
// Today the member opens (or creates) its data directory and recovers its durable state: the
// metadata record, the newest snapshot and the write-ahead log. It reports what it found and stays
// up until SIGINT or SIGTERM, then closes cleanly. Serving the etcd v3 API and talking to peers come
// with the server issue; the flags already carry etcd's names so scripts will not change.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

#include "storage/data_directory.h"
#include "storage/metadata_store.h"
#include "storage/posix_file_system.h"
#include "storage/snapshot_store.h"
#include "wal/write_ahead_log.h"

namespace {

int Fail(const cairn::Status& status) {
  spdlog::critical("cairn cannot start: {}", status.ToString());
  return EXIT_FAILURE;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cairn: a consistent key-value store speaking the etcd v3 API"};
  std::string name = "default";
  std::string data_dir;
  uint64_t wal_segment_bytes = 64ull << 20;
  app.add_option("--name", name, "Human-readable name for this member")->capture_default_str();
  app.add_option("--data-dir", data_dir, "Path to the data directory (default: ${name}.cairn)");
  app.add_option("--wal-segment-bytes", wal_segment_bytes,
                 "Size at which a write-ahead log segment is sealed and a new one started")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (data_dir.empty()) data_dir = name + ".cairn";

  // Block the stop signals before any thread exists, then wait for one synchronously.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  cairn::PosixFileSystem fs;
  auto directory = cairn::DataDirectory::Open(fs, data_dir);
  if (!directory.ok()) return Fail(directory.status());
  auto metadata = cairn::MetadataStore::Open(fs, directory->metadata_directory());
  if (!metadata.ok()) return Fail(metadata.status());
  auto snapshots = cairn::SnapshotStore::Open(fs, directory->snapshot_path());
  if (!snapshots.ok()) return Fail(snapshots.status());
  auto newest = (*snapshots)->LoadNewest();
  if (!newest.ok()) return Fail(newest.status());
  cairn::wal::WalOptions wal_options;
  wal_options.segment_bytes_target = wal_segment_bytes;
  auto log = cairn::wal::WriteAheadLog::Open(fs, directory->wal_path(), wal_options);
  if (!log.ok()) return Fail(log.status());
  if (newest->has_value() && (*log)->first_index() > (*newest)->meta.index.next()) {
    return Fail(cairn::Status::Corruption(fmt::format(
        "the log starts at index {} but the newest usable snapshot is at {}: entries between "
        "them are missing",
        (*log)->first_index(), (*newest)->meta.index)));
  }

  const auto& recovery = (*log)->recovery();
  spdlog::info("cairn member '{}' data directory {} ({})", name, directory->path(),
               directory->created() ? "created" : "recovered");
  spdlog::info("generation {}, voted for {}; snapshot {}; log [{}, {}] in {} segments{}",
               (*metadata)->current().generation, (*metadata)->current().voted_for,
               newest->has_value() ? fmt::format("at index {}", (*newest)->meta.index)
                                   : std::string("none"),
               (*log)->first_index(), (*log)->last_index(), recovery.segments,
               recovery.torn_tail_truncated
                   ? fmt::format(", torn tail of {} bytes truncated", recovery.torn_tail_bytes_dropped)
                   : std::string());
  spdlog::info("the etcd v3 API is not served yet (server issue); stop with Ctrl-C");

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}, closing", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  auto synced = (*log)->Sync();
  if (!synced.ok()) return Fail(synced.status());
  return EXIT_SUCCESS;
}
