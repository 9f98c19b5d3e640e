// The etcd v3 gRPC services Cairn serves: KV (Range, Put, DeleteRange, Txn, Compact) and
// Maintenance.Status. Watch, Lease, Cluster and Auth answer UNIMPLEMENTED until their issues.
//
// Design note. Handlers use gRPC's callback API: a handler validates what can be checked without
// state (empty key, request size), hands the request to the member's Singular Update Queue
// (MemberNode) and returns; the member thread finishes the call when the write has been applied
// or the read index confirmed. No gRPC thread ever blocks waiting for consensus, so the number of
// requests in flight is bounded by the member's queue, not by threads.
#pragma once

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/member_node.h"

namespace cairn::server {

// The etcd API version Cairn answers in Maintenance.Status (the API it is compatible with).
inline constexpr std::string_view kEtcdApiVersion = "3.4.0";

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(MemberNode& node, size_t max_request_bytes)
      : node_(node), max_request_bytes_(max_request_bytes) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                  const etcdserverpb::RangeRequest* request,
                                  etcdserverpb::RangeResponse* response) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                const etcdserverpb::PutRequest* request,
                                etcdserverpb::PutResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* context,
                                        const etcdserverpb::DeleteRangeRequest* request,
                                        etcdserverpb::DeleteRangeResponse* response) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* context,
                                const etcdserverpb::TxnRequest* request,
                                etcdserverpb::TxnResponse* response) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const etcdserverpb::CompactionRequest* request,
                                    etcdserverpb::CompactionResponse* response) override;

 private:
  // Submits `command` as a write; `fill` copies the applied result into the response.
  template <typename Response, typename Fill>
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* context, size_t request_bytes,
                                  cairnpb::Command command, Response* response, Fill fill);

  MemberNode& node_;
  const size_t max_request_bytes_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(MemberNode& node) : node_(node) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const etcdserverpb::StatusRequest* request,
                                   etcdserverpb::StatusResponse* response) override;

 private:
  MemberNode& node_;
};

}  // namespace cairn::server
