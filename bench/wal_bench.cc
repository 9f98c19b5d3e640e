// cairn-bench-wal: durable append throughput of the write-ahead log beside the disk's raw limit.
//
// Measures, in one run on one disk:
//   raw_fdatasync_per_s      a loop of one 256-byte write + fdatasync (the floor for one writer)
//   raw_sequential_mib_per_s large sequential writes (1 MiB each, fdatasync every 64 MiB)
//   writersN_entries_per_s   N writers (event-driven, one append outstanding each) appending
//                            256-byte entries through the GroupCommitWriter, N = 1, 8, 64;
//   threadsN_entries_per_s   the same with N blocking threads calling AppendAndWait
// Prints a table, or with --json one JSON object. Targets (issue "Foundation"): one writer within
// 10% of the raw write+fdatasync loop; 64 writers at least 20x one writer.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
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

// Throughput, batching and latency percentiles of one measurement.
WriterResult Summarize(const cairn::wal::GroupCommitStats& stats,
                       const std::vector<std::vector<double>>& latencies, double elapsed) {
  std::vector<double> all;
  for (const auto& per_writer : latencies) {
    all.insert(all.end(), per_writer.begin(), per_writer.end());
  }
  std::sort(all.begin(), all.end());
  WriterResult result;
  result.entries_per_second = stats.entries / elapsed;
  result.entries_per_sync = stats.batches == 0 ? 0 : double(stats.entries) / stats.batches;
  if (!all.empty()) {
    result.p50_latency_us = all[all.size() / 2];
    result.p99_latency_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return result;
}

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
  log->reset();
  std::filesystem::remove_all(wal_dir);
  return Summarize(stats, latencies, elapsed);
}

// N logical writers, each with one durable append outstanding at a time, driven by completions
// the way the server drives the log (gRPC handlers and the consensus core never block on it):
// each completion records its latency and submits that writer's next append.
WriterResult MeasureAsyncWriters(const std::string& dir, int writers, double seconds) {
  const std::string wal_dir = fmt::format("{}/wal-{}-async", dir, writers);
  std::filesystem::remove_all(wal_dir);
  cairn::PosixFileSystem fs;
  auto log = cairn::wal::WriteAheadLog::Open(fs, wal_dir);
  if (!log.ok()) Die(log.status().ToString());
  std::vector<std::vector<double>> latencies(writers);
  std::mutex done_mutex;
  std::condition_variable all_done;
  int active = writers;
  bool failed = false;
  cairn::wal::GroupCommitStats stats;
  const std::string payload(256, 'p');
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  {
    cairn::wal::GroupCommitWriter writer(**log);
    // Completions of one writer never overlap (one append outstanding), so its latency vector
    // needs no lock; the group commit's own lock orders one completion before the next.
    std::function<void(int)> submit = [&](int w) {
      const auto begin = Clock::now();
      const cairn::Status submitted = writer.SubmitPayloads(
          cairn::Generation(1), 1, {payload}, [&, w, begin](cairn::Result<cairn::LogIndex> durable) {
            const auto now = Clock::now();
            latencies[w].push_back(Seconds(now - begin) * 1e6);
            if (durable.ok() && now < deadline) {
              submit(w);
              return;
            }
            std::lock_guard lock(done_mutex);
            failed |= !durable.ok();
            if (--active == 0) all_done.notify_one();
          });
      if (!submitted.ok()) Die(submitted.ToString());
    };
    for (int w = 0; w < writers; ++w) submit(w);
    std::unique_lock lock(done_mutex);
    all_done.wait(lock, [&] { return active == 0; });
    stats = writer.stats();
  }
  const double elapsed = Seconds(Clock::now() - start);
  if (failed) Die("an append failed during the benchmark");
  log->reset();
  std::filesystem::remove_all(wal_dir);
  return Summarize(stats, latencies, elapsed);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

struct Row {
  std::string label;
  std::string key;
  int writers;
  WriterResult result;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Durable append throughput of Cairn's write-ahead log vs the disk's raw limit"};
  std::string dir = "cairn-bench-wal.tmp";
  double seconds = 2;
  int rounds = 3;
  bool json = false;
  std::vector<int> writer_counts = {1, 8, 64};
  app.add_option("--dir", dir, "Scratch directory on the disk to measure (removed afterwards)")
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Duration of each measurement")->capture_default_str();
  app.add_option("--rounds", rounds,
                 "Rounds; each runs every measurement once, interleaved, and medians are reported")
      ->capture_default_str()
      ->check(CLI::Range(1, 50));
  app.add_option("--writers", writer_counts, "Writer counts to measure")->capture_default_str();
  app.add_flag("--json", json, "Print one JSON object instead of a table");
  CLI11_PARSE(app, argc, argv);

  std::filesystem::create_directories(dir);
  // Interleave the measurements so that a disk that speeds up or slows down during the run (a
  // shared virtual disk does) affects all of them alike; report each one's median.
  std::vector<double> raw_fdatasync_runs;
  std::vector<double> raw_sequential_runs;
  std::vector<std::vector<WriterResult>> async_runs(writer_counts.size());
  std::vector<std::vector<WriterResult>> thread_runs(writer_counts.size());
  for (int round = 0; round < rounds; ++round) {
    raw_fdatasync_runs.push_back(RawFdatasyncPerSecond(dir, seconds));
    for (size_t i = 0; i < writer_counts.size(); ++i) {
      async_runs[i].push_back(MeasureAsyncWriters(dir, writer_counts[i], seconds));
      thread_runs[i].push_back(MeasureWriters(dir, writer_counts[i], seconds));
    }
    raw_sequential_runs.push_back(RawSequentialMibPerSecond(dir, seconds));
  }
  std::filesystem::remove_all(dir);

  auto median_result = [](const std::vector<WriterResult>& runs) {
    auto median_of = [&](double WriterResult::*field) {
      std::vector<double> values;
      for (const WriterResult& run : runs) values.push_back(run.*field);
      return Median(values);
    };
    return WriterResult{median_of(&WriterResult::entries_per_second),
                        median_of(&WriterResult::entries_per_sync),
                        median_of(&WriterResult::p50_latency_us),
                        median_of(&WriterResult::p99_latency_us)};
  };
  const double raw_fdatasync = Median(raw_fdatasync_runs);
  const double raw_sequential = Median(raw_sequential_runs);
  std::vector<Row> rows;
  for (size_t i = 0; i < writer_counts.size(); ++i) {
    rows.push_back({fmt::format("WAL, {:>2} async writers", writer_counts[i]),
                    fmt::format("writers{}", writer_counts[i]), writer_counts[i],
                    median_result(async_runs[i])});
  }
  for (size_t i = 0; i < writer_counts.size(); ++i) {
    rows.push_back({fmt::format("WAL, {:>2} blocking threads", writer_counts[i]),
                    fmt::format("threads{}", writer_counts[i]), writer_counts[i],
                    median_result(thread_runs[i])});
  }
  auto rate = [&](const std::string& key) {
    for (const Row& row : rows) {
      if (row.key == key) return row.result.entries_per_second;
    }
    return 0.0;
  };
  struct Ratio {
    std::string key;
    std::string label;
    double value;
    std::string target;
  };
  std::vector<Ratio> ratios;
  if (rate("threads1") > 0) {
    ratios.push_back({"writers1_vs_raw", "1 blocking writer / raw write+fdatasync loop",
                      rate("threads1") / raw_fdatasync, ">= 0.90"});
    ratios.push_back({"async1_vs_raw", "1 async writer / raw write+fdatasync loop",
                      rate("writers1") / raw_fdatasync, ">= 0.90"});
  }
  if (rate("writers1") > 0 && rate("writers64") > 0) {
    ratios.push_back({"writers64_vs_writers1", "64 async writers / 1 async writer",
                      rate("writers64") / rate("writers1"), ">= 20"});
    ratios.push_back({"threads64_vs_threads1", "64 blocking threads / 1 blocking thread",
                      rate("threads64") / rate("threads1"), "(see docs/benchmarks.md)"});
  }

  if (json) {
    std::string fields = fmt::format(
        "\"raw_fdatasync_per_s\": {:.1f}, \"raw_sequential_mib_per_s\": {:.1f}, \"rounds\": {}, "
        "\"seconds_per_measurement\": {}",
        raw_fdatasync, raw_sequential, rounds, seconds);
    for (const Row& row : rows) {
      fields += fmt::format(", \"{}_entries_per_s\": {:.1f}, \"{}_entries_per_sync\": {:.1f}, "
                            "\"{}_p99_us\": {:.0f}",
                            row.key, row.result.entries_per_second, row.key,
                            row.result.entries_per_sync, row.key, row.result.p99_latency_us);
    }
    for (const Ratio& ratio : ratios) fields += fmt::format(", \"{}\": {:.3f}", ratio.key, ratio.value);
    fmt::print("{{{}}}\n", fields);
    return 0;
  }
  fmt::print("Write-ahead log, 256-byte entries, each acknowledged only once durable.\n");
  fmt::print("Median of {} interleaved rounds of {} s each; scratch directory {}.\n\n", rounds,
             seconds, dir);
  fmt::print("| measurement                  | per second | entries/sync | p50 us | p99 us |\n");
  fmt::print("|------------------------------|-----------:|-------------:|-------:|-------:|\n");
  fmt::print("| raw 256 B write + fdatasync  | {:>10.0f} |            1 |        |        |\n",
             raw_fdatasync);
  fmt::print("| raw sequential 1 MiB writes  | {:>6.0f} MiB |              |        |        |\n",
             raw_sequential);
  for (const Row& row : rows) {
    fmt::print("| {:<28} | {:>10.0f} | {:>12.1f} | {:>6.0f} | {:>6.0f} |\n", row.label,
               row.result.entries_per_second, row.result.entries_per_sync,
               row.result.p50_latency_us, row.result.p99_latency_us);
  }
  fmt::print("\n");
  for (const Ratio& ratio : ratios) {
    fmt::print("{:<46} {:>7.2f}  target {}\n", ratio.label + ":", ratio.value, ratio.target);
  }
  return 0;
}
