#include "server/etcd_api.h"

#include <string>

namespace cairn::server {
namespace {

std::string WithEtcdPrefix(const std::string& message) {
  // The MVCC store's revision errors are "mvcc: ..."; etcd's gRPC layer says
  // "etcdserver: mvcc: ...". Everything else already carries etcd's full text.
  if (message.rfind("mvcc: ", 0) == 0) return "etcdserver: " + message;
  return message;
}

void KeyValueToProto(const mvcc::MvccStore& store, const mvcc::KeyValue& kv, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision.value());
  out->set_mod_revision(kv.mod_revision.value());
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease);
  if (auto timestamp = store.TimestampOf(kv.mod_revision); timestamp.ok()) {
    out->set_cairn_mod_hybrid_time(timestamp->packed());
  }
}

mvcc::Compare CompareFromProto(const etcdserverpb::Compare& compare) {
  mvcc::Compare out;
  out.result = static_cast<mvcc::CompareResult>(compare.result());
  out.target = static_cast<mvcc::CompareTarget>(compare.target());
  out.key = compare.key();
  out.range_end = compare.range_end();
  out.version = compare.version();
  out.create_revision = Revision(compare.create_revision());
  out.mod_revision = Revision(compare.mod_revision());
  out.value = compare.value();
  out.lease = compare.lease();
  return out;
}

mvcc::RequestOp OpFromProto(const etcdserverpb::RequestOp& op) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange: return {FromProto(op.request_range())};
    case etcdserverpb::RequestOp::kRequestPut: return {FromProto(op.request_put())};
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      return {FromProto(op.request_delete_range())};
    case etcdserverpb::RequestOp::kRequestTxn: return {FromProto(op.request_txn())};
    case etcdserverpb::RequestOp::REQUEST_NOT_SET: break;
  }
  // etcd treats an empty op as an empty range request; a range with no key is refused.
  return {mvcc::RangeRequest{}};
}

void OpToProto(const mvcc::MvccStore& store, const mvcc::ResponseOp& op,
               etcdserverpb::ResponseOp* out) {
  if (const auto* range = std::get_if<mvcc::RangeResponse>(&op.response)) {
    ToProto(store, *range, out->mutable_response_range());
  } else if (const auto* put = std::get_if<mvcc::PutResponse>(&op.response)) {
    ToProto(store, *put, out->mutable_response_put());
  } else if (const auto* del = std::get_if<mvcc::DeleteRangeResponse>(&op.response)) {
    ToProto(store, *del, out->mutable_response_delete_range());
  } else {
    ToProto(store, std::get<mvcc::TxnResponse>(op.response), out->mutable_response_txn());
  }
}

// Responses nested in a Txn carry a header with just the revision, as etcd's do.
void NestedHeader(const mvcc::ResponseHeader& header, etcdserverpb::ResponseHeader* out) {
  out->set_revision(header.revision.value());
}

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  const std::string message = WithEtcdPrefix(status.message());
  switch (status.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kInvalidArgument: return {grpc::StatusCode::INVALID_ARGUMENT, message};
    case StatusCode::kOutOfRange: return {grpc::StatusCode::OUT_OF_RANGE, message};
    case StatusCode::kNoSpace: return {grpc::StatusCode::RESOURCE_EXHAUSTED, message};
    case StatusCode::kBusy: return {grpc::StatusCode::RESOURCE_EXHAUSTED, message};
    case StatusCode::kNotFound: return {grpc::StatusCode::NOT_FOUND, message};
    case StatusCode::kNotLeader:
    case StatusCode::kUnavailable:
    case StatusCode::kTimedOut:
    case StatusCode::kFailed: return {grpc::StatusCode::UNAVAILABLE, message};
    default: return {grpc::StatusCode::INTERNAL, message};
  }
}

mvcc::RangeRequest FromProto(const etcdserverpb::RangeRequest& request) {
  mvcc::RangeRequest out;
  out.key = request.key();
  out.range_end = request.range_end();
  out.limit = request.limit();
  out.revision = Revision(request.revision());
  out.sort_order = static_cast<mvcc::SortOrder>(request.sort_order());
  out.sort_target = static_cast<mvcc::SortTarget>(request.sort_target());
  out.keys_only = request.keys_only();
  out.count_only = request.count_only();
  out.min_mod_revision = Revision(request.min_mod_revision());
  out.max_mod_revision = Revision(request.max_mod_revision());
  out.min_create_revision = Revision(request.min_create_revision());
  out.max_create_revision = Revision(request.max_create_revision());
  return out;
}

mvcc::PutRequest FromProto(const etcdserverpb::PutRequest& request) {
  return mvcc::PutRequest{.key = request.key(),
                          .value = request.value(),
                          .lease = request.lease(),
                          .prev_kv = request.prev_kv(),
                          .ignore_value = request.ignore_value(),
                          .ignore_lease = request.ignore_lease()};
}

mvcc::DeleteRangeRequest FromProto(const etcdserverpb::DeleteRangeRequest& request) {
  return mvcc::DeleteRangeRequest{
      .key = request.key(), .range_end = request.range_end(), .prev_kv = request.prev_kv()};
}

mvcc::TxnRequest FromProto(const etcdserverpb::TxnRequest& request) {
  mvcc::TxnRequest out;
  out.compare.reserve(request.compare_size());
  for (const auto& compare : request.compare()) out.compare.push_back(CompareFromProto(compare));
  out.success.reserve(request.success_size());
  for (const auto& op : request.success()) out.success.push_back(OpFromProto(op));
  out.failure.reserve(request.failure_size());
  for (const auto& op : request.failure()) out.failure.push_back(OpFromProto(op));
  return out;
}

void ToProto(const ReplyHeader& header, etcdserverpb::ResponseHeader* out) {
  out->set_cluster_id(header.cluster_id);
  out->set_member_id(header.member_id);
  out->set_revision(header.revision.value());
  out->set_raft_term(header.raft_term);
  out->set_cairn_hybrid_time(header.hybrid_time.packed());
}

void ToProto(const mvcc::MvccStore& store, const mvcc::RangeResponse& response,
             etcdserverpb::RangeResponse* out) {
  NestedHeader(response.header, out->mutable_header());
  out->mutable_kvs()->Reserve(static_cast<int>(response.kvs.size()));
  for (const auto& kv : response.kvs) KeyValueToProto(store, kv, out->add_kvs());
  out->set_more(response.more);
  out->set_count(response.count);
}

void ToProto(const mvcc::MvccStore& store, const mvcc::PutResponse& response,
             etcdserverpb::PutResponse* out) {
  NestedHeader(response.header, out->mutable_header());
  if (response.prev_kv) KeyValueToProto(store, *response.prev_kv, out->mutable_prev_kv());
}

void ToProto(const mvcc::MvccStore& store, const mvcc::DeleteRangeResponse& response,
             etcdserverpb::DeleteRangeResponse* out) {
  NestedHeader(response.header, out->mutable_header());
  out->set_deleted(response.deleted);
  for (const auto& kv : response.prev_kvs) KeyValueToProto(store, kv, out->add_prev_kvs());
}

void ToProto(const mvcc::MvccStore& store, const mvcc::TxnResponse& response,
             etcdserverpb::TxnResponse* out) {
  NestedHeader(response.header, out->mutable_header());
  out->set_succeeded(response.succeeded);
  for (const auto& op : response.responses) OpToProto(store, op, out->add_responses());
}

bool IsReadOnly(const etcdserverpb::TxnRequest& request) {
  auto ops_read_only = [](const auto& ops) {
    for (const auto& op : ops) {
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestPut:
        case etcdserverpb::RequestOp::kRequestDeleteRange: return false;
        case etcdserverpb::RequestOp::kRequestTxn:
          if (!IsReadOnly(op.request_txn())) return false;
          break;
        default: break;
      }
    }
    return true;
  };
  return ops_read_only(request.success()) && ops_read_only(request.failure());
}

}  // namespace cairn::server
