// Randomized comparison of MvccStore against a dumb reference: a flat list of
// (revision, key, value-or-tombstone) records, replayed from the start for every read.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "mvcc/mvcc_store.h"

namespace cairn::mvcc {
namespace {

constexpr int kSeedCount = 8;
constexpr int kStepsPerSeed = 400;
constexpr int kKeyCount = 8;
constexpr int kSnapshotEverySteps = 50;

class ReferenceModel {
 public:
  struct Record {
    int64_t revision = 0;
    std::string key{};
    std::optional<std::string> value{};  // nullopt: tombstone.
  };

  // Live keys at `revision`, by replaying every record up to it.
  std::map<std::string, KeyValue> StateAt(int64_t revision) const {
    std::map<std::string, KeyValue> state;
    for (const Record& record : records_) {
      if (record.revision > revision) break;
      if (!record.value.has_value()) {
        state.erase(record.key);
        continue;
      }
      auto found = state.find(record.key);
      if (found == state.end()) {
        state[record.key] = KeyValue{record.key, Revision{record.revision},
                                     Revision{record.revision}, 1, *record.value, 0};
      } else {
        found->second.mod_revision = Revision{record.revision};
        found->second.version += 1;
        found->second.value = *record.value;
      }
    }
    return state;
  }

  // Applies one write transaction's effective writes; none means no new revision.
  void Commit(const std::vector<std::pair<std::string, std::optional<std::string>>>& writes) {
    if (writes.empty()) return;
    ++current_;
    for (const auto& [key, value] : writes) records_.push_back(Record{current_, key, value});
  }

  int64_t current() const { return current_; }
  int64_t compacted() const { return compacted_; }
  void set_compacted(int64_t revision) { compacted_ = revision; }

 private:
  std::vector<Record> records_;
  int64_t current_ = 1;
  int64_t compacted_ = 0;
};

std::string KeyName(int index) { return "k" + std::to_string(index); }

// What a run saw of the value log, for the test to check that relocation was exercised.
struct ValueLogSeen {
  int relocation_passes = 0;
};

void RunSeed(uint64_t seed, const MvccOptions& options, ValueLogSeen* seen) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 random(seed);
  auto uniform = [&](int64_t low, int64_t high) {
    return std::uniform_int_distribution<int64_t>(low, high)(random);
  };
  MvccStore store(options);
  ReferenceModel reference;
  uint64_t clock_ms = 1;
  bool was_relocating = false;

  for (int step = 0; step < kStepsPerSeed; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const int64_t choice = uniform(0, 99);
    const std::string key = KeyName(static_cast<int>(uniform(0, kKeyCount - 1)));
    const std::string value = "v" + std::to_string(uniform(0, 999));
    const HybridTimestamp timestamp = HybridTimestamp::FromParts(++clock_ms, 0);
    auto live = reference.StateAt(reference.current());

    if (choice < 35) {
      auto response = store.Put(PutRequest{.key = key, .value = value}, timestamp);
      ASSERT_TRUE(response.ok()) << response.status().ToString();
      reference.Commit({{key, value}});
    } else if (choice < 50) {
      std::string end;
      if (uniform(0, 2) == 0) {
        end = std::string(1, '\0');
      } else if (uniform(0, 1) == 0) {
        end = KeyName(static_cast<int>(uniform(0, kKeyCount)));
      }
      auto response = store.DeleteRange(DeleteRangeRequest{.key = key, .range_end = end},
                                        timestamp);
      ASSERT_TRUE(response.ok()) << response.status().ToString();
      std::vector<std::pair<std::string, std::optional<std::string>>> writes;
      for (const auto& [live_key, kv] : live) {
        bool inside = end.empty() ? live_key == key
                                  : live_key >= key && (end == std::string(1, '\0') || live_key < end);
        if (inside) writes.push_back({live_key, std::nullopt});
      }
      EXPECT_EQ(response->deleted, static_cast<int64_t>(writes.size()));
      reference.Commit(writes);
    } else if (choice < 70) {
      const std::string compare_key = KeyName(static_cast<int>(uniform(0, kKeyCount - 1)));
      const std::string put_key = KeyName(static_cast<int>(uniform(0, kKeyCount - 1)));
      const std::string delete_key = KeyName(static_cast<int>(uniform(0, kKeyCount - 1)));
      const std::string failure_key = KeyName(static_cast<int>(uniform(0, kKeyCount - 1)));
      auto found = live.find(compare_key);
      const int64_t live_version = found == live.end() ? 0 : found->second.version;
      const int64_t expected_version = live_version + uniform(0, 1);
      TxnRequest request{
          .compare = {Compare{.result = CompareResult::kEqual, .target = CompareTarget::kVersion,
                              .key = compare_key, .version = expected_version}},
          .success = {RequestOp{PutRequest{.key = put_key, .value = value}},
                      RequestOp{DeleteRangeRequest{.key = delete_key}},
                      RequestOp{RangeRequest{.key = put_key}}},
          .failure = {RequestOp{PutRequest{.key = failure_key, .value = value}}}};
      auto response = store.Txn(request, timestamp);
      if (put_key == delete_key) {
        ASSERT_FALSE(response.ok());
        EXPECT_EQ(response.status().message(), "etcdserver: duplicate key given in txn request");
        continue;
      }
      ASSERT_TRUE(response.ok()) << response.status().ToString();
      const bool succeeded = live_version == expected_version;
      EXPECT_EQ(response->succeeded, succeeded);
      if (succeeded) {
        std::vector<std::pair<std::string, std::optional<std::string>>> writes{{put_key, value}};
        if (live.contains(delete_key)) writes.push_back({delete_key, std::nullopt});
        reference.Commit(writes);
        const auto& read = std::get<RangeResponse>(response->responses[2].response);
        ASSERT_EQ(read.kvs.size(), 1u) << "the txn reads its own put";
        EXPECT_EQ(read.kvs[0].value, value);
      } else {
        reference.Commit({{failure_key, value}});
      }
    } else if (choice < 78) {
      const int64_t revision = uniform(0, reference.current() + 1);
      auto response = store.Compact(CompactionRequest{Revision{revision}});
      if (revision > reference.current()) {
        EXPECT_EQ(response.status().message(), "mvcc: required revision is a future revision");
      } else if (revision <= reference.compacted()) {
        EXPECT_EQ(response.status().message(), "mvcc: required revision has been compacted");
      } else {
        ASSERT_TRUE(response.ok()) << response.status().ToString();
        reference.set_compacted(revision);
      }
    } else {
      const int64_t revision = uniform(0, reference.current() + 1);
      RangeRequest all{.key = std::string(1, '\0'), .range_end = std::string(1, '\0'),
                       .revision = Revision{revision}};
      auto response = store.Range(all);
      if (revision > reference.current()) {
        EXPECT_EQ(response.status().message(), "mvcc: required revision is a future revision");
      } else if (revision > 0 && revision < reference.compacted()) {
        EXPECT_EQ(response.status().message(), "mvcc: required revision has been compacted");
      } else {
        ASSERT_TRUE(response.ok()) << response.status().ToString();
        auto expected = reference.StateAt(revision > 0 ? revision : reference.current());
        std::vector<KeyValue> expected_kvs;
        for (const auto& [expected_key, kv] : expected) expected_kvs.push_back(kv);
        EXPECT_EQ(response->kvs, expected_kvs) << "at revision " << revision;
        EXPECT_EQ(response->count, static_cast<int64_t>(expected_kvs.size()));
      }
    }
    ASSERT_EQ(store.current_revision(), Revision{reference.current()});
    ASSERT_EQ(store.compacted_revision(), Revision{reference.compacted()});
    const ValueLog& values = store.value_log();
    ASSERT_LE(values.live_bytes(), store.bytes_used()) << "live values are part of bytes_used";
    if (store.relocating() && !was_relocating) ++seen->relocation_passes;
    was_relocating = store.relocating();

    if (step % kSnapshotEverySteps == kSnapshotEverySteps - 1) {
      auto restored = MvccStore::Restore(store.Serialize(), options);
      ASSERT_TRUE(restored.ok()) << restored.status().ToString();
      ASSERT_EQ(restored->bytes_used(), store.bytes_used());
      store = std::move(*restored);
    }
  }
}

TEST(MvccReferenceTest, RandomOperationsMatchReference) {
  ValueLogSeen seen;
  for (uint64_t seed = 1; seed <= kSeedCount; ++seed) {
    RunSeed(seed, MvccOptions{}, &seen);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// The same with value segments of a few values each and a slow relocation pass, so segments seal,
// empty, turn sparse and get relocated while puts, deletes, txns, compactions, reads and
// snapshot round trips go on.
TEST(MvccReferenceTest, RandomOperationsMatchReferenceWithTinyValueSegments) {
  MvccOptions options;
  options.value_log.segment_bytes = 24;
  options.value_log.flush_bytes = 8;
  options.relocation_keys_per_write = 2;
  ValueLogSeen seen;
  for (uint64_t seed = 1; seed <= kSeedCount; ++seed) {
    RunSeed(seed, options, &seen);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GE(seen.relocation_passes, 10) << "relocation was exercised";
}

}  // namespace
}  // namespace cairn::mvcc
