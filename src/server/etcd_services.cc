#include "server/etcd_services.h"

#include "base/check.h"

namespace cairn::server {
namespace {

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context, const Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

Status EmptyKey() { return Status::InvalidArgument(std::string(mvcc::kErrorEmptyKey)); }
Status TooLarge() { return Status::InvalidArgument(std::string(mvcc::kErrorRequestTooLarge)); }

bool IsSerializable(const etcdserverpb::TxnRequest& request) {
  auto all_serializable = [](const auto& ops) {
    for (const auto& op : ops) {
      if (op.has_request_range() && !op.request_range().serializable()) return false;
      if (op.has_request_txn() && !IsSerializable(op.request_txn())) return false;
    }
    return true;
  };
  return all_serializable(request.success()) && all_serializable(request.failure());
}

}  // namespace

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* context,
                                           const etcdserverpb::RangeRequest* request,
                                           etcdserverpb::RangeResponse* response) {
  if (request->key().empty()) return FinishNow(context, EmptyKey());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  node_.SubmitRead(!request->serializable(),
                   [reactor, request, response](const cairn::Status& status,
                                                mvcc::MvccStore* store, const ReplyHeader& header) {
                     if (!status.ok()) return reactor->Finish(ToGrpcStatus(status));
                     auto range = store->Range(FromProto(*request));
                     if (!range.ok()) return reactor->Finish(ToGrpcStatus(range.status()));
                     ToProto(*store, *range, response);
                     ToProto(header, response->mutable_header());
                     reactor->Finish(grpc::Status::OK);
                   });
  return reactor;
}

template <typename Response, typename Fill>
grpc::ServerUnaryReactor* KvService::Write(grpc::CallbackServerContext* context,
                                           size_t request_bytes, cairnpb::Command command,
                                           Response* response, Fill fill) {
  if (request_bytes > max_request_bytes_) return FinishNow(context, TooLarge());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  node_.SubmitWrite(std::move(command),
                    [reactor, response, fill](const cairn::Status& status,
                                              const mvcc::MvccStore* store,
                                              const mvcc::ResponseOp* result,
                                              const ReplyHeader& header) {
                      if (!status.ok()) return reactor->Finish(ToGrpcStatus(status));
                      fill(*store, result, response);
                      ToProto(header, response->mutable_header());
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* context,
                                         const etcdserverpb::PutRequest* request,
                                         etcdserverpb::PutResponse* response) {
  if (request->key().empty()) return FinishNow(context, EmptyKey());
  cairnpb::Command command;
  *command.mutable_put() = *request;
  return Write(context, request->ByteSizeLong(), std::move(command), response,
               [](const mvcc::MvccStore& store, const mvcc::ResponseOp* result,
                  etcdserverpb::PutResponse* out) {
                 ToProto(store, std::get<mvcc::PutResponse>(result->response), out);
               });
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* context,
                                                 const etcdserverpb::DeleteRangeRequest* request,
                                                 etcdserverpb::DeleteRangeResponse* response) {
  if (request->key().empty()) return FinishNow(context, EmptyKey());
  cairnpb::Command command;
  *command.mutable_delete_range() = *request;
  return Write(context, request->ByteSizeLong(), std::move(command), response,
               [](const mvcc::MvccStore& store, const mvcc::ResponseOp* result,
                  etcdserverpb::DeleteRangeResponse* out) {
                 ToProto(store, std::get<mvcc::DeleteRangeResponse>(result->response), out);
               });
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* context,
                                         const etcdserverpb::TxnRequest* request,
                                         etcdserverpb::TxnResponse* response) {
  if (request->ByteSizeLong() > max_request_bytes_) return FinishNow(context, TooLarge());
  if (IsReadOnly(*request)) {
    // etcd serves a transaction without writes as a read: after a read-index round unless every
    // range in it asks to be serializable.
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    node_.SubmitRead(!IsSerializable(*request),
                     [reactor, request, response](const cairn::Status& status,
                                                  mvcc::MvccStore* store,
                                                  const ReplyHeader& header) {
                       if (!status.ok()) return reactor->Finish(ToGrpcStatus(status));
                       const Revision before = store->current_revision();
                       auto txn = store->Txn(FromProto(*request), HybridTimestamp{});
                       CAIRN_CHECK(store->current_revision() == before,
                                   "a read-only transaction does not write");
                       if (!txn.ok()) return reactor->Finish(ToGrpcStatus(txn.status()));
                       ToProto(*store, *txn, response);
                       ToProto(header, response->mutable_header());
                       reactor->Finish(grpc::Status::OK);
                     });
    return reactor;
  }
  cairnpb::Command command;
  *command.mutable_txn() = *request;
  return Write(context, 0, std::move(command), response,
               [](const mvcc::MvccStore& store, const mvcc::ResponseOp* result,
                  etcdserverpb::TxnResponse* out) {
                 ToProto(store, std::get<mvcc::TxnResponse>(result->response), out);
               });
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* context,
                                             const etcdserverpb::CompactionRequest* request,
                                             etcdserverpb::CompactionResponse* response) {
  cairnpb::Command command;
  *command.mutable_compaction() = *request;
  return Write(context, 0, std::move(command), response,
               [](const mvcc::MvccStore&, const mvcc::ResponseOp*, etcdserverpb::CompactionResponse*) {});
}

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  node_.SubmitStatus([reactor, response](const MemberStatus& status) {
    if (status.header.member_id == 0) {
      return reactor->Finish(ToGrpcStatus(cairn::Status::Unavailable(std::string(kErrorStopped))));
    }
    ToProto(status.header, response->mutable_header());
    response->set_version(std::string(kEtcdApiVersion));
    response->set_dbsize(static_cast<int64_t>(status.bytes_used));
    response->set_dbsizeinuse(static_cast<int64_t>(status.bytes_used));
    response->set_leader(status.leader.value());
    response->set_raftindex(status.commit_index.value());
    response->set_raftterm(status.header.raft_term);
    response->set_raftappliedindex(status.applied_index.value());
    response->set_islearner(status.is_learner);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace cairn::server
