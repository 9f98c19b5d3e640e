// Crash test for the write-ahead log, snapshots and the low-water mark over SimFileSystem.
//
// A seeded workload of appends, syncs, truncations, snapshots with low-water-mark cleaning and
// clean reopens runs until the simulated process dies at a chosen mutating operation: at every
// write boundary of the workload, and at random ones with a torn last write (a random byte prefix
// of it reaches the page cache; the crash then keeps a sector prefix, any byte prefix, zeros, or
// nothing of what was unsynced). After the crash the log must open, every entry that Sync reported
// durable (and that no successful truncation removed) must be present and intact, nothing that was
// never appended may appear, and the log must still reach back to the newest snapshot. Finally a
// flipped bit in an fsynced record must make Open report corruption, never drop the record.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "storage/sim_file_system.h"
#include "storage/snapshot_store.h"
#include "wal/log_format.h"
#include "wal/low_water_mark.h"
#include "wal/write_ahead_log.h"

namespace cairn::wal {
namespace {

constexpr const char* kLogDir = "/data/wal";
constexpr const char* kSnapshotDir = "/data/snap";
// Every test runs twice: plain segments, and segments written over preallocated zeros (where a
// crash can also revert overwritten sectors out of order, leaving holes).
WalOptions kWalOptions{.segment_bytes_target = 700, .first_index_of_new_log = LogIndex(1)};
constexpr int kSteps = 120;

// Thousands of simulated crashes each log a warning on recovery; keep the test output readable.
const bool kQuietLogs = [] {
  spdlog::set_level(spdlog::level::off);
  return true;
}();

struct Model {
  std::map<uint64_t, Entry> required;  // Reported durable and not truncated: must survive.
  std::map<uint64_t, Entry> appended;  // Every entry that may legitimately be on disk.
  std::vector<std::string> trace;      // The operations run, printed when a check fails.
  uint64_t acknowledged_syncs = 0;     // Syncs that reported entries durable.

  std::string Trace() const {
    std::string text;
    for (const std::string& line : trace) text += "  " + line + "\n";
    return text;
  }
};

std::string RandomPayload(std::mt19937_64& random) {
  // Letters only: the bit-flip check below relies on no payload being all zeros by chance.
  std::string payload(1 + random() % 300, 'a');
  for (char& c : payload) c = static_cast<char>('a' + random() % 26);
  return payload;
}

// Runs the workload until it finishes or an operation fails (the simulated process died).
void RunWorkload(SimFileSystem& fs, uint64_t workload_seed, Model& model) {
  std::mt19937_64 random(workload_seed);
  auto opened = WriteAheadLog::Open(fs, kLogDir, kWalOptions);
  if (!opened.ok()) return;
  std::unique_ptr<WriteAheadLog> log = std::move(opened).value();
  auto snapshots_opened = SnapshotStore::Open(fs, kSnapshotDir, {.retained_snapshots = 2});
  if (!snapshots_opened.ok()) return;
  std::unique_ptr<SnapshotStore> snapshots = std::move(snapshots_opened).value();
  LowWaterMark low_water_mark({.retained_entries = 4});
  Generation generation = std::max(log->last_generation(), Generation(1));

  for (int step = 0; step < kSteps; ++step) {
    const uint64_t choice = random() % 100;
    if (choice < 50) {
      if (random() % 10 == 0) generation = generation.next();
      std::vector<Entry> entries;
      const uint64_t count = 1 + random() % 4;
      for (uint64_t i = 0; i < count; ++i) {
        entries.push_back(Entry{LogIndex(log->last_index().value() + 1 + i), generation, 1,
                                RandomPayload(random)});
      }
      for (const Entry& entry : entries) model.appended[entry.index.value()] = entry;
      model.trace.push_back(fmt::format("append [{}, {}] generation {}", entries.front().index,
                                        entries.back().index, generation));
      if (!log->Append(entries).ok()) return;
    } else if (choice < 78) {
      auto durable = log->Sync();
      model.trace.push_back(fmt::format("sync -> {}", durable.ok() ? fmt::format("{}", *durable)
                                                                   : durable.status().ToString()));
      if (!durable.ok()) return;
      if (!log->empty()) ++model.acknowledged_syncs;
      for (auto it = model.appended.begin(); it != model.appended.end(); ++it) {
        if (it->first <= durable->value() && it->first >= log->first_index().value()) {
          model.required[it->first] = it->second;
        }
      }
    } else if (choice < 88) {
      const uint64_t low = log->first_index().value() - 1;
      const uint64_t high = log->last_index().value();
      const uint64_t after = low + random() % (high - low + 1);
      model.required.erase(model.required.upper_bound(after), model.required.end());
      model.trace.push_back(fmt::format("truncate after {}", after));
      if (!log->TruncateAfter(LogIndex(after)).ok()) return;
      model.appended.erase(model.appended.upper_bound(after), model.appended.end());
      // A truncation that removed something made everything before it durable too.
      for (const auto& [index, entry] : model.appended) {
        if (index >= log->first_index().value() && index <= log->durable_index().value()) {
          model.required[index] = entry;
        }
      }
    } else if (choice < 96) {
      const LogIndex index = log->durable_index();
      if (index < log->first_index()) continue;
      const SnapshotMeta meta{index, log->GenerationAt(index)};
      model.trace.push_back(fmt::format("snapshot at {}, clean through {}", index,
                                        low_water_mark.ReleasableThrough(index)));
      if (!snapshots->Save(meta, "state@" + std::to_string(index.value())).ok()) return;
      // Entries the cleaning may delete are no longer required once it starts.
      const LogIndex releasable = low_water_mark.ReleasableThrough(index);
      model.required.erase(model.required.begin(), model.required.upper_bound(releasable.value()));
      if (!low_water_mark.OnSnapshotDurable(*log, index).ok()) return;
    } else {
      // A clean close and reopen.
      model.trace.push_back("reopen");
      log.reset();
      auto reopened = WriteAheadLog::Open(fs, kLogDir, kWalOptions);
      if (!reopened.ok()) return;
      log = std::move(reopened).value();
    }
  }
}

// Checks the state after a crash; returns "" or what is wrong.
std::string CheckRecovered(SimFileSystem& fs, const Model& model) {
  auto opened = WriteAheadLog::Open(fs, kLogDir, kWalOptions);
  if (!opened.ok()) return "log did not open: " + opened.status().ToString();
  WriteAheadLog& log = **opened;
  for (const auto& [index, entry] : model.required) {
    if (index < log.first_index().value() || index > log.last_index().value()) {
      return fmt::format("durable entry {} lost (log holds [{}, {}])", index, log.first_index(),
                         log.last_index());
    }
  }
  if (!log.empty()) {
    auto entries = log.Read(log.first_index(), log.last_index());
    if (!entries.ok()) return "read failed: " + entries.status().ToString();
    for (const Entry& entry : *entries) {
      auto appended = model.appended.find(entry.index.value());
      if (appended == model.appended.end() || appended->second != entry) {
        return fmt::format("entry {} on disk was never appended as read", entry.index);
      }
      auto required = model.required.find(entry.index.value());
      if (required != model.required.end() && required->second != entry) {
        return fmt::format("durable entry {} changed", entry.index);
      }
    }
  }
  auto snapshots = SnapshotStore::Open(fs, kSnapshotDir);
  if (!snapshots.ok()) return "snapshots did not open: " + snapshots.status().ToString();
  auto newest = (*snapshots)->LoadNewest();
  if (!newest.ok()) return "snapshot load failed: " + newest.status().ToString();
  if (newest->has_value() && log.first_index() > (*newest)->meta.index.next()) {
    return fmt::format("log starts at {} beyond the newest snapshot {}", log.first_index(),
                       (*newest)->meta.index);
  }
  return "";
}

std::unique_ptr<SimFileSystem> NewFileSystem(uint64_t seed) {
  auto fs = std::make_unique<SimFileSystem>(seed);
  CAIRN_CHECK(fs->CreateDirectory("/data").ok(), "the test creates /data");
  return fs;
}

constexpr TearMode kTearModes[] = {TearMode::kNone, TearMode::kSectorPrefix, TearMode::kAnyByte,
                                   TearMode::kZeroFill};

class WalCrashTest : public ::testing::TestWithParam<Preallocation> {
 protected:
  void SetUp() override { kWalOptions.preallocation = GetParam(); }
  void TearDown() override { kWalOptions.preallocation = Preallocation::kOff; }
};

TEST_P(WalCrashTest, CrashAtEveryWriteBoundaryLosesNoDurableEntry) {
  for (uint64_t workload_seed = 1; workload_seed <= 8; ++workload_seed) {
    uint64_t operations = 0;
    {
      auto fs = NewFileSystem(workload_seed);
      Model model;
      RunWorkload(*fs, workload_seed, model);
      operations = fs->mutating_operations();
      ASSERT_GT(model.acknowledged_syncs, 10u) << "the workload makes entries durable";
    }
    ASSERT_GT(operations, 100u);
    for (uint64_t crash_at = 1; crash_at <= operations; ++crash_at) {
      const TearMode tear = kTearModes[crash_at % 4];
      auto fs = NewFileSystem(workload_seed * 100'000 + crash_at);
      fs->SetCrashPoint(crash_at);
      Model model;
      RunWorkload(*fs, workload_seed, model);
      ASSERT_TRUE(fs->dead()) << "the crash point was reached";
      fs->Crash(tear);
      const std::string problem = CheckRecovered(*fs, model);
      ASSERT_EQ("", problem) << "workload seed " << workload_seed << ", crash after operation "
                             << crash_at << ", tear mode " << static_cast<int>(tear) << "\n"
                             << model.Trace();
    }
  }
}

TEST_P(WalCrashTest, RandomCrashPointsAndTearsAcrossSeeds) {
  std::mt19937_64 random(2024);
  for (int trial = 0; trial < 1000; ++trial) {
    const uint64_t workload_seed = 10 + random() % 50;
    const uint64_t crash_at = 1 + random() % 250;
    const TearMode tear = kTearModes[random() % 4];
    auto fs = NewFileSystem(random());
    fs->SetCrashPoint(crash_at);
    Model model;
    RunWorkload(*fs, workload_seed, model);
    fs->Crash(tear);
    ASSERT_EQ("", CheckRecovered(*fs, model))
        << "workload seed " << workload_seed << ", crash after operation " << crash_at
        << ", tear mode " << static_cast<int>(tear) << "\n" << model.Trace();
    // Then the recovered log keeps working, and survives a second crash.
    Model after;
    RunWorkload(*fs, workload_seed + 1000, after);
    fs->Crash(tear);
    auto reopened = WriteAheadLog::Open(*fs, kLogDir, kWalOptions);
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  }
}

// Offsets of every record of a segment file, parsed independently of the log's own code; stops at
// the zero padding of a preallocated segment.
std::vector<std::pair<uint64_t, uint64_t>> RecordSpans(const std::string& bytes) {
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  uint64_t offset = kSegmentHeaderBytes;
  while (offset + kRecordHeaderBytes <= bytes.size() && bytes[offset + kRecordTypeOffset] != 0) {
    uint32_t length;
    std::memcpy(&length, bytes.data() + offset + kRecordLengthOffset, 4);
    spans.emplace_back(offset, RecordBytes(length));
    offset += RecordBytes(length);
  }
  return spans;
}

TEST_P(WalCrashTest, FlippedBitInFsyncedRecordIsReportedNeverDropped) {
  std::mt19937_64 random(77);
  int flips = 0;
  for (uint64_t workload_seed = 1; workload_seed <= 40; ++workload_seed) {
    auto fs = NewFileSystem(workload_seed);
    Model model;
    RunWorkload(*fs, workload_seed, model);
    {
      // Make everything durable so that every record on disk was fsynced.
      auto log = WriteAheadLog::Open(*fs, kLogDir, kWalOptions).value();
      ASSERT_TRUE(log->Sync().ok());
    }
    std::vector<std::string> segments = fs->ListDirectory(kLogDir).value();
    std::erase(segments, std::string(kSpareSegmentName));  // Zeros, no records.
    const std::string path = std::string(kLogDir) + "/" + segments[random() % segments.size()];
    const auto spans = RecordSpans(fs->RawContents(path));
    if (spans.empty()) continue;
    const auto& [offset, size] = spans[random() % spans.size()];
    fs->FlipBit(path, offset + random() % size, static_cast<int>(random() % 8));
    Status status = WriteAheadLog::Open(*fs, kLogDir, kWalOptions).status();
    EXPECT_EQ(StatusCode::kCorruption, status.code())
        << "workload seed " << workload_seed << ", bit flipped in the record at " << path
        << " offset " << offset << ": " << status.ToString();
    ++flips;
  }
  EXPECT_GT(flips, 30);
}

INSTANTIATE_TEST_SUITE_P(Segments, WalCrashTest,
                         ::testing::Values(Preallocation::kOff, Preallocation::kInline),
                         [](const ::testing::TestParamInfo<Preallocation>& param_info) {
                           return param_info.param == Preallocation::kOff ? "Plain"
                                                                          : "Preallocated";
                         });

}  // namespace
}  // namespace cairn::wal
