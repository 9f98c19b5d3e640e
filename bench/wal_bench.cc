// cairn-bench-wal: durable append throughput of the write-ahead log beside the disk's raw limit.
//
// Measures, in one run on one disk:
//   raw_fdatasync_per_s      a loop of one 256-byte write + fdatasync (the floor for one writer)
//   raw_sequential_mib_per_s large sequential writes (1 MiB each, fdatasync every 64 MiB)
//   writersN_entries_per_s   N threads each appending 256-byte entries through the
//                            GroupCommitWriter and waiting for durability, N = 1, 8, 64
// Prints a table, or with --json one JSON object. Targets (issue "Foundation"): one writer within
// 10% of the raw write+fdatasync loop; 64 writers at least 20x one writer.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "storage/posix_file_system.h"
#include "wal/group_commit_writer.h"
#include "wal/write_ahead_log.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

void Die(const std::string& message) {
  fmt::print(stderr, "cairn-bench-wal: {}\n", message);
  std::exit(1);
}

double RawFdatasyncPerSecond(const std::string& dir, double seconds) {
  const std::string path = dir + "/raw-fdatasync";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("cannot open " + path);
  const std::string record(256, 'r');
  uint64_t count = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size())) {
      Die("raw write failed");
    }
    if (::fdatasync(fd) != 0) Die("raw fdatasync failed");
    ++count;
  }
  const double elapsed = Seconds(Clock::now() - start);
  ::close(fd);
  std::filesystem::remove(path);
  return count / elapsed;
}

double RawSequentialMibPerSecond(const std::string& dir, double seconds) {
  const std::string path = dir + "/raw-sequential";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("cannot open " + path);
  const std::string block(1 << 20, 's');
  constexpr uint64_t kBytesMax = 2ull << 30;  // Bound the disk space used.
  uint64_t bytes = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline && bytes < kBytesMax) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
      Die("raw sequential write failed");
    }
    bytes += block.size();
    if (bytes % (64u << 20) == 0 && ::fdatasync(fd) != 0) Die("raw fdatasync failed");
  }
  if (::fdatasync(fd) != 0) Die("raw fdatasync failed");
  const double elapsed = Seconds(Clock::now() - start);
  ::close(fd);
  std::filesystem::remove(path);
  return bytes / elapsed / (1 << 20);
}

struct WriterResult {
  double entries_per_second = 0;
  double entries_per_sync = 0;
  double p50_latency_us = 0;
  double p99_latency_us = 0;
};

WriterResult MeasureWriters(const std::string& dir, int writers, double seconds) {
  const std::string wal_dir = fmt::format("{}/wal-{}-writers", dir, writers);
  std::filesystem::remove_all(wal_dir);
  cairn::PosixFileSystem fs;
  auto log = cairn::wal::WriteAheadLog::Open(fs, wal_dir);
  if (!log.ok()) Die(log.status().ToString());
  std::vector<std::vector<double>> latencies(writers);
  std::atomic<bool> failed{false};
  cairn::wal::GroupCommitStats stats;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  {
    cairn::wal::GroupCommitWriter writer(**log);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        const std::string payload(256, static_cast<char>('a' + w % 26));
        while (Clock::now() < deadline) {
          const auto begin = Clock::now();
          if (!writer.AppendAndWait(cairn::Generation(1), 1, payload).ok()) {
            failed = true;
            return;
          }
          latencies[w].push_back(Seconds(Clock::now() - begin) * 1e6);
        }
      });
    }
    for (auto& thread : threads) thread.join();
    stats = writer.stats();
  }
  const double elapsed = Seconds(Clock::now() - start);
  if (failed) Die("an append failed during the benchmark");
  std::vector<double> all;
  for (auto& per_writer : latencies) all.insert(all.end(), per_writer.begin(), per_writer.end());
  std::sort(all.begin(), all.end());
  WriterResult result;
  result.entries_per_second = stats.entries / elapsed;
  result.entries_per_sync = stats.batches == 0 ? 0 : double(stats.entries) / stats.batches;
  if (!all.empty()) {
    result.p50_latency_us = all[all.size() / 2];
    result.p99_latency_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  log->reset();
  std::filesystem::remove_all(wal_dir);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Durable append throughput of Cairn's write-ahead log vs the disk's raw limit"};
  std::string dir = "cairn-bench-wal.tmp";
  double seconds = 3;
  bool json = false;
  app.add_option("--dir", dir, "Scratch directory on the disk to measure (removed afterwards)")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of each measurement")->capture_default_str();
  app.add_flag("--json", json, "Print one JSON object instead of a table");
  CLI11_PARSE(app, argc, argv);

  std::filesystem::create_directories(dir);
  const double raw_fdatasync = RawFdatasyncPerSecond(dir, seconds);
  const double raw_sequential = RawSequentialMibPerSecond(dir, seconds);
  const std::vector<int> writer_counts = {1, 8, 64};
  std::vector<WriterResult> results;
  for (int writers : writer_counts) results.push_back(MeasureWriters(dir, writers, seconds));
  std::filesystem::remove_all(dir);

  const double one_writer_vs_raw = results[0].entries_per_second / raw_fdatasync;
  const double sixty_four_vs_one = results[2].entries_per_second / results[0].entries_per_second;
  if (json) {
    fmt::print(
        "{{\"raw_fdatasync_per_s\": {:.1f}, \"raw_sequential_mib_per_s\": {:.1f}, "
        "\"writers1_entries_per_s\": {:.1f}, \"writers8_entries_per_s\": {:.1f}, "
        "\"writers64_entries_per_s\": {:.1f}, \"writers1_vs_raw\": {:.3f}, "
        "\"writers64_vs_writers1\": {:.2f}, \"writers64_entries_per_sync\": {:.1f}}}\n",
        raw_fdatasync, raw_sequential, results[0].entries_per_second,
        results[1].entries_per_second, results[2].entries_per_second, one_writer_vs_raw,
        sixty_four_vs_one, results[2].entries_per_sync);
    return 0;
  }
  fmt::print("Write-ahead log, 256-byte entries, durable ({} s per row, dir {})\n\n", seconds, dir);
  fmt::print("| measurement                  | per second | entries/sync | p50 us | p99 us |\n");
  fmt::print("|------------------------------|-----------:|-------------:|-------:|-------:|\n");
  fmt::print("| raw 256 B write + fdatasync  | {:>10.0f} |            1 |        |        |\n",
             raw_fdatasync);
  fmt::print("| raw sequential 1 MiB writes  | {:>6.0f} MiB |              |        |        |\n",
             raw_sequential);
  for (size_t i = 0; i < writer_counts.size(); ++i) {
    fmt::print("| WAL, {:>2} writer(s)            | {:>10.0f} | {:>12.1f} | {:>6.0f} | {:>6.0f} |\n",
               writer_counts[i], results[i].entries_per_second, results[i].entries_per_sync,
               results[i].p50_latency_us, results[i].p99_latency_us);
  }
  fmt::print("\n1 writer / raw fdatasync loop: {:.2f} (target >= 0.90)\n", one_writer_vs_raw);
  fmt::print("64 writers / 1 writer:         {:.1f}x (target >= 20x)\n", sixty_four_vs_one);
  return 0;
}
