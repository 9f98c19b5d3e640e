#include "mvcc/mvcc_store.h"

#include <gtest/gtest.h>

#include <random>

#include <string>
#include <thread>
#include <vector>

#include "base/crc32c.h"

namespace cairn::mvcc {
namespace {

HybridTimestamp Ts(uint64_t ms) { return HybridTimestamp::FromParts(ms, 0); }

RequestOp PutOp(std::string key, std::string value) {
  return RequestOp{PutRequest{.key = std::move(key), .value = std::move(value)}};
}
RequestOp DeleteOp(std::string key, std::string range_end = "") {
  return RequestOp{DeleteRangeRequest{.key = std::move(key), .range_end = std::move(range_end)}};
}
RequestOp RangeOp(std::string key, std::string range_end = "") {
  return RequestOp{RangeRequest{.key = std::move(key), .range_end = std::move(range_end)}};
}

class MvccStoreTest : public ::testing::Test {
 protected:
  HybridTimestamp NextTs() { return Ts(++clock_ms_); }

  Revision Put(std::string key, std::string value, int64_t lease = 0) {
    auto response = store_.Put(PutRequest{.key = key, .value = value, .lease = lease}, NextTs());
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? response->header.revision : Revision{0};
  }
  int64_t Delete(std::string key, std::string range_end = "") {
    auto response =
        store_.DeleteRange(DeleteRangeRequest{.key = key, .range_end = range_end}, NextTs());
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? response->deleted : -1;
  }
  RangeResponse Get(RangeRequest request) {
    auto response = store_.Range(request);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : RangeResponse{};
  }
  std::optional<KeyValue> GetKey(std::string key, Revision revision = Revision{0}) {
    RangeResponse response = Get(RangeRequest{.key = key, .revision = revision});
    if (response.kvs.empty()) return std::nullopt;
    return response.kvs[0];
  }
  static std::vector<std::string> Keys(const RangeResponse& response) {
    std::vector<std::string> keys;
    for (const KeyValue& kv : response.kvs) keys.push_back(kv.key);
    return keys;
  }
  TxnResponse RunTxn(const TxnRequest& request) {
    auto response = store_.Txn(request, NextTs());
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : TxnResponse{};
  }
  bool CompareHolds(Compare compare) {
    Revision before = store_.current_revision();
    TxnResponse response = RunTxn(TxnRequest{.compare = {std::move(compare)}});
    EXPECT_EQ(store_.current_revision(), before) << "a read-only txn keeps the revision";
    return response.succeeded;
  }

  MvccStore store_;
  uint64_t clock_ms_ = 1000;
};

// --- Revisions and versions -----------------------------------------------------------------------

TEST_F(MvccStoreTest, EmptyStoreStartsAtRevisionOne) {
  EXPECT_EQ(store_.current_revision(), Revision{1});
  EXPECT_EQ(store_.compacted_revision(), Revision{0});
  RangeResponse response = Get(RangeRequest{.key = "a"});
  EXPECT_EQ(response.header.revision, Revision{1});
  EXPECT_TRUE(response.kvs.empty());
  EXPECT_EQ(store_.bytes_used(), 0u);
}

TEST_F(MvccStoreTest, PutIncrementsRevisionAndVersion) {
  EXPECT_EQ(Put("a", "1"), Revision{2});
  EXPECT_EQ(Put("a", "2"), Revision{3});
  EXPECT_EQ(Put("b", "x"), Revision{4});
  KeyValue a = *GetKey("a");
  EXPECT_EQ(a.value, "2");
  EXPECT_EQ(a.version, 2);
  EXPECT_EQ(a.create_revision, Revision{2});
  EXPECT_EQ(a.mod_revision, Revision{3});
  EXPECT_EQ(GetKey("b")->version, 1);
}

TEST_F(MvccStoreTest, DeleteResetsVersionAndRecreateStartsNewGeneration) {
  Put("a", "1");
  Put("a", "2");
  EXPECT_EQ(Delete("a"), 1);
  EXPECT_EQ(store_.current_revision(), Revision{4});
  EXPECT_FALSE(GetKey("a").has_value());
  EXPECT_EQ(Put("a", "3"), Revision{5});
  KeyValue a = *GetKey("a");
  EXPECT_EQ(a.version, 1);
  EXPECT_EQ(a.create_revision, Revision{5});
  EXPECT_EQ(a.mod_revision, Revision{5});
}

TEST_F(MvccStoreTest, DeleteOfNothingKeepsRevision) {
  Put("a", "1");
  EXPECT_EQ(Delete("b"), 0);
  EXPECT_EQ(Delete("x", "z"), 0);
  EXPECT_EQ(store_.current_revision(), Revision{2});
}

TEST_F(MvccStoreTest, ReadAtPastRevision) {
  Put("a", "1");  // 2
  Put("a", "2");  // 3
  Delete("a");    // 4
  Put("a", "3");  // 5
  EXPECT_EQ(GetKey("a", Revision{2})->value, "1");
  EXPECT_EQ(GetKey("a", Revision{3})->value, "2");
  EXPECT_FALSE(GetKey("a", Revision{4}).has_value());
  EXPECT_FALSE(GetKey("a", Revision{1}).has_value());
  EXPECT_EQ(GetKey("a", Revision{5})->value, "3");
  EXPECT_EQ(Get(RangeRequest{.key = "a", .revision = Revision{2}}).header.revision, Revision{5});
}

TEST_F(MvccStoreTest, ReadCompactedRevisionFails) {
  Put("a", "1");
  Put("a", "2");
  Put("a", "3");
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{3}}).ok());
  auto response = store_.Range(RangeRequest{.key = "a", .revision = Revision{2}});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(response.status().message(), "mvcc: required revision has been compacted");
  EXPECT_EQ(GetKey("a", Revision{3})->value, "2");
}

TEST_F(MvccStoreTest, ReadFutureRevisionFails) {
  Put("a", "1");
  auto response = store_.Range(RangeRequest{.key = "a", .revision = Revision{3}});
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(response.status().message(), "mvcc: required revision is a future revision");
}

// --- Range shapes -------------------------------------------------------------------------------

class RangeShapeTest : public MvccStoreTest {
 protected:
  void SetUp() override {
    for (const char* key : {"a", "foo", "foo/1", "foo/2", "fop", "z"}) Put(key, key);
  }
};

TEST_F(RangeShapeTest, PrefixRange) {
  // The prefix "foo": range_end is the prefix with its last byte plus one.
  RangeResponse response = Get(RangeRequest{.key = "foo", .range_end = "fop"});
  EXPECT_EQ(Keys(response), (std::vector<std::string>{"foo", "foo/1", "foo/2"}));
  EXPECT_EQ(response.count, 3);
}

TEST_F(RangeShapeTest, FromKeyRange) {
  RangeResponse response = Get(RangeRequest{.key = "fop", .range_end = std::string(1, '\0')});
  EXPECT_EQ(Keys(response), (std::vector<std::string>{"fop", "z"}));
}

TEST_F(RangeShapeTest, AllKeys) {
  RangeResponse response =
      Get(RangeRequest{.key = std::string(1, '\0'), .range_end = std::string(1, '\0')});
  EXPECT_EQ(response.count, 6);
  EXPECT_EQ(Keys(response).front(), "a");
  EXPECT_EQ(Keys(response).back(), "z");
}

TEST_F(RangeShapeTest, RangeEndBelowKeyIsEmpty) {
  EXPECT_TRUE(Get(RangeRequest{.key = "z", .range_end = "a"}).kvs.empty());
}

TEST_F(RangeShapeTest, LimitSetsMoreAndCount) {
  RangeResponse response = Get(RangeRequest{.key = "a", .range_end = "zz", .limit = 2});
  EXPECT_EQ(Keys(response), (std::vector<std::string>{"a", "foo"}));
  EXPECT_TRUE(response.more);
  EXPECT_EQ(response.count, 6);
  RangeResponse exact = Get(RangeRequest{.key = "a", .range_end = "zz", .limit = 6});
  EXPECT_FALSE(exact.more);
  EXPECT_EQ(exact.kvs.size(), 6u);
}

TEST_F(RangeShapeTest, NegativeLimitRejected) {
  auto response = store_.Range(RangeRequest{.key = "a", .limit = -1});
  EXPECT_EQ(response.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RangeShapeTest, KeysOnly) {
  RangeResponse response = Get(RangeRequest{.key = "a", .range_end = "b", .keys_only = true});
  ASSERT_EQ(response.kvs.size(), 1u);
  EXPECT_EQ(response.kvs[0].key, "a");
  EXPECT_EQ(response.kvs[0].value, "");
  EXPECT_EQ(response.kvs[0].version, 1);
}

TEST_F(RangeShapeTest, CountOnly) {
  RangeResponse response =
      Get(RangeRequest{.key = "foo", .range_end = "fop", .limit = 1, .count_only = true});
  EXPECT_TRUE(response.kvs.empty());
  EXPECT_EQ(response.count, 3);
  EXPECT_FALSE(response.more);
}

TEST_F(MvccStoreTest, EmptyKeyRejected) {
  auto range = store_.Range(RangeRequest{});
  EXPECT_EQ(range.status().message(), "etcdserver: key is not provided");
  auto put = store_.Put(PutRequest{.value = "v"}, NextTs());
  EXPECT_EQ(put.status().message(), "etcdserver: key is not provided");
  auto del = store_.DeleteRange(DeleteRangeRequest{}, NextTs());
  EXPECT_EQ(del.status().message(), "etcdserver: key is not provided");
  EXPECT_EQ(store_.current_revision(), Revision{1});
}

TEST_F(MvccStoreTest, RequestTooLargeRejected) {
  MvccStore small(MvccOptions{.request_bytes_max = 8});
  auto put = small.Put(PutRequest{.key = "key", .value = "123456"}, NextTs());
  EXPECT_EQ(put.status().message(), "etcdserver: request is too large");
  EXPECT_EQ(small.current_revision(), Revision{1});
}

// --- Sorting ------------------------------------------------------------------------------------

class SortTest : public MvccStoreTest {
 protected:
  // Keys a..d with distinct versions, create and mod revisions and values.
  void SetUp() override {
    Put("c", "1");  // 2
    Put("a", "3");  // 3
    Put("d", "2");  // 4
    Put("b", "0");  // 5
    Put("a", "4");  // 6: a version 2
    Put("a", "5");  // 7: a version 3
    Put("d", "9");  // 8: d version 2
  }
  std::vector<std::string> Sorted(SortOrder order, SortTarget target) {
    return Keys(Get(RangeRequest{.key = "a", .range_end = "e", .sort_order = order,
                                 .sort_target = target}));
  }
  using Order = std::vector<std::string>;
};

TEST_F(SortTest, KeyAscendAndNone) {
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kKey), (Order{"a", "b", "c", "d"}));
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kKey), (Order{"a", "b", "c", "d"}));
}
TEST_F(SortTest, KeyDescend) {
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kKey), (Order{"d", "c", "b", "a"}));
}
TEST_F(SortTest, VersionAscendKeepsKeyOrderOnTies) {
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kVersion), (Order{"b", "c", "d", "a"}));
}
TEST_F(SortTest, VersionDescend) {
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kVersion), (Order{"a", "d", "b", "c"}));
}
TEST_F(SortTest, CreateAscend) {
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kCreate), (Order{"c", "a", "d", "b"}));
}
TEST_F(SortTest, CreateDescend) {
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kCreate), (Order{"b", "d", "a", "c"}));
}
TEST_F(SortTest, ModAscend) {
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kMod), (Order{"c", "b", "a", "d"}));
}
TEST_F(SortTest, ModDescend) {
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kMod), (Order{"d", "a", "b", "c"}));
}
TEST_F(SortTest, ValueAscend) {
  EXPECT_EQ(Sorted(SortOrder::kAscend, SortTarget::kValue), (Order{"b", "c", "a", "d"}));
}
TEST_F(SortTest, ValueDescend) {
  EXPECT_EQ(Sorted(SortOrder::kDescend, SortTarget::kValue), (Order{"d", "a", "c", "b"}));
}
TEST_F(SortTest, TargetWithoutOrderSortsAscending) {
  EXPECT_EQ(Sorted(SortOrder::kNone, SortTarget::kMod), (Order{"c", "b", "a", "d"}));
}
TEST_F(SortTest, SortThenLimit) {
  RangeResponse response = Get(RangeRequest{.key = "a", .range_end = "e", .limit = 2,
                                            .sort_order = SortOrder::kDescend,
                                            .sort_target = SortTarget::kMod});
  EXPECT_EQ(Keys(response), (Order{"d", "a"}));
  EXPECT_TRUE(response.more);
  EXPECT_EQ(response.count, 4);
}

// --- Filters ------------------------------------------------------------------------------------

TEST_F(SortTest, MinModRevisionFilter) {
  EXPECT_EQ(Keys(Get(RangeRequest{.key = "a", .range_end = "e", .min_mod_revision = Revision{7}})),
            (Order{"a", "d"}));
}
TEST_F(SortTest, MaxModRevisionFilter) {
  EXPECT_EQ(Keys(Get(RangeRequest{.key = "a", .range_end = "e", .max_mod_revision = Revision{5}})),
            (Order{"b", "c"}));
}
TEST_F(SortTest, MinCreateRevisionFilter) {
  EXPECT_EQ(
      Keys(Get(RangeRequest{.key = "a", .range_end = "e", .min_create_revision = Revision{4}})),
      (Order{"b", "d"}));
}
TEST_F(SortTest, MaxCreateRevisionFilter) {
  RangeResponse response =
      Get(RangeRequest{.key = "a", .range_end = "e", .max_create_revision = Revision{3}});
  EXPECT_EQ(Keys(response), (Order{"a", "c"}));
  EXPECT_EQ(response.count, 4) << "count is taken before filters, as in etcd";
}
TEST_F(SortTest, FilterThenLimitSetsMore) {
  RangeResponse response = Get(RangeRequest{.key = "a", .range_end = "e", .limit = 1,
                                            .min_create_revision = Revision{4}});
  EXPECT_EQ(Keys(response), (Order{"b"}));
  EXPECT_TRUE(response.more);
}

// --- Put and delete options -----------------------------------------------------------------------

TEST_F(MvccStoreTest, PutReturnsPrevKv) {
  Put("a", "1", 7);
  auto response = store_.Put(PutRequest{.key = "a", .value = "2", .prev_kv = true}, NextTs());
  ASSERT_TRUE(response.ok());
  ASSERT_TRUE(response->prev_kv.has_value());
  EXPECT_EQ(response->prev_kv->value, "1");
  EXPECT_EQ(response->prev_kv->lease, 7);
  EXPECT_EQ(response->prev_kv->mod_revision, Revision{2});
  auto fresh = store_.Put(PutRequest{.key = "b", .value = "1", .prev_kv = true}, NextTs());
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->prev_kv.has_value());
}

TEST_F(MvccStoreTest, DeleteReturnsPrevKvs) {
  Put("a", "1");
  Put("b", "2");
  Put("c", "3");
  Delete("b");
  auto response = store_.DeleteRange(
      DeleteRangeRequest{.key = "a", .range_end = "d", .prev_kv = true}, NextTs());
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->deleted, 2);
  ASSERT_EQ(response->prev_kvs.size(), 2u);
  EXPECT_EQ(response->prev_kvs[0].key, "a");
  EXPECT_EQ(response->prev_kvs[1].value, "3");
  EXPECT_EQ(response->header.revision, Revision{6});
}

TEST_F(MvccStoreTest, IgnoreValueKeepsValue) {
  Put("a", "keep", 3);
  auto response = store_.Put(PutRequest{.key = "a", .lease = 9, .ignore_value = true}, NextTs());
  ASSERT_TRUE(response.ok());
  KeyValue a = *GetKey("a");
  EXPECT_EQ(a.value, "keep");
  EXPECT_EQ(a.lease, 9);
  EXPECT_EQ(a.version, 2);
}

TEST_F(MvccStoreTest, IgnoreLeaseKeepsLease) {
  Put("a", "1", 3);
  auto response = store_.Put(PutRequest{.key = "a", .value = "2", .ignore_lease = true}, NextTs());
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(GetKey("a")->lease, 3);
  EXPECT_EQ(GetKey("a")->value, "2");
}

TEST_F(MvccStoreTest, IgnoreValueOnMissingKeyFails) {
  Put("b", "1");
  Delete("b");
  for (const char* key : {"a", "b"}) {
    auto response = store_.Put(PutRequest{.key = key, .ignore_value = true}, NextTs());
    EXPECT_EQ(response.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(response.status().message(), "etcdserver: key not found");
  }
  EXPECT_EQ(store_.current_revision(), Revision{3});
}

TEST_F(MvccStoreTest, IgnoreLeaseOnMissingKeyFails) {
  auto response = store_.Put(PutRequest{.key = "a", .value = "1", .ignore_lease = true}, NextTs());
  EXPECT_EQ(response.status().message(), "etcdserver: key not found");
  EXPECT_EQ(store_.current_revision(), Revision{1});
}

TEST_F(MvccStoreTest, ValueWithIgnoreValueRejected) {
  Put("a", "1");
  auto response =
      store_.Put(PutRequest{.key = "a", .value = "2", .ignore_value = true}, NextTs());
  EXPECT_EQ(response.status().message(), "etcdserver: value is provided");
}

TEST_F(MvccStoreTest, LeaseWithIgnoreLeaseRejected) {
  Put("a", "1");
  auto response = store_.Put(PutRequest{.key = "a", .lease = 5, .ignore_lease = true}, NextTs());
  EXPECT_EQ(response.status().message(), "etcdserver: lease is provided");
}

// --- Txn compares ---------------------------------------------------------------------------------

TEST_F(MvccStoreTest, TxnCompareVersion) {
  Put("a", "1");
  Put("a", "2");  // version 2
  auto cmp = [](CompareResult result, int64_t version) {
    return Compare{.result = result, .target = CompareTarget::kVersion, .key = "a",
                   .version = version};
  };
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kEqual, 2)));
  EXPECT_FALSE(CompareHolds(cmp(CompareResult::kEqual, 1)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kNotEqual, 1)));
  EXPECT_FALSE(CompareHolds(cmp(CompareResult::kNotEqual, 2)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kGreater, 1)));
  EXPECT_FALSE(CompareHolds(cmp(CompareResult::kGreater, 2)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kLess, 3)));
  EXPECT_FALSE(CompareHolds(cmp(CompareResult::kLess, 2)));
}

TEST_F(MvccStoreTest, TxnCompareCreate) {
  Put("a", "1");  // create 2
  auto cmp = [](CompareResult result, int64_t revision) {
    return Compare{.result = result, .target = CompareTarget::kCreate, .key = "a",
                   .create_revision = Revision{revision}};
  };
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kEqual, 2)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kNotEqual, 3)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kGreater, 1)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kLess, 3)));
  EXPECT_FALSE(CompareHolds(cmp(CompareResult::kLess, 2)));
}

TEST_F(MvccStoreTest, TxnCompareMod) {
  Put("a", "1");
  Put("a", "2");  // mod 3
  auto cmp = [](CompareResult result, int64_t revision) {
    return Compare{.result = result, .target = CompareTarget::kMod, .key = "a",
                   .mod_revision = Revision{revision}};
  };
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kEqual, 3)));
  EXPECT_FALSE(CompareHolds(cmp(CompareResult::kNotEqual, 3)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kGreater, 2)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kLess, 4)));
}

TEST_F(MvccStoreTest, TxnCompareValue) {
  Put("a", "m");
  auto cmp = [](CompareResult result, std::string value) {
    return Compare{.result = result, .target = CompareTarget::kValue, .key = "a",
                   .value = std::move(value)};
  };
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kEqual, "m")));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kNotEqual, "n")));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kGreater, "l")));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kLess, "mm")));
  EXPECT_FALSE(CompareHolds(cmp(CompareResult::kGreater, "m")));
}

TEST_F(MvccStoreTest, TxnCompareLease) {
  Put("a", "1", 42);
  auto cmp = [](CompareResult result, int64_t lease) {
    return Compare{.result = result, .target = CompareTarget::kLease, .key = "a", .lease = lease};
  };
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kEqual, 42)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kNotEqual, 0)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kGreater, 41)));
  EXPECT_TRUE(CompareHolds(cmp(CompareResult::kLess, 43)));
}

TEST_F(MvccStoreTest, TxnCompareMissingKey) {
  // A missing key has version, create, mod and lease 0; a value compare on it is always false.
  for (CompareTarget target : {CompareTarget::kVersion, CompareTarget::kCreate,
                               CompareTarget::kMod, CompareTarget::kLease}) {
    EXPECT_TRUE(CompareHolds(Compare{.result = CompareResult::kEqual, .target = target,
                                     .key = "missing"}));
    EXPECT_FALSE(CompareHolds(Compare{.result = CompareResult::kGreater, .target = target,
                                      .key = "missing"}));
    EXPECT_TRUE(CompareHolds(Compare{.result = CompareResult::kLess, .target = target,
                                     .key = "missing", .version = 1,
                                     .create_revision = Revision{1}, .mod_revision = Revision{1},
                                     .lease = 1}));
  }
  for (CompareResult result : {CompareResult::kEqual, CompareResult::kNotEqual,
                               CompareResult::kGreater, CompareResult::kLess}) {
    EXPECT_FALSE(CompareHolds(Compare{.result = result, .target = CompareTarget::kValue,
                                      .key = "missing", .value = ""}));
  }
}

TEST_F(MvccStoreTest, TxnCompareDeletedKeyIsMissing) {
  Put("a", "1");
  Delete("a");
  EXPECT_TRUE(CompareHolds(Compare{.result = CompareResult::kEqual,
                                   .target = CompareTarget::kVersion, .key = "a", .version = 0}));
}

TEST_F(MvccStoreTest, TxnCompareOverRange) {
  Put("k1", "1");
  Put("k2", "1");
  Put("k2", "2");
  auto version_greater = [](int64_t version) {
    return Compare{.result = CompareResult::kGreater, .target = CompareTarget::kVersion,
                   .key = "k", .range_end = "l", .version = version};
  };
  EXPECT_TRUE(CompareHolds(version_greater(0)));
  EXPECT_FALSE(CompareHolds(version_greater(1))) << "every key in the range must satisfy it";
  EXPECT_TRUE(CompareHolds(Compare{.result = CompareResult::kEqual,
                                   .target = CompareTarget::kValue, .key = "k",
                                   .range_end = std::string(1, '\0'), .value = "2"}) == false);
}

TEST_F(MvccStoreTest, TxnCompareOverEmptyRange) {
  Put("a", "1");
  EXPECT_TRUE(CompareHolds(Compare{.result = CompareResult::kEqual,
                                   .target = CompareTarget::kVersion, .key = "x",
                                   .range_end = "z", .version = 0}));
  EXPECT_FALSE(CompareHolds(Compare{.result = CompareResult::kEqual,
                                    .target = CompareTarget::kValue, .key = "x",
                                    .range_end = "z", .value = ""}));
}

// --- Txn execution --------------------------------------------------------------------------------

TEST_F(MvccStoreTest, TxnChoosesBranch) {
  Put("a", "1");
  TxnRequest request{
      .compare = {Compare{.result = CompareResult::kEqual, .target = CompareTarget::kValue,
                          .key = "a", .value = "1"}},
      .success = {PutOp("a", "2")},
      .failure = {PutOp("b", "failed")}};
  TxnResponse first = RunTxn(request);
  EXPECT_TRUE(first.succeeded);
  EXPECT_EQ(first.header.revision, Revision{3});
  TxnResponse second = RunTxn(request);
  EXPECT_FALSE(second.succeeded);
  EXPECT_EQ(GetKey("b")->value, "failed");
  EXPECT_EQ(store_.current_revision(), Revision{4});
}

TEST_F(MvccStoreTest, ReadOnlyTxnKeepsRevision) {
  Put("a", "1");
  TxnResponse response = RunTxn(TxnRequest{.success = {RangeOp("a")}});
  EXPECT_TRUE(response.succeeded);
  EXPECT_EQ(response.header.revision, Revision{2});
  EXPECT_EQ(store_.current_revision(), Revision{2});
}

TEST_F(MvccStoreTest, KeysOnlyStillSortsByValue) {
  Put("a", "3");
  Put("b", "1");
  Put("c", "2");
  RangeResponse response = Get(RangeRequest{.key = "a", .range_end = "z", .limit = 2,
                                            .sort_order = SortOrder::kAscend,
                                            .sort_target = SortTarget::kValue, .keys_only = true});
  ASSERT_EQ(response.kvs.size(), 2u);
  EXPECT_EQ(response.kvs[0].key, "b");
  EXPECT_EQ(response.kvs[1].key, "c");
  EXPECT_TRUE(response.kvs[0].value.empty());
  EXPECT_TRUE(response.more);
}

TEST_F(MvccStoreTest, TxnRangeReportsTheRevisionItReadAt) {
  Put("a", "1");
  TxnResponse response =
      RunTxn(TxnRequest{.success = {RangeOp("a"), PutOp("b", "1"), RangeOp("a"), PutOp("c", "1")}});
  ASSERT_EQ(response.responses.size(), 4u);
  // As etcd: a range before the txn's first write reads (and reports) the old revision.
  EXPECT_EQ(std::get<RangeResponse>(response.responses[0].response).header.revision, Revision{2});
  EXPECT_EQ(std::get<PutResponse>(response.responses[1].response).header.revision, Revision{3});
  EXPECT_EQ(std::get<RangeResponse>(response.responses[2].response).header.revision, Revision{3});
  EXPECT_EQ(response.header.revision, Revision{3});
}

TEST_F(MvccStoreTest, TxnWritesShareOneRevision) {
  Put("c", "1");
  TxnResponse response = RunTxn(TxnRequest{.success = {PutOp("a", "1"), PutOp("b", "1"),
                                                       DeleteOp("c")}});
  EXPECT_EQ(response.header.revision, Revision{3});
  EXPECT_EQ(store_.current_revision(), Revision{3});
  EXPECT_EQ(GetKey("a")->mod_revision, Revision{3});
  EXPECT_EQ(GetKey("b")->mod_revision, Revision{3});
  EXPECT_FALSE(GetKey("c").has_value());
  EXPECT_TRUE(GetKey("c", Revision{2}).has_value());
}

TEST_F(MvccStoreTest, TxnReadsItsOwnWrites) {
  Put("b", "old");
  TxnResponse response = RunTxn(TxnRequest{
      .success = {RangeOp("a"), PutOp("a", "new"), RangeOp("a"), DeleteOp("b"), RangeOp("b")}});
  ASSERT_EQ(response.responses.size(), 5u);
  EXPECT_TRUE(std::get<RangeResponse>(response.responses[0].response).kvs.empty());
  const RangeResponse& after_put = std::get<RangeResponse>(response.responses[2].response);
  ASSERT_EQ(after_put.kvs.size(), 1u);
  EXPECT_EQ(after_put.kvs[0].value, "new");
  EXPECT_EQ(after_put.kvs[0].mod_revision, Revision{3});
  EXPECT_TRUE(std::get<RangeResponse>(response.responses[4].response).kvs.empty());
}

TEST_F(MvccStoreTest, TxnRangeAtFutureRevisionFailsAndChangesNothing) {
  TxnRequest request{.success = {PutOp("a", "1"),
                                 RequestOp{RangeRequest{.key = "a", .revision = Revision{2}}}}};
  auto response = store_.Txn(request, NextTs());
  EXPECT_EQ(response.status().message(), "mvcc: required revision is a future revision");
  EXPECT_EQ(store_.current_revision(), Revision{1});
  EXPECT_FALSE(GetKey("a").has_value());
  EXPECT_EQ(store_.bytes_used(), 0u);
}

TEST_F(MvccStoreTest, FailedTxnChangesNothing) {
  TxnRequest request{.success = {PutOp("a", "1"),
                                 RequestOp{PutRequest{.key = "b", .ignore_value = true}}}};
  auto response = store_.Txn(request, NextTs());
  EXPECT_EQ(response.status().message(), "etcdserver: key not found");
  EXPECT_EQ(store_.current_revision(), Revision{1});
  EXPECT_FALSE(GetKey("a").has_value());
  EXPECT_EQ(store_.versions_held(), 0u);
}

TEST_F(MvccStoreTest, NestedTxn) {
  Put("flag", "on");
  TxnRequest inner{
      .compare = {Compare{.result = CompareResult::kEqual, .target = CompareTarget::kValue,
                          .key = "flag", .value = "on"}},
      .success = {PutOp("inner", "yes")},
      .failure = {PutOp("inner", "no")}};
  TxnResponse response =
      RunTxn(TxnRequest{.success = {PutOp("outer", "1"), RequestOp{inner}}});
  ASSERT_EQ(response.responses.size(), 2u);
  const TxnResponse& nested = std::get<TxnResponse>(response.responses[1].response);
  EXPECT_TRUE(nested.succeeded);
  EXPECT_EQ(nested.header.revision, Revision{3});
  EXPECT_EQ(GetKey("inner")->value, "yes");
  EXPECT_EQ(GetKey("inner")->mod_revision, Revision{3});
  EXPECT_EQ(GetKey("outer")->mod_revision, Revision{3});
}

TEST_F(MvccStoreTest, NestedTxnComparesSeeStoreBeforeTxn) {
  // As in etcd, every compare of the request is evaluated against the store before the txn.
  TxnRequest inner{.compare = {Compare{.result = CompareResult::kEqual,
                                       .target = CompareTarget::kVersion, .key = "a",
                                       .version = 0}},
                   .success = {PutOp("saw", "before")},
                   .failure = {PutOp("saw", "after")}};
  RunTxn(TxnRequest{.success = {PutOp("a", "1"), RequestOp{inner}}});
  EXPECT_EQ(GetKey("saw")->value, "before");
}

TEST_F(MvccStoreTest, DuplicatePutInTxnRejected) {
  auto response = store_.Txn(TxnRequest{.success = {PutOp("a", "1"), PutOp("a", "2")}}, NextTs());
  EXPECT_EQ(response.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(response.status().message(), "etcdserver: duplicate key given in txn request");
  auto failure_branch =
      store_.Txn(TxnRequest{.failure = {PutOp("a", "1"), PutOp("a", "2")}}, NextTs());
  EXPECT_EQ(failure_branch.status().message(), "etcdserver: duplicate key given in txn request");
  EXPECT_EQ(store_.current_revision(), Revision{1});
}

TEST_F(MvccStoreTest, PutOverlappingDeleteInTxnRejected) {
  auto range_delete =
      store_.Txn(TxnRequest{.success = {DeleteOp("a", "c"), PutOp("b", "1")}}, NextTs());
  EXPECT_EQ(range_delete.status().message(), "etcdserver: duplicate key given in txn request");
  auto from_key = store_.Txn(
      TxnRequest{.success = {PutOp("zz", "1"), DeleteOp("b", std::string(1, '\0'))}}, NextTs());
  EXPECT_EQ(from_key.status().message(), "etcdserver: duplicate key given in txn request");
  auto single = store_.Txn(TxnRequest{.success = {PutOp("a", "1"), DeleteOp("a")}}, NextTs());
  EXPECT_EQ(single.status().message(), "etcdserver: duplicate key given in txn request");
}

TEST_F(MvccStoreTest, NestedDuplicateRejected) {
  TxnRequest inner{.success = {PutOp("a", "2")}};
  auto response = store_.Txn(TxnRequest{.success = {PutOp("a", "1"), RequestOp{inner}}}, NextTs());
  EXPECT_EQ(response.status().message(), "etcdserver: duplicate key given in txn request");
  TxnRequest inner_delete{.failure = {DeleteOp("a", "b")}};
  auto with_delete =
      store_.Txn(TxnRequest{.success = {PutOp("a", "1"), RequestOp{inner_delete}}}, NextTs());
  EXPECT_EQ(with_delete.status().message(), "etcdserver: duplicate key given in txn request");
}

TEST_F(MvccStoreTest, SameKeyInBothNestedBranchesAllowed) {
  TxnRequest inner{.success = {PutOp("a", "1")}, .failure = {PutOp("a", "2")}};
  TxnResponse response = RunTxn(TxnRequest{.success = {RequestOp{inner}}});
  EXPECT_EQ(GetKey("a")->value, "1");
  EXPECT_EQ(response.header.revision, Revision{2});
}

TEST_F(MvccStoreTest, OverlappingDeletesAllowed) {
  Put("a", "1");
  Put("b", "1");
  TxnResponse response = RunTxn(TxnRequest{.success = {DeleteOp("a", "c"), DeleteOp("b")}});
  EXPECT_EQ(std::get<DeleteRangeResponse>(response.responses[0].response).deleted, 2);
  EXPECT_EQ(std::get<DeleteRangeResponse>(response.responses[1].response).deleted, 0);
  EXPECT_EQ(store_.current_revision(), Revision{4});
}

TEST_F(MvccStoreTest, TooManyOpsRejected) {
  TxnRequest request;
  for (int i = 0; i < 129; ++i) request.success.push_back(PutOp("k" + std::to_string(i), "v"));
  auto response = store_.Txn(request, NextTs());
  EXPECT_EQ(response.status().message(), "etcdserver: too many operations in txn request");
  request.success.pop_back();
  EXPECT_TRUE(store_.Txn(request, NextTs()).ok());
  TxnRequest compares;
  for (int i = 0; i < 129; ++i) compares.compare.push_back(Compare{.key = "a"});
  EXPECT_EQ(store_.Txn(compares, NextTs()).status().message(),
            "etcdserver: too many operations in txn request");
}

TEST_F(MvccStoreTest, MaxTxnOpsIsConfigurable) {
  MvccStore small(MvccOptions{.max_txn_ops = 2});
  auto three = small.Txn(TxnRequest{.success = {PutOp("a", "1"), PutOp("b", "1"),
                                                PutOp("c", "1")}},
                         NextTs());
  EXPECT_EQ(three.status().message(), "etcdserver: too many operations in txn request");
  // Nested txns get what the parent level left: 2 - 1 = 1 op here, so two inner ops fail.
  TxnRequest inner{.success = {PutOp("x", "1"), PutOp("y", "1")}};
  auto nested = small.Txn(TxnRequest{.success = {RequestOp{inner}}}, NextTs());
  EXPECT_EQ(nested.status().message(), "etcdserver: too many operations in txn request");
  TxnRequest inner_one{.success = {PutOp("x", "1")}};
  EXPECT_TRUE(small.Txn(TxnRequest{.success = {RequestOp{inner_one}}}, NextTs()).ok());
}

// --- Compaction -----------------------------------------------------------------------------------

TEST_F(MvccStoreTest, CompactFutureRevisionFails) {
  Put("a", "1");
  auto response = store_.Compact(CompactionRequest{Revision{3}});
  EXPECT_EQ(response.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(response.status().message(), "mvcc: required revision is a future revision");
}

TEST_F(MvccStoreTest, CompactAtOrBelowCompactedFails) {
  Put("a", "1");
  Put("a", "2");
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{3}}).ok());
  for (int64_t revision : {3, 2}) {
    auto response = store_.Compact(CompactionRequest{Revision{revision}});
    EXPECT_EQ(response.status().code(), StatusCode::kOutOfRange);
    EXPECT_EQ(response.status().message(), "mvcc: required revision has been compacted");
  }
}

TEST_F(MvccStoreTest, CompactKeepsLatestVersionAtRevision) {
  Put("a", "1");  // 2
  Put("a", "2");  // 3
  Put("b", "1");  // 4
  Put("a", "3");  // 5
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{4}}).ok());
  EXPECT_EQ(store_.versions_held(), 3u) << "a@3, b@4, a@5";
  EXPECT_EQ(GetKey("a", Revision{4})->value, "2");
  EXPECT_EQ(GetKey("a", Revision{4})->version, 2);
  EXPECT_EQ(GetKey("a")->value, "3");
  EXPECT_EQ(GetKey("a")->create_revision, Revision{2});
  EXPECT_EQ(GetKey("b", Revision{4})->value, "1");
}

TEST_F(MvccStoreTest, AKeysHistoryGrowsShrinksToOneAtCompactionAndGrowsAgain) {
  // A key's versions are held inline while there is one, on the heap beyond (VersionList): the
  // history reads the same through every change of storage, and survives a snapshot.
  std::vector<Revision> revisions;
  for (int i = 1; i <= 9; ++i) revisions.push_back(Put("k", "v" + std::to_string(i), i));
  Put("other", "x");
  for (int i = 1; i <= 9; ++i) {
    const std::optional<KeyValue> kv = GetKey("k", revisions[i - 1]);
    ASSERT_TRUE(kv.has_value());
    EXPECT_EQ(kv->value, "v" + std::to_string(i));
    EXPECT_EQ(kv->version, i);
    EXPECT_EQ(kv->lease, i);
    EXPECT_EQ(kv->create_revision, revisions[0]);
  }
  ASSERT_TRUE(store_.Compact(CompactionRequest{revisions.back()}).ok());
  EXPECT_EQ(store_.versions_held(), 2u) << "k@v9 and other";
  EXPECT_EQ(GetKey("k")->value, "v9");
  EXPECT_EQ(GetKey("k")->version, 9);
  for (int i = 10; i <= 14; ++i) revisions.push_back(Put("k", "v" + std::to_string(i)));
  Delete("k");
  EXPECT_FALSE(GetKey("k").has_value());
  for (int i = 10; i <= 14; ++i) {
    EXPECT_EQ(GetKey("k", revisions[i - 1])->value, "v" + std::to_string(i));
    EXPECT_EQ(GetKey("k", revisions[i - 1])->version, i);
  }
  const std::string snapshot = store_.Serialize();
  auto restored = MvccStore::Restore(snapshot, MvccOptions{});
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->Serialize(), snapshot);
  MvccStore moved = std::move(*restored);  // The store (and its histories) move whole.
  EXPECT_EQ(moved.Serialize(), snapshot);
  auto at = moved.Range(RangeRequest{.key = "k", .revision = revisions[11]});
  ASSERT_TRUE(at.ok());
  ASSERT_EQ(at->kvs.size(), 1u);
  EXPECT_EQ(at->kvs[0].value, "v12");
  // Compacted down to the tombstone: the key leaves the index.
  ASSERT_TRUE(store_.Compact(CompactionRequest{store_.current_revision()}).ok());
  EXPECT_EQ(store_.versions_held(), 1u) << "other";
}

TEST_F(MvccStoreTest, CompactDropsTombstonedGenerations) {
  Put("a", "1");  // 2
  Delete("a");    // 3
  Put("b", "1");  // 4
  Put("a", "2");  // 5
  Delete("a");    // 6
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{4}}).ok());
  EXPECT_EQ(store_.versions_held(), 3u) << "b@4, a@5, a@6 (tombstone)";
  EXPECT_FALSE(GetKey("a", Revision{4}).has_value());
  EXPECT_EQ(GetKey("a", Revision{5})->version, 1);
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{6}}).ok());
  EXPECT_EQ(store_.versions_held(), 1u);
  EXPECT_EQ(store_.bytes_used(), 2u) << "only b=1 is left";
}

TEST_F(MvccStoreTest, CompactionKeepsRevision) {
  Put("a", "1");
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{2}}).ok());
  EXPECT_EQ(store_.current_revision(), Revision{2});
  EXPECT_EQ(Put("a", "2"), Revision{3});
}

TEST_F(MvccStoreTest, TimestampOfRevision) {
  MvccStore store(MvccOptions{.initial_timestamp = Ts(5)});
  ASSERT_TRUE(store.Put(PutRequest{.key = "a", .value = "1"}, Ts(10)).ok());
  ASSERT_TRUE(store.DeleteRange(DeleteRangeRequest{.key = "zzz"}, Ts(15)).ok());  // No revision.
  ASSERT_TRUE(store.Put(PutRequest{.key = "a", .value = "2"}, Ts(20)).ok());
  EXPECT_EQ(*store.TimestampOf(Revision{1}), Ts(5));
  EXPECT_EQ(*store.TimestampOf(Revision{2}), Ts(10));
  EXPECT_EQ(*store.TimestampOf(Revision{3}), Ts(20));
  EXPECT_EQ(store.TimestampOf(Revision{4}).status().message(),
            "mvcc: required revision is a future revision");
  ASSERT_TRUE(store.Compact(CompactionRequest{Revision{3}}).ok());
  EXPECT_EQ(store.TimestampOf(Revision{2}).status().message(),
            "mvcc: required revision has been compacted");
  EXPECT_EQ(*store.TimestampOf(Revision{3}), Ts(20));
}

// --- Memory accounting and quota ------------------------------------------------------------------

TEST_F(MvccStoreTest, BytesUsedCountsAllVersions) {
  Put("ab", "123");   // 5
  Put("ab", "1234");  // 6
  Delete("ab");       // 2 (tombstone keeps its key)
  EXPECT_EQ(store_.bytes_used(), 13u);
}

TEST_F(MvccStoreTest, QuotaExceededLeavesStoreUnchanged) {
  MvccStore store(MvccOptions{.quota_bytes = 10});
  ASSERT_TRUE(store.Put(PutRequest{.key = "a", .value = "1234"}, Ts(1)).ok());  // 5 bytes
  std::string before = store.Serialize();
  auto put = store.Put(PutRequest{.key = "b", .value = "123456"}, Ts(2));  // would be 12
  EXPECT_EQ(put.status().code(), StatusCode::kNoSpace);
  EXPECT_EQ(put.status().message(), "etcdserver: mvcc: database space exceeded");
  auto txn = store.Txn(TxnRequest{.success = {PutOp("c", "1"), PutOp("d", "12345")}}, Ts(3));
  EXPECT_EQ(txn.status().code(), StatusCode::kNoSpace);
  EXPECT_EQ(store.Serialize(), before);
  EXPECT_EQ(store.current_revision(), Revision{2});
  EXPECT_EQ(store.bytes_used(), 5u);
  EXPECT_TRUE(store.Put(PutRequest{.key = "b", .value = "1234"}, Ts(4)).ok());  // exactly 10
}

TEST_F(MvccStoreTest, QuotaAllowsDeletesAndCompactionFreesSpace) {
  MvccStore store(MvccOptions{.quota_bytes = 10});
  ASSERT_TRUE(store.Put(PutRequest{.key = "a", .value = "12345678"}, Ts(1)).ok());  // 9
  ASSERT_TRUE(store.DeleteRange(DeleteRangeRequest{.key = "a"}, Ts(2)).ok());        // 10
  EXPECT_EQ(store.Put(PutRequest{.key = "b", .value = "1"}, Ts(3)).status().code(),
            StatusCode::kNoSpace);
  ASSERT_TRUE(store.Compact(CompactionRequest{store.current_revision()}).ok());
  EXPECT_EQ(store.bytes_used(), 0u);
  EXPECT_TRUE(store.Put(PutRequest{.key = "b", .value = "1"}, Ts(4)).ok());
}

// --- Snapshots ----------------------------------------------------------------------------------

TEST_F(MvccStoreTest, SnapshotRoundTrip) {
  Put("a", "1", 7);
  Put("b", "2");
  Delete("a");
  Put("a", "3");
  RunTxn(TxnRequest{.success = {PutOp("c", "4"), DeleteOp("b")}});
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{3}}).ok());
  Put("d", "5");
  std::string snapshot = store_.Serialize();
  auto restored = MvccStore::Restore(snapshot, MvccOptions{});
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->current_revision(), store_.current_revision());
  EXPECT_EQ(restored->compacted_revision(), store_.compacted_revision());
  EXPECT_EQ(restored->bytes_used(), store_.bytes_used());
  EXPECT_EQ(restored->versions_held(), store_.versions_held());
  EXPECT_EQ(restored->Serialize(), snapshot);
  for (int64_t revision = 3; revision <= store_.current_revision().value(); ++revision) {
    RangeRequest all{.key = std::string(1, '\0'), .range_end = std::string(1, '\0'),
                     .revision = Revision{revision}};
    EXPECT_EQ(restored->Range(all)->kvs, store_.Range(all)->kvs) << "at " << revision;
    EXPECT_EQ(*restored->TimestampOf(Revision{revision}), *store_.TimestampOf(Revision{revision}));
  }
  // The restored store keeps working, compaction included.
  ASSERT_TRUE(restored->Compact(CompactionRequest{restored->current_revision()}).ok());
  ASSERT_TRUE(restored->Put(PutRequest{.key = "e", .value = "6"}, NextTs()).ok());
}

TEST_F(MvccStoreTest, SnapshotWrittenInSlicesShowsTheStartRevisionWhileWritesGoOn) {
  std::mt19937 random(9);
  auto key = [&random] { return fmt::format("k{:03}", random() % 300); };
  for (int i = 0; i < 600; ++i) Put(key(), std::string(random() % 40, 'v'));
  for (int i = 0; i < 40; ++i) Delete(key());
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{200}}).ok());
  const std::string expected = store_.Serialize();
  MvccStore::SnapshotWriter writer = store_.BeginSnapshot();
  int slices = 0;
  // Between slices: overwrites, deletes, keys before and after the writer's position, and a
  // transaction — none of it may show in the snapshot.
  while (!writer.Continue(97)) {
    ++slices;
    Put(key(), "new");
    Put("a" + key(), "before everything");
    Put("z" + key(), "after everything");
    if (slices % 3 == 0) Delete(key());
    if (slices % 5 == 0) RunTxn(TxnRequest{.success = {PutOp(key(), "t"), DeleteOp(key())}});
    ASSERT_FALSE(writer.stale());
  }
  EXPECT_GT(slices, 50);
  EXPECT_GT(store_.current_revision().value(), writer.revision().value() + 2 * slices);
  std::string sliced = writer.TakePending().Finish();
  EXPECT_EQ(sliced, expected);
  auto restored = MvccStore::Restore(sliced, MvccOptions{});
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->current_revision(), writer.revision());
}

// --- Values apart from the index (ValueLog) -------------------------------------------------------

// Keys written once and kept pin the first segments while the rest of their values are overwritten
// and compacted away: relocation moves the kept values so those segments are deleted.
TEST(MvccValueLogTest, RelocationEmptiesSegmentsPinnedByLongLivedValues) {
  MvccOptions options;
  options.value_log.segment_bytes = 100;
  options.value_log.flush_bytes = 30;
  options.relocation_keys_per_write = 8;
  MvccStore store(options);
  uint64_t ms = 0;
  auto put = [&](const std::string& key, const std::string& value) {
    ASSERT_TRUE(store.Put(PutRequest{.key = key, .value = value}, Ts(++ms)).ok());
  };
  auto key = [](int i) { return fmt::format("k{:03}", i); };
  for (int i = 0; i < 100; ++i) put(key(i), fmt::format("first-{:04}", i));  // 10 bytes each.
  ASSERT_EQ(store.value_log().segment_count(), 11u);  // Ten full, and the head.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 100; ++i) {
      if (i % 4 != 0) put(key(i), fmt::format("r{:02}-{:06}", round, i));
    }
    ASSERT_TRUE(store.Compact(CompactionRequest{store.current_revision()}).ok());
  }
  for (uint32_t segment = 0; segment < 10; ++segment) {
    EXPECT_FALSE(store.value_log().Holds(segment)) << "segment " << segment << " was relocated";
  }
  for (int i = 0; i < 100; ++i) {
    auto got = store.Range(RangeRequest{.key = key(i)});
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->kvs.size(), 1u);
    EXPECT_EQ(got->kvs[0].value,
              i % 4 == 0 ? fmt::format("first-{:04}", i) : fmt::format("r19-{:06}", i));
  }
  // Live: 100 values of 10 bytes. Stored: at most about twice that, plus a few segments.
  EXPECT_EQ(store.value_log().live_bytes(), 1000u);
  EXPECT_LE(store.value_log().garbage_bytes(), 1000u + 3 * 100u);
}

// A write that fails after adding values (over the quota, or an op failing inside a txn) gives
// them back: nothing it added stays live.
TEST(MvccValueLogTest, FailedWritesReleaseTheirValues) {
  MvccOptions options;
  options.quota_bytes = 100;
  MvccStore store(options);
  uint64_t ms = 0;
  ASSERT_TRUE(store.Put(PutRequest{.key = "a", .value = std::string(40, 'a')}, Ts(++ms)).ok());
  EXPECT_EQ(store.value_log().live_bytes(), 40u);
  auto over = store.Put(PutRequest{.key = "b", .value = std::string(80, 'b')}, Ts(++ms));
  EXPECT_EQ(over.status().code(), StatusCode::kNoSpace);
  EXPECT_EQ(store.value_log().live_bytes(), 40u);
  EXPECT_EQ(store.value_log().garbage_bytes(), 80u);
  auto txn = store.Txn(
      TxnRequest{.success = {PutOp("c", std::string(10, 'c')),
                             RequestOp{PutRequest{.key = "d", .ignore_value = true}}}},
      Ts(++ms));
  EXPECT_EQ(txn.status().message(), "etcdserver: key not found");
  EXPECT_EQ(store.value_log().live_bytes(), 40u);
  EXPECT_EQ(store.value_log().garbage_bytes(), 90u);
  auto got = store.Range(RangeRequest{.key = "a"});
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, std::string(40, 'a'));
}

// A snapshot's slices note where values go; the values are copied in later, on another thread,
// after relocation moved some (before and after the writer passed their key), removed the
// segments they were in, and after the store itself is gone.
TEST(MvccValueLogTest, SnapshotValuesAreReadAfterRelocationAndAfterTheStoreIsGone) {
  MvccOptions options;
  options.value_log.segment_bytes = 64;
  options.value_log.flush_bytes = 16;
  options.relocation_keys_per_write = 1;
  auto store = std::make_unique<MvccStore>(options);
  uint64_t ms = 0;
  auto put = [&](const std::string& key, const std::string& value) {
    ASSERT_TRUE(store->Put(PutRequest{.key = key, .value = value}, Ts(++ms)).ok());
  };
  for (int i = 0; i < 200; ++i) put(fmt::format("k{:03}", i), fmt::format("first-{:04}", i));
  for (int i = 0; i < 200; ++i) {
    if (i % 4 != 0) put(fmt::format("k{:03}", i), fmt::format("second-{:03}", i));
  }
  ASSERT_TRUE(store->Compact(CompactionRequest{store->current_revision()}).ok());
  ASSERT_TRUE(store->relocating());
  ASSERT_TRUE(store->value_log().Holds(0));
  const std::string expected = store->Serialize();

  MvccStore::SnapshotWriter writer = store->BeginSnapshot();
  int writes = 0;
  while (!writer.Continue(50)) put(fmt::format("z{:04}", writes++), "later");
  EXPECT_GT(writes, 100);
  EXPECT_FALSE(store->value_log().Holds(0)) << "relocation removed a segment the snapshot reads";
  MvccStore::SnapshotWriter::Pending pending = writer.TakePending();
  store.reset();
  std::string finished;
  std::thread([&] { finished = std::move(pending).Finish(); }).join();
  EXPECT_EQ(finished, expected);
}

TEST_F(MvccStoreTest, CompactionMakesASnapshotWriterStale) {
  for (int i = 0; i < 50; ++i) Put(fmt::format("k{}", i), "v");
  MvccStore::SnapshotWriter writer = store_.BeginSnapshot();
  EXPECT_FALSE(writer.Continue(10));
  ASSERT_TRUE(store_.Compact(CompactionRequest{Revision{20}}).ok());
  EXPECT_TRUE(writer.stale());
}

TEST_F(MvccStoreTest, SnapshotOfEmptyStore) {
  auto restored = MvccStore::Restore(store_.Serialize(), MvccOptions{});
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->current_revision(), Revision{1});
}

TEST_F(MvccStoreTest, RestoreGarbageIsCorruption) {
  Put("a", "1");
  Put("b", "2");
  Delete("a");
  std::string snapshot = store_.Serialize();
  for (size_t size = 0; size < snapshot.size(); ++size) {
    auto truncated = MvccStore::Restore(snapshot.substr(0, size), MvccOptions{});
    EXPECT_EQ(truncated.status().code(), StatusCode::kCorruption) << "size " << size;
  }
  for (size_t byte = 0; byte < snapshot.size(); ++byte) {
    std::string flipped = snapshot;
    flipped[byte] = static_cast<char>(flipped[byte] ^ 0x10);
    auto restored = MvccStore::Restore(flipped, MvccOptions{});
    EXPECT_EQ(restored.status().code(), StatusCode::kCorruption) << "byte " << byte;
  }
  EXPECT_EQ(MvccStore::Restore("definitely not a snapshot", MvccOptions{}).status().code(),
            StatusCode::kCorruption);
}

TEST_F(MvccStoreTest, RestoreRejectsStructurallyBadSnapshotWithValidChecksum) {
  Put("a", "1");
  std::string snapshot = store_.Serialize();
  auto reseal = [](std::string body) {
    body.resize(body.size() - 4);
    uint32_t crc = crc32c::Value(body);
    for (int shift = 0; shift < 32; shift += 8) body.push_back(static_cast<char>(crc >> shift));
    return body;
  };
  // Current revision (bytes 8..15) set below the version's revision.
  std::string bad_revision = snapshot;
  bad_revision[8] = 1;
  EXPECT_EQ(MvccStore::Restore(reseal(bad_revision), MvccOptions{}).status().code(),
            StatusCode::kCorruption);
  std::string bad_version = snapshot;
  bad_version[4] = 9;
  EXPECT_EQ(MvccStore::Restore(reseal(bad_version), MvccOptions{}).status().code(),
            StatusCode::kUnsupported);
  std::string trailing = snapshot;
  trailing.insert(trailing.size() - 4, "x");
  EXPECT_EQ(MvccStore::Restore(reseal(trailing), MvccOptions{}).status().code(),
            StatusCode::kCorruption);
}

}  // namespace
}  // namespace cairn::mvcc
