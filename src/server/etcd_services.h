// The etcd v3 gRPC services Cairn serves: KV (Range, Put, DeleteRange, Txn, Compact) and
// Maintenance.Status. Watch, Lease, Cluster, Auth and the other Maintenance calls answer
// UNIMPLEMENTED (gRPC's answer to a method the server does not know) until their issues.
//
// Design note. Both run on gRPC's asynchronous completion-queue API with Cairn's own threads
// ("cairn-client", EtcdServicesOptions::threads, one completion queue each). A client thread polls
// its queue: it reads and parses requests, validates what can be checked without state (empty
// key, request size), hands the request to the member's Singular Update Queue (MemberNode) and
// goes on. The member thread fills the response when the write has been applied or the read index
// confirmed and hands the call back through the client thread's reply list, waking it with one
// grpc::Alarm per batch; the client thread sends the replies. So a batch of requests costs one
// wake of the member thread and one of the client thread, and the socket writes stay on the
// client thread, off the member thread. (gRPC's callback API, used before, woke one of its own
// threads per call to run the call's completion and wrote each reply on the member thread: 1
// member, put, 0.12 ms of server CPU per request; see docs/benchmarks.md for the figures with this
// design.) No client thread ever blocks waiting for consensus, so the requests in flight are
// bounded by the member's queue, not by threads. No service is on the callback or synchronous API,
// so gRPC starts no threads of its own that poll the connections.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/member_node.h"

namespace cairn::server {


struct EtcdServicesOptions {
  size_t max_request_bytes = 3 * 512 * 1024;
  // Threads (and completion queues) serving client calls.
  int threads = 1;
  // Calls of each method each thread keeps requested from gRPC ahead of their arrival.
  int calls_requested_per_method = 4;
};

// The KV and Maintenance services on the asynchronous API (see the design note above).
class EtcdServices {
 public:
  EtcdServices(MemberNode& node, EtcdServicesOptions options);
  ~EtcdServices();
  EtcdServices(const EtcdServices&) = delete;
  EtcdServices& operator=(const EtcdServices&) = delete;

  // Before builder.BuildAndStart(): registers the services and a completion queue per thread.
  void AddTo(grpc::ServerBuilder& builder);
  // After BuildAndStart(): requests the first calls and starts the threads.
  void Start();
  // After the member has stopped and grpc::Server::Shutdown returned: shuts the queues down and
  // joins the threads. Idempotent.
  void Stop();

  // See MemberNode::HoldWakes.
  void HoldMemberWakes() { node_.HoldWakes(); }
  void ReleaseMemberWakes() { node_.ReleaseWakes(); }

  // The handlers, for any call type with request(), response() and Answer(grpc::Status or
  // Status). Each runs on a client thread when its call arrives and ends in call.Answer(...), on
  // any thread. Instantiated in the .cc file for both front ends' call types.
  template <typename Call>
  void Range(Call& call);
  template <typename Call>
  void Put(Call& call);
  template <typename Call>
  void DeleteRange(Call& call);
  template <typename Call>
  void Txn(Call& call);
  template <typename Call>
  void Compact(Call& call);
  template <typename Call>
  void MaintenanceStatus(Call& call);

  // Internal types (defined in the .cc file).
  struct Tag;
  struct Reply;
  struct Worker;
  template <typename Service, typename Request, typename Response>
  class UnaryCall;

 private:
  using KV = etcdserverpb::KV::AsyncService;
  using RangeCall = UnaryCall<KV, etcdserverpb::RangeRequest, etcdserverpb::RangeResponse>;
  using PutCall = UnaryCall<KV, etcdserverpb::PutRequest, etcdserverpb::PutResponse>;
  using DeleteRangeCall =
      UnaryCall<KV, etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse>;
  using TxnCall = UnaryCall<KV, etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>;
  using CompactCall =
      UnaryCall<KV, etcdserverpb::CompactionRequest, etcdserverpb::CompactionResponse>;
  using StatusCall = UnaryCall<etcdserverpb::Maintenance::AsyncService, etcdserverpb::StatusRequest,
                               etcdserverpb::StatusResponse>;

  // Both front ends' handlers: UnaryCall (the gRPC library) and WireCall (ClientPort).

  // Submits `command` as a write; `fill` copies the applied result into the response.
  template <typename Call, typename Fill>
  void Write(Call& call, size_t request_bytes, cairnpb::Command command, Fill fill);
  // Runs `read` against the store at a linearizable (or, if serializable, local) point.
  template <typename Call, typename ReadFn>
  void Read(Call& call, bool linearizable, ReadFn read);

  void RunWorker(Worker& worker);

  MemberNode& node_;
  const EtcdServicesOptions options_;
  KV kv_;
  etcdserverpb::Maintenance::AsyncService maintenance_;
  std::vector<std::unique_ptr<Worker>> workers_;
  bool stopped_ = false;
};

}  // namespace cairn::server
