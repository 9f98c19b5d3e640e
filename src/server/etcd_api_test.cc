#include "server/etcd_api.h"

#include <gtest/gtest.h>

namespace cairn::server {
namespace {

TEST(EtcdApi, StatusesBecomeEtcdErrors) {
  auto compacted = ToGrpcStatus(Status::OutOfRange(std::string(mvcc::kErrorCompacted)));
  EXPECT_EQ(grpc::StatusCode::OUT_OF_RANGE, compacted.error_code());
  EXPECT_EQ("etcdserver: mvcc: required revision has been compacted", compacted.error_message());
  auto future = ToGrpcStatus(Status::OutOfRange(std::string(mvcc::kErrorFutureRevision)));
  EXPECT_EQ("etcdserver: mvcc: required revision is a future revision", future.error_message());
  auto empty = ToGrpcStatus(Status::InvalidArgument(std::string(mvcc::kErrorEmptyKey)));
  EXPECT_EQ(grpc::StatusCode::INVALID_ARGUMENT, empty.error_code());
  EXPECT_EQ("etcdserver: key is not provided", empty.error_message());
  auto space = ToGrpcStatus(Status::NoSpace(std::string(mvcc::kErrorNoSpace)));
  EXPECT_EQ(grpc::StatusCode::RESOURCE_EXHAUSTED, space.error_code());
  auto no_leader = ToGrpcStatus(Status::Unavailable(std::string(kErrorNoLeader)));
  EXPECT_EQ(grpc::StatusCode::UNAVAILABLE, no_leader.error_code());
  EXPECT_EQ("etcdserver: no leader", no_leader.error_message());
  EXPECT_EQ(grpc::StatusCode::UNAVAILABLE,
            ToGrpcStatus(Status::TimedOut(std::string(kErrorTimeout))).error_code());
  EXPECT_TRUE(ToGrpcStatus(Status::Ok()).ok());
}

etcdserverpb::TxnRequest SampleTxn() {
  etcdserverpb::TxnRequest txn;
  auto* compare = txn.add_compare();
  compare->set_key("k");
  compare->set_range_end("l");
  compare->set_target(etcdserverpb::Compare::MOD);
  compare->set_result(etcdserverpb::Compare::GREATER);
  compare->set_mod_revision(7);
  txn.add_success()->mutable_request_range()->set_key("k");
  auto* nested = txn.add_failure()->mutable_request_txn();
  nested->add_success()->mutable_request_put()->set_key("x");
  return txn;
}

TEST(EtcdApi, TxnConvertsWithNestedOps) {
  const mvcc::TxnRequest txn = FromProto(SampleTxn());
  ASSERT_EQ(1u, txn.compare.size());
  EXPECT_EQ(mvcc::CompareTarget::kMod, txn.compare[0].target);
  EXPECT_EQ(mvcc::CompareResult::kGreater, txn.compare[0].result);
  EXPECT_EQ(Revision(7), txn.compare[0].mod_revision);
  EXPECT_EQ("l", txn.compare[0].range_end);
  ASSERT_EQ(1u, txn.success.size());
  EXPECT_EQ("k", std::get<mvcc::RangeRequest>(txn.success[0].request).key);
  const auto& nested = std::get<mvcc::TxnRequest>(txn.failure[0].request);
  EXPECT_EQ("x", std::get<mvcc::PutRequest>(nested.success[0].request).key);
}

TEST(EtcdApi, ReadOnlyTxnsAreRecognisedThroughNesting) {
  etcdserverpb::TxnRequest reads;
  reads.add_success()->mutable_request_range()->set_key("a");
  reads.add_failure()->mutable_request_txn()->add_success()->mutable_request_range()->set_key("b");
  EXPECT_TRUE(IsReadOnly(reads));
  EXPECT_FALSE(IsReadOnly(SampleTxn())) << "a put nested in the failure branch writes";
  EXPECT_TRUE(IsReadOnly(etcdserverpb::TxnRequest{}));
}

TEST(EtcdApi, ResponsesCarryEtcdFieldsAndTheHybridTime) {
  mvcc::MvccStore store;
  const HybridTimestamp stamp = HybridTimestamp::FromParts(1'700'000'000'000, 3);
  ASSERT_TRUE(store.Put({.key = "a", .value = "1"}, stamp).ok());
  auto range = store.Range({.key = "a"});
  ASSERT_TRUE(range.ok());
  etcdserverpb::RangeResponse out;
  ToProto(store, *range, &out);
  ToProto(ReplyHeader{.cluster_id = 1, .member_id = 2, .revision = Revision(2), .raft_term = 3,
                      .hybrid_time = stamp},
          out.mutable_header());
  ASSERT_EQ(1, out.kvs_size());
  EXPECT_EQ("a", out.kvs(0).key());
  EXPECT_EQ(2, out.kvs(0).create_revision());
  EXPECT_EQ(1, out.kvs(0).version());
  EXPECT_EQ(stamp.packed(), out.kvs(0).cairn_mod_hybrid_time());
  EXPECT_EQ(1u, out.header().cluster_id());
  EXPECT_EQ(3u, out.header().raft_term());
  EXPECT_EQ(stamp.packed(), out.header().cairn_hybrid_time());
  EXPECT_EQ(1, out.count());
}

}  // namespace
}  // namespace cairn::server
