// The boundary between etcd's wire types (etcdserverpb, mvccpb) and Cairn's own: conversions both
// ways and the mapping of Cairn statuses onto etcd's gRPC errors.
//
// Design note. The MVCC store and the member core speak Cairn types (mvcc::PutRequest, Status);
// gRPC handlers speak protobuf. Everything that crosses lives here so the two stay independent
// and the etcd error contract is in one place: clients (etcdctl, clientv3, the npm etcd3 client)
// decide whether to retry from the gRPC code and match on the exact message text, so both are
// etcd's (see etcd's api/v3rpc/rpctypes). Conversions from the wire never fail: protobuf enums
// carry unknown values as ints, which the MVCC store refuses with InvalidArgument.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "base/status.h"
#include "etcdserverpb/rpc.pb.h"
#include "mvcc/mvcc_store.h"

namespace cairn::server {

// The etcd API version Cairn answers in Maintenance.Status and /version (the API it is
// compatible with).
inline constexpr std::string_view kEtcdApiVersion = "3.4.0";

// etcd's server-side error texts that are not the MVCC store's.
inline constexpr std::string_view kErrorNoLeader = "etcdserver: no leader";
inline constexpr std::string_view kErrorLeaderChanged = "etcdserver: leader changed";
inline constexpr std::string_view kErrorTimeout = "etcdserver: request timed out";
inline constexpr std::string_view kErrorStopped = "etcdserver: server stopped";
inline constexpr std::string_view kErrorTooManyRequests = "etcdserver: too many requests";

// What every response header carries (etcd's ResponseHeader, plus the revision's hybrid time).
struct ReplyHeader {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  Revision revision{};
  uint64_t raft_term = 0;
  HybridTimestamp hybrid_time{};
};

// A Cairn status as etcd would have answered: code and text.
grpc::Status ToGrpcStatus(const Status& status);

// Wire -> Cairn.
mvcc::RangeRequest FromProto(const etcdserverpb::RangeRequest& request);
mvcc::PutRequest FromProto(const etcdserverpb::PutRequest& request);
mvcc::DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& request);
mvcc::TxnRequest FromProto(const etcdserverpb::TxnRequest& request);

// Cairn -> wire. `store` supplies each key's mod-revision hybrid time.
void ToProto(const ReplyHeader& header, etcdserverpb::ResponseHeader* out);
void ToProto(const mvcc::MvccStore& store, const mvcc::RangeResponse& response,
             etcdserverpb::RangeResponse* out);
void ToProto(const mvcc::MvccStore& store, const mvcc::PutResponse& response,
             etcdserverpb::PutResponse* out);
void ToProto(const mvcc::MvccStore& store, const mvcc::DeleteRangeResponse& response,
             etcdserverpb::DeleteRangeResponse* out);
void ToProto(const mvcc::MvccStore& store, const mvcc::TxnResponse& response,
             etcdserverpb::TxnResponse* out);

// True when no op of the transaction (nested ones included) writes: it is served as a read.
bool IsReadOnly(const etcdserverpb::TxnRequest& request);

}  // namespace cairn::server
