#include "linearizability/linearizability_checker.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "linearizability/kv_model.h"

namespace cairn::linearizability {
namespace {

// The return time of an operation whose outcome the client never learned.
constexpr std::optional<int64_t> kNoReturn = std::nullopt;

KvOperation Put(uint64_t client, std::string key, std::string value, int64_t call_time,
                std::optional<int64_t> return_time) {
  KvOperation operation;
  operation.client_id = client;
  operation.kind = KvOperationKind::kPut;
  operation.key = std::move(key);
  operation.value = std::move(value);
  operation.call_time = call_time;
  operation.return_time = return_time;
  return operation;
}

KvOperation Get(uint64_t client, std::string key, std::optional<std::string> read_value,
                int64_t call_time, std::optional<int64_t> return_time) {
  KvOperation operation;
  operation.client_id = client;
  operation.kind = KvOperationKind::kGet;
  operation.key = std::move(key);
  operation.read_value = std::move(read_value);
  operation.call_time = call_time;
  operation.return_time = return_time;
  return operation;
}

KvOperation Delete(uint64_t client, std::string key, int64_t call_time,
                   std::optional<int64_t> return_time) {
  KvOperation operation;
  operation.client_id = client;
  operation.kind = KvOperationKind::kDelete;
  operation.key = std::move(key);
  operation.call_time = call_time;
  operation.return_time = return_time;
  return operation;
}

KvOperation Cas(uint64_t client, std::string key, std::optional<std::string> expected,
                std::string value, bool succeeded, int64_t call_time,
                std::optional<int64_t> return_time) {
  KvOperation operation;
  operation.client_id = client;
  operation.kind = KvOperationKind::kCompareAndSet;
  operation.key = std::move(key);
  operation.expected = std::move(expected);
  operation.value = std::move(value);
  operation.succeeded = succeeded;
  operation.call_time = call_time;
  operation.return_time = return_time;
  return operation;
}

Verdict Check(const std::vector<KvOperation>& history) {
  return CheckKvHistory(history).verdict;
}

// ---------------------------------------------------------------------------------------------
// Basic histories.

TEST(LinearizabilityChecker, EmptyHistoryIsLinearizable) {
  const CheckResult result = CheckKvHistory({});
  EXPECT_EQ(Verdict::kLinearizable, result.verdict);
  EXPECT_EQ(0u, result.steps);
}

TEST(LinearizabilityChecker, SinglePutThenGet) {
  EXPECT_EQ(Verdict::kLinearizable, Check({Put(1, "x", "1", 0, 10), Get(2, "x", "1", 20, 30)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "1", 0, 10), Get(2, "x", std::nullopt, 20, 30)}));
}

TEST(LinearizabilityChecker, GetOfMissingKeySeesAbsent) {
  EXPECT_EQ(Verdict::kLinearizable, Check({Get(1, "x", std::nullopt, 0, 10)}));
  EXPECT_EQ(Verdict::kNotLinearizable, Check({Get(1, "x", "", 0, 10)}));
}

TEST(LinearizabilityChecker, SequentialHistory) {
  EXPECT_EQ(
      Verdict::kLinearizable,
      Check({Put(1, "x", "a", 0, 1), Get(1, "x", "a", 2, 3), Put(2, "x", "b", 4, 5),
             Get(3, "x", "b", 6, 7), Cas(1, "x", "b", "c", true, 8, 9), Get(2, "x", "c", 10, 11),
             Delete(3, "x", 12, 13), Get(1, "x", std::nullopt, 14, 15)}));
}

TEST(LinearizabilityChecker, ConcurrentWritesLetAReadSeeEitherValue) {
  for (const char* seen : {"a", "b"}) {
    EXPECT_EQ(Verdict::kLinearizable,
              Check({Put(1, "x", "a", 0, 10), Put(2, "x", "b", 0, 10), Get(3, "x", seen, 5, 15)}))
        << "read saw " << seen;
  }
  // After both writes finished, two later reads agree on the winner.
  EXPECT_EQ(Verdict::kLinearizable, Check({Put(1, "x", "a", 0, 10), Put(2, "x", "b", 0, 10),
                                           Get(3, "x", "a", 20, 21), Get(3, "x", "a", 22, 23)}));
  EXPECT_EQ(Verdict::kNotLinearizable, Check({Put(1, "x", "a", 0, 10), Put(2, "x", "b", 0, 10),
                                              Get(3, "x", "a", 20, 21), Get(3, "x", "b", 22, 23)}));
}

TEST(LinearizabilityChecker, ReadOfValueNeverWrittenIsNotLinearizable) {
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "a", 0, 10), Put(2, "x", "b", 0, 10), Get(3, "x", "c", 5, 15)}));
}

TEST(LinearizabilityChecker, StaleReadAfterCompletedWriteIsNotLinearizable) {
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "a", 0, 10), Put(1, "x", "b", 20, 30), Get(2, "x", "a", 40, 50)}));
}

TEST(LinearizabilityChecker, EqualTimestampsCountAsOverlapping) {
  // The get is called at the instant the put returns: they overlap, so either order is allowed.
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "a", 0, 10), Get(2, "x", std::nullopt, 10, 20)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "a", 0, 10), Get(2, "x", std::nullopt, 11, 20)}));
}

TEST(LinearizabilityChecker, RegisterNewOldInversionIsNotLinearizable) {
  // While "2" is being written, one read sees it and a strictly later read sees the old "1".
  EXPECT_EQ(Verdict::kNotLinearizable, Check({Put(1, "x", "1", 0, 5), Put(2, "x", "2", 6, 20),
                                              Get(3, "x", "2", 7, 8), Get(4, "x", "1", 9, 10)}));
}

TEST(LinearizabilityChecker, RegisterOverlappingReadsMaySeeNewThenOld) {
  // The same reads overlapping each other may be ordered old-then-new.
  EXPECT_EQ(Verdict::kLinearizable, Check({Put(1, "x", "1", 0, 5), Put(2, "x", "2", 6, 20),
                                           Get(3, "x", "2", 7, 10), Get(4, "x", "1", 9, 12)}));
}

TEST(LinearizabilityChecker, RegisterReadCannotSeeAWriteThatStartsLater) {
  EXPECT_EQ(Verdict::kNotLinearizable, Check({Get(1, "x", "1", 0, 5), Put(2, "x", "1", 6, 10)}));
}

TEST(LinearizabilityChecker, RegisterLostWriteIsNotLinearizable) {
  // Two sequential writes, then a read of the first: the second write was lost.
  EXPECT_EQ(Verdict::kNotLinearizable, Check({Put(1, "x", "1", 0, 5), Put(2, "x", "2", 6, 10),
                                              Get(1, "x", "1", 11, 15), Get(2, "x", "2", 16, 20)}));
}

// ---------------------------------------------------------------------------------------------
// Compare-and-set and delete.

TEST(LinearizabilityChecker, CasSucceedsWhenExpectedMatches) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "1", 0, 5), Cas(2, "x", "1", "2", true, 6, 10),
                   Get(3, "x", "2", 11, 12)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "1", 0, 5), Cas(2, "x", "1", "2", false, 6, 10)}));
}

TEST(LinearizabilityChecker, CasFailsWhenExpectedDiffers) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "1", 0, 5), Cas(2, "x", "7", "2", false, 6, 10),
                   Get(3, "x", "1", 11, 12)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "1", 0, 5), Cas(2, "x", "7", "2", true, 6, 10)}));
  // A failed CAS changes nothing.
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "1", 0, 5), Cas(2, "x", "7", "2", false, 6, 10),
                   Get(3, "x", "2", 11, 12)}));
}

TEST(LinearizabilityChecker, CasExpectingAbsent) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Cas(1, "x", std::nullopt, "1", true, 0, 5), Get(2, "x", "1", 6, 7)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "0", 0, 5), Cas(1, "x", std::nullopt, "1", true, 6, 10)}));
  EXPECT_EQ(Verdict::kLinearizable, Check({Put(1, "x", "0", 0, 5), Delete(2, "x", 6, 8),
                                           Cas(1, "x", std::nullopt, "1", true, 9, 10)}));
}

TEST(LinearizabilityChecker, TwoConcurrentCasFromSameExpectedBothSucceedingIsNotLinearizable) {
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "0", 0, 5), Cas(2, "x", "0", "a", true, 10, 20),
                   Cas(3, "x", "0", "b", true, 10, 20)}));
}

TEST(LinearizabilityChecker, TwoConcurrentCasFromSameExpectedOneWinsIsLinearizable) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "0", 0, 5), Cas(2, "x", "0", "a", true, 10, 20),
                   Cas(3, "x", "0", "b", false, 10, 20), Get(1, "x", "a", 21, 22)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "0", 0, 5), Cas(2, "x", "0", "a", true, 10, 20),
                   Cas(3, "x", "0", "b", false, 10, 20), Get(1, "x", "b", 21, 22)}));
}

TEST(LinearizabilityChecker, DeleteThenGetAbsent) {
  EXPECT_EQ(Verdict::kLinearizable, Check({Put(1, "x", "1", 0, 5), Delete(2, "x", 6, 10),
                                           Get(3, "x", std::nullopt, 11, 12)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "1", 0, 5), Delete(2, "x", 6, 10), Get(3, "x", "1", 11, 12)}));
}

// ---------------------------------------------------------------------------------------------
// Unknown outcomes.

TEST(LinearizabilityChecker, UnknownPutLaterReadTookEffect) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "1", 0, kNoReturn), Get(2, "x", "1", 10, 20)}));
}

TEST(LinearizabilityChecker, UnknownPutNeverObservedDidNotTakeEffect) {
  EXPECT_EQ(Verdict::kLinearizable, Check({Put(1, "x", "0", 0, 5), Put(2, "x", "1", 10, kNoReturn),
                                           Get(3, "x", "0", 20, 21), Get(3, "x", "0", 30, 31)}));
}

TEST(LinearizabilityChecker, UnknownPutMayTakeEffectLongAfterItsCall) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "1", 0, kNoReturn), Get(2, "x", std::nullopt, 100, 110),
                   Get(2, "x", "1", 200, 210)}));
}

TEST(LinearizabilityChecker, UnknownPutCannotTakeEffectBeforeItsCall) {
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Get(2, "x", "1", 0, 10), Put(1, "x", "1", 20, kNoReturn)}));
}

TEST(LinearizabilityChecker, UnknownPutSeenThenNotSeenThenSeenIsNotLinearizable) {
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "1", 0, kNoReturn), Get(2, "x", "1", 10, 20),
                   Get(2, "x", std::nullopt, 30, 40), Get(2, "x", "1", 50, 60)}));
}

TEST(LinearizabilityChecker, UnknownCasTakesEffectOnlyWhenExpectedMatches) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "0", 0, 5), Cas(2, "x", "0", "1", false, 10, kNoReturn),
                   Get(3, "x", "1", 20, 30)}));
  EXPECT_EQ(Verdict::kNotLinearizable,
            Check({Put(1, "x", "0", 0, 5), Cas(2, "x", "9", "1", true, 10, kNoReturn),
                   Get(3, "x", "1", 20, 30)}));
}

TEST(LinearizabilityChecker, UnknownGetConstrainsNothing) {
  EXPECT_EQ(Verdict::kLinearizable,
            Check({Put(1, "x", "0", 0, 5), Get(2, "x", "never-written", 10, kNoReturn)}));
}

// ---------------------------------------------------------------------------------------------
// Invalid input.

TEST(LinearizabilityChecker, ReturnBeforeCallIsInvalid) {
  const CheckResult result = CheckKvHistory({Put(1, "x", "1", 10, 5)});
  EXPECT_EQ(Verdict::kInvalidHistory, result.verdict);
  EXPECT_NE(std::string::npos, result.explanation.find("before its call")) << result.explanation;
}

TEST(LinearizabilityChecker, MalformedOperationsAreInvalid) {
  KvOperation cas_without_value = Cas(1, "x", "0", "1", true, 0, 5);
  cas_without_value.value.reset();
  KvOperation put_without_value = Put(1, "x", "1", 0, 5);
  put_without_value.value.reset();
  KvOperation get_with_value = Get(1, "x", std::nullopt, 0, 5);
  get_with_value.value = "1";
  KvOperation put_with_read_value = Put(1, "x", "1", 0, 5);
  put_with_read_value.read_value = "1";
  KvOperation failed_put = Put(1, "x", "1", 0, 5);
  failed_put.succeeded = false;
  KvOperation delete_with_expected = Delete(1, "x", 0, 5);
  delete_with_expected.expected = "1";
  for (const KvOperation& operation : {cas_without_value, put_without_value, get_with_value,
                                       put_with_read_value, failed_put, delete_with_expected}) {
    const CheckResult result = CheckKvHistory({Put(2, "y", "1", 0, 1), operation});
    EXPECT_EQ(Verdict::kInvalidHistory, result.verdict) << DescribeOperation(operation);
    EXPECT_NE(std::string::npos, result.explanation.find("operation 1")) << result.explanation;
  }
}

// ---------------------------------------------------------------------------------------------
// Descriptions and explanations.

TEST(LinearizabilityChecker, DescribeOperationIsReadable) {
  EXPECT_EQ("client 3: cas(x, 1 -> 2) = true [10, 14]",
            DescribeOperation(Cas(3, "x", "1", "2", true, 10, 14)));
  EXPECT_EQ("client 3: cas(x, absent -> 2) = ? [10, ?]",
            DescribeOperation(Cas(3, "x", std::nullopt, "2", true, 10, kNoReturn)));
  EXPECT_EQ("client 1: put(x, a) [0, 5]", DescribeOperation(Put(1, "x", "a", 0, 5)));
  EXPECT_EQ("client 1: get(x) = absent [0, 5]", DescribeOperation(Get(1, "x", std::nullopt, 0, 5)));
  EXPECT_EQ("client 1: get(x) = \"\" [0, 5]", DescribeOperation(Get(1, "x", "", 0, 5)));
  EXPECT_EQ("client 1: get(x) = \"absent\" [0, 5]", DescribeOperation(Get(1, "x", "absent", 0, 5)));
  EXPECT_EQ("client 1: get(x) = ? [0, ?]",
            DescribeOperation(Get(1, "x", std::nullopt, 0, kNoReturn)));
  EXPECT_EQ("client 2: delete(\"a b\") [7, 9]", DescribeOperation(Delete(2, "a b", 7, 9)));
}

TEST(LinearizabilityChecker, ViolationOnOneKeyAmongManyIsFoundAndNamed) {
  std::vector<KvOperation> history;
  int64_t time = 0;
  for (int round = 0; round < 5; ++round) {
    for (int key = 0; key < 20; ++key) {
      const std::string name = fmt::format("clean{}", key);
      const std::string value = fmt::format("v{}", round);
      history.push_back(Put(1, name, value, time, time + 10));
      history.push_back(Get(2, name, value, time + 5, time + 20));
      time += 3;
    }
  }
  history.push_back(Put(1, "victim", "a", time, time + 10));
  history.push_back(Put(1, "victim", "b", time + 20, time + 30));
  history.push_back(Get(2, "victim", "a", time + 40, time + 50));  // Stale.
  history.push_back(Put(1, "clean3", "after", time + 60, time + 70));

  const CheckResult result = CheckKvHistory(history);
  ASSERT_EQ(Verdict::kNotLinearizable, result.verdict);
  EXPECT_NE(std::string::npos, result.explanation.find("key victim")) << result.explanation;
  EXPECT_NE(std::string::npos,
            result.explanation.find(fmt::format("get(victim) = a [{}, {}]", time + 40, time + 50)))
      << result.explanation;
  EXPECT_EQ(std::string::npos, result.explanation.find("clean")) << result.explanation;
  EXPECT_NE(std::string::npos, result.explanation.find("value of key victim after that prefix: b"))
      << result.explanation;
}

// ---------------------------------------------------------------------------------------------
// Randomized histories from a real sequential map.

// splitmix64: a small, portable, seeded generator, so histories are the same on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t value = (state_ += 0x9e3779b97f4a7c15ULL);
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
    return value ^ (value >> 31);
  }
  // Uniform enough in [0, bound) for test purposes; bound > 0.
  uint64_t Below(uint64_t bound) { return Next() % bound; }

 private:
  uint64_t state_;
};

struct HistoryShape {
  uint64_t seed = 1;
  size_t clients = 5;
  size_t operations = 1000;
  size_t keys = 3;
  uint64_t unknown_outcome_percent = 3;
  int64_t spread = 30;  // The most an invocation precedes, or a response follows, its point.
};

// Runs operations one by one on a real map at increasing linearization points, and records each
// with a call time before and a return time after its point, each client one operation at a
// time. Every value written is unique ("v<index>"). An unknown-outcome operation took effect or
// not (chosen at random); its client is then replaced by a fresh one, as after a crash.
std::vector<KvOperation> GenerateHistory(const HistoryShape& shape) {
  SplitMix64 random(shape.seed);
  std::map<std::string, std::string> store;
  std::vector<int64_t> client_free_after(shape.clients, -1);
  std::vector<uint64_t> client_id(shape.clients);
  for (size_t slot = 0; slot < shape.clients; ++slot) client_id[slot] = slot + 1;
  uint64_t next_client_id = shape.clients + 1;
  std::vector<KvOperation> history;
  int64_t point = 0;
  for (size_t index = 0; index < shape.operations; ++index) {
    point += 1 + static_cast<int64_t>(random.Below(10));
    const int64_t earliest_free =
        *std::min_element(client_free_after.begin(), client_free_after.end());
    point = std::max(point, earliest_free + 1);
    std::vector<size_t> free_slots;
    for (size_t slot = 0; slot < shape.clients; ++slot) {
      if (client_free_after[slot] < point) free_slots.push_back(slot);
    }
    const size_t slot = free_slots[random.Below(free_slots.size())];

    KvOperation operation;
    operation.client_id = client_id[slot];
    operation.key = fmt::format("k{}", random.Below(shape.keys));
    const std::string fresh_value = fmt::format("v{}", index);
    const auto found = store.find(operation.key);
    const std::optional<std::string> current =
        found == store.end() ? std::nullopt : std::optional<std::string>(found->second);
    const uint64_t dice = random.Below(100);
    if (dice < 35) {
      operation.kind = KvOperationKind::kPut;
      operation.value = fresh_value;
    } else if (dice < 70) {
      operation.kind = KvOperationKind::kGet;
    } else if (dice < 80) {
      operation.kind = KvOperationKind::kDelete;
    } else {
      operation.kind = KvOperationKind::kCompareAndSet;
      operation.value = fresh_value;
      const uint64_t pick = random.Below(4);
      if (pick < 2) {
        operation.expected = current;
      } else if (pick == 2) {
        operation.expected = std::nullopt;
      } else {
        operation.expected = fmt::format("v{}", random.Below(index + 1));
      }
    }

    const bool unknown = random.Below(100) < shape.unknown_outcome_percent;
    const bool takes_effect = !unknown || random.Below(2) == 0;
    if (takes_effect) {
      switch (operation.kind) {
        case KvOperationKind::kPut:
          store[operation.key] = *operation.value;
          break;
        case KvOperationKind::kGet:
          operation.read_value = current;
          break;
        case KvOperationKind::kDelete:
          store.erase(operation.key);
          break;
        case KvOperationKind::kCompareAndSet:
          operation.succeeded = current == operation.expected;
          if (operation.succeeded) store[operation.key] = *operation.value;
          break;
      }
    }
    if (unknown) {
      operation.read_value.reset();
      operation.succeeded = true;
    }

    operation.call_time = std::max(
        client_free_after[slot] + 1,
        point - static_cast<int64_t>(random.Below(static_cast<uint64_t>(shape.spread) + 1)));
    if (unknown) {
      client_id[slot] = next_client_id++;
      client_free_after[slot] = point;
    } else {
      operation.return_time =
          point + static_cast<int64_t>(random.Below(static_cast<uint64_t>(shape.spread) + 1));
      client_free_after[slot] = *operation.return_time;
    }
    history.push_back(std::move(operation));
  }
  return history;
}

bool WritesKey(const KvOperation& operation) {
  return operation.kind == KvOperationKind::kPut || operation.kind == KvOperationKind::kDelete ||
         (operation.kind == KvOperationKind::kCompareAndSet && operation.succeeded);
}

// Makes one known get read a value that was provably not current during its interval: a value
// put by P, where a known write W to the same key started after P returned and returned before
// the get was called (values are unique, so nothing else wrote it). Returns the get's index.
std::optional<size_t> MakeOneReadStale(std::vector<KvOperation>& history) {
  for (size_t get = 0; get < history.size(); ++get) {
    const KvOperation& read = history[get];
    if (read.kind != KvOperationKind::kGet || !read.return_time.has_value()) continue;
    for (size_t write = 0; write < history.size(); ++write) {
      const KvOperation& w = history[write];
      if (w.key != read.key || !w.return_time.has_value() || !WritesKey(w) ||
          *w.return_time >= read.call_time) {
        continue;
      }
      for (size_t put = 0; put < history.size(); ++put) {
        const KvOperation& p = history[put];
        if (p.key == read.key && p.kind == KvOperationKind::kPut && p.return_time.has_value() &&
            *p.return_time < w.call_time && p.value != w.value) {
          history[get].read_value = p.value;
          return get;
        }
      }
    }
  }
  return std::nullopt;
}

constexpr uint64_t kRandomSeeds[] = {1, 2, 3, 5, 8, 13, 21, 34};

// The shapes the randomized tests run, each with every seed: 5 clients x ~200 operations over 3
// keys, and a contended one where every operation hits the same key with long overlaps. Each
// unknown outcome can double the search that proves a later violation (it may take effect at
// any later point), so the contended shape keeps them rare, as crashes are.
std::vector<HistoryShape> RandomShapes(uint64_t seed) {
  HistoryShape contended{.seed = seed, .clients = 6, .operations = 600, .keys = 1};
  contended.unknown_outcome_percent = 1;
  contended.spread = 60;
  return {HistoryShape{.seed = seed}, contended};
}

TEST(LinearizabilityChecker, RandomHistoriesFromASequentialMapAreLinearizable) {
  for (uint64_t seed : kRandomSeeds) {
    for (const HistoryShape& shape : RandomShapes(seed)) {
      const CheckResult result = CheckKvHistory(GenerateHistory(shape));
      EXPECT_EQ(Verdict::kLinearizable, result.verdict)
          << "seed " << seed << " keys " << shape.keys << ": " << result.explanation;
    }
  }
}

TEST(LinearizabilityChecker, RandomHistoryWithReadOfNeverWrittenValueIsNotLinearizable) {
  for (uint64_t seed : kRandomSeeds) {
    for (const HistoryShape& shape : RandomShapes(seed)) {
      std::vector<KvOperation> history = GenerateHistory(shape);
      SplitMix64 random(seed * 7919);
      std::vector<size_t> known_gets;
      for (size_t index = 0; index < history.size(); ++index) {
        if (history[index].kind == KvOperationKind::kGet && history[index].return_time) {
          known_gets.push_back(index);
        }
      }
      ASSERT_FALSE(known_gets.empty());
      const size_t victim = known_gets[random.Below(known_gets.size())];
      history[victim].read_value = "never-written";
      const CheckResult result = CheckKvHistory(history);
      EXPECT_EQ(Verdict::kNotLinearizable, result.verdict) << "seed " << seed;
      EXPECT_NE(std::string::npos, result.explanation.find(DescribeOperation(history[victim])))
          << "seed " << seed << ": " << result.explanation;
    }
  }
}

TEST(LinearizabilityChecker, RandomHistoryWithStaleReadIsNotLinearizable) {
  for (uint64_t seed : kRandomSeeds) {
    for (const HistoryShape& shape : RandomShapes(seed)) {
      std::vector<KvOperation> history = GenerateHistory(shape);
      const std::optional<size_t> victim = MakeOneReadStale(history);
      ASSERT_TRUE(victim.has_value()) << "seed " << seed;
      const CheckResult result = CheckKvHistory(history);
      EXPECT_EQ(Verdict::kNotLinearizable, result.verdict)
          << "seed " << seed << ": " << DescribeOperation(history[*victim]);
    }
  }
}

// An independent exhaustive checker for tiny single-key histories: tries every order that keeps
// real time (an operation may go next unless a pending known operation returned before its
// call), with unknown-outcome operations free to be left out. Exponential; for a handful of ops.
bool BruteForceLinearizable(const std::vector<KvOperation>& history, std::vector<bool>& placed,
                            const std::optional<std::string>& value) {
  bool known_pending = false;
  for (size_t i = 0; i < history.size(); ++i) {
    known_pending = known_pending || (!placed[i] && history[i].return_time.has_value());
  }
  if (!known_pending) return true;
  for (size_t next = 0; next < history.size(); ++next) {
    if (placed[next]) continue;
    bool must_wait = false;
    for (size_t other = 0; other < history.size(); ++other) {
      must_wait = must_wait || (other != next && !placed[other] && history[other].return_time &&
                                *history[other].return_time < history[next].call_time);
    }
    if (must_wait) continue;
    const KvOperation& operation = history[next];
    const bool known = operation.return_time.has_value();
    std::optional<std::string> after = value;
    bool allowed = true;
    switch (operation.kind) {
      case KvOperationKind::kPut:
        after = operation.value;
        break;
      case KvOperationKind::kGet:
        allowed = !known || operation.read_value == value;
        break;
      case KvOperationKind::kDelete:
        after = std::nullopt;
        break;
      case KvOperationKind::kCompareAndSet: {
        const bool swaps = value == operation.expected;
        allowed = !known || operation.succeeded == swaps;
        if (swaps) after = operation.value;
        break;
      }
    }
    if (!allowed) continue;
    placed[next] = true;
    const bool found = BruteForceLinearizable(history, placed, after);
    placed[next] = false;
    if (found) return true;
  }
  return false;
}

// Random small single-key histories with random (often impossible) outputs.
std::vector<KvOperation> RandomSmallHistory(SplitMix64& random, size_t operations) {
  const std::optional<std::string> values[] = {std::nullopt, "a", "b"};
  std::vector<KvOperation> history;
  for (size_t i = 0; i < operations; ++i) {
    const int64_t call = static_cast<int64_t>(random.Below(20));
    const std::optional<int64_t> ret =
        random.Below(100) < 15
            ? kNoReturn
            : std::optional<int64_t>(call + static_cast<int64_t>(random.Below(8)));
    const std::string written = random.Below(2) == 0 ? "a" : "b";
    switch (random.Below(4)) {
      case 0:
        history.push_back(Put(i, "x", written, call, ret));
        break;
      case 1:
        history.push_back(Get(i, "x", values[random.Below(3)], call, ret));
        break;
      case 2:
        history.push_back(Delete(i, "x", call, ret));
        break;
      default:
        history.push_back(
            Cas(i, "x", values[random.Below(3)], written, random.Below(2) == 0, call, ret));
        break;
    }
  }
  return history;
}

TEST(LinearizabilityChecker, AgreesWithBruteForceOnSmallRandomHistories) {
  constexpr int kHistories = 3000;
  SplitMix64 random(2024);
  int linearizable = 0;
  int not_linearizable = 0;
  for (int round = 0; round < kHistories; ++round) {
    const std::vector<KvOperation> history = RandomSmallHistory(random, 1 + random.Below(7));
    std::vector<bool> placed(history.size(), false);
    const bool expected = BruteForceLinearizable(history, placed, std::nullopt);
    const CheckResult result = CheckKvHistory(history);
    ASSERT_EQ(expected ? Verdict::kLinearizable : Verdict::kNotLinearizable, result.verdict)
        << "round " << round << "\n"
        << [&] {
             std::string text;
             for (const KvOperation& operation : history)
               text += DescribeOperation(operation) + "\n";
             return text;
           }();
    (expected ? linearizable : not_linearizable) += 1;
  }
  // Both verdicts occur often, so the comparison means something.
  EXPECT_GT(linearizable, kHistories / 10);
  EXPECT_GT(not_linearizable, kHistories / 10);
}

// ---------------------------------------------------------------------------------------------
// Budget and performance.

// `puts` concurrent puts of distinct values and one concurrent get of a value none of them
// wrote: no order works, and proving it means trying every subset of the puts.
std::vector<KvOperation> PathologicalHistory(int puts) {
  std::vector<KvOperation> history;
  for (int i = 0; i < puts; ++i) {
    history.push_back(Put(static_cast<uint64_t>(i), "x", fmt::format("{}", i), 0, 100));
  }
  history.push_back(Get(1000, "x", "none", 0, 100));
  return history;
}

TEST(LinearizabilityChecker, TinyBudgetReturnsUnknownNotAWrongVerdict) {
  const std::vector<KvOperation> small = PathologicalHistory(10);
  const CheckResult full = CheckKvHistory(small);
  ASSERT_EQ(Verdict::kNotLinearizable, full.verdict);
  ASSERT_GT(full.steps, 2u);

  const CheckResult one_short = CheckKvHistory(small, CheckOptions{.steps_max = full.steps - 1});
  EXPECT_EQ(Verdict::kUnknown, one_short.verdict);
  EXPECT_EQ(full.steps - 1, one_short.steps);

  const CheckResult huge = CheckKvHistory(PathologicalHistory(24), CheckOptions{.steps_max = 1000});
  EXPECT_EQ(Verdict::kUnknown, huge.verdict);
  EXPECT_EQ(1000u, huge.steps);
  EXPECT_NE(std::string::npos, huge.explanation.find("key x")) << huge.explanation;

  // A linearizable history is not called linearizable before it is proven so.
  const std::vector<KvOperation> clean = GenerateHistory(HistoryShape{.seed = 4});
  EXPECT_EQ(Verdict::kUnknown, CheckKvHistory(clean, CheckOptions{.steps_max = 10}).verdict);
}

TEST(LinearizabilityChecker, TinyCacheKeepsTheVerdictExact) {
  const std::vector<KvOperation> small = PathologicalHistory(8);
  const CheckResult cached = CheckKvHistory(small);
  const CheckResult uncached = CheckKvHistory(small, CheckOptions{.cache_entries_max = 0});
  EXPECT_EQ(Verdict::kNotLinearizable, cached.verdict);
  EXPECT_EQ(Verdict::kNotLinearizable, uncached.verdict);
  EXPECT_GT(uncached.steps, cached.steps);  // The memo is what makes the search fast.
  EXPECT_EQ(Verdict::kLinearizable,
            CheckKvHistory(GenerateHistory(HistoryShape{.seed = 9, .operations = 200}),
                           CheckOptions{.cache_entries_max = 16})
                .verdict);
}

TEST(LinearizabilityChecker, TwoThousandOperationsOnTenKeysCheckInBoundedSteps) {
  // About ten steps per operation: the histories are linearizable, so little backtracking.
  constexpr uint64_t kStepsBound = 20'000;
  for (uint64_t seed : {11u, 12u, 13u}) {
    const std::vector<KvOperation> history =
        GenerateHistory(HistoryShape{.seed = seed, .clients = 8, .operations = 2000, .keys = 10});
    const CheckResult result = CheckKvHistory(history);
    EXPECT_EQ(Verdict::kLinearizable, result.verdict) << result.explanation;
    EXPECT_LT(result.steps, kStepsBound) << "seed " << seed;
    std::printf("2000 operations, seed %llu: %llu steps\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(result.steps));
  }
}

// ---------------------------------------------------------------------------------------------
// The generic checker with another model.

// A counter: increments (output ignored) and reads of the current count; no partitioning.
struct CounterModel {
  using State = int64_t;
  struct Input {
    bool is_read = false;
  };
  struct Output {
    int64_t read = 0;
  };
  static State Init() { return 0; }
  static std::optional<State> Step(const State& state, const Input& input, const Output& output) {
    if (!input.is_read) return state + 1;
    if (output.read != state) return std::nullopt;
    return state;
  }
  static std::optional<State> StepUnknownOutcome(const State& state, const Input& input) {
    return input.is_read ? state : state + 1;
  }
  static uint64_t HashState(const State& state) { return static_cast<uint64_t>(state); }
  static std::vector<std::vector<size_t>> Partition(
      std::span<const Operation<Input, Output>> history) {
    std::vector<size_t> all(history.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return {all};
  }
};
static_assert(SequentialModel<CounterModel>);

TEST(LinearizabilityChecker, GenericCheckerWorksWithAnotherModel) {
  using Op = OperationOf<CounterModel>;
  auto increment = [](int64_t call, std::optional<int64_t> ret) {
    return Op{{false}, {}, call, ret};
  };
  auto read = [](int64_t value, int64_t call, int64_t ret) {
    return Op{{true}, {value}, call, ret};
  };
  const std::vector<Op> good = {increment(0, 10), increment(0, 10), read(1, 5, 6), read(2, 11, 12)};
  EXPECT_EQ(Verdict::kLinearizable, CheckHistory<CounterModel>(good).verdict);
  const std::vector<Op> bad = {increment(0, 10), increment(0, 10), read(3, 11, 12)};
  const HistoryCheck check = CheckHistory<CounterModel>(bad);
  EXPECT_EQ(Verdict::kNotLinearizable, check.verdict);
  EXPECT_EQ(2u, check.longest_prefix.size());
  EXPECT_EQ(std::vector<size_t>{2}, check.unplaced);
  const std::vector<Op> with_unknown = {increment(0, std::nullopt), read(0, 5, 6), read(1, 7, 8)};
  EXPECT_EQ(Verdict::kLinearizable, CheckHistory<CounterModel>(with_unknown).verdict);
}

}  // namespace
}  // namespace cairn::linearizability
