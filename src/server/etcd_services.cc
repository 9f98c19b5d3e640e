#include "server/etcd_services.h"

#include <pthread.h>

#include "base/check.h"
#include "server/client_port.h"

namespace cairn::server {
namespace {

Status EmptyKey() {
  return Status::InvalidArgument(std::string(mvcc::kErrorEmptyKey));
}
Status TooLarge() {
  return Status::InvalidArgument(std::string(mvcc::kErrorRequestTooLarge));
}

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

// Everything a client thread takes from its completion queue.
struct EtcdServices::Tag {
  virtual void Done(bool ok) = 0;

 protected:
  ~Tag() = default;
};

// A call the member has answered: its reply is sent on its client thread.
struct EtcdServices::Reply : Tag {
  virtual void SendReply() = 0;

 protected:
  ~Reply() = default;
};

struct EtcdServices::Worker {
  // The alarm's tag: the member handed calls back.
  struct Wake final : Tag {
    explicit Wake(Worker& w) : worker(w) {}
    void Done(bool) override { worker.SendReplies(); }
    Worker& worker;
  };

  // Hands `call` to this worker's thread to send its reply; any thread.
  void Post(Reply* call) {
    if (current == this) return call->SendReply();
    std::lock_guard lock(mutex);
    replies.push_back(call);
    if (!wake_set && !stopping) {
      wake_set = true;
      alarm.Set(cq.get(), gpr_time_0(GPR_CLOCK_MONOTONIC), &wake);
    }
  }

  // The worker's thread.
  void SendReplies() {
    std::vector<Reply*> batch;
    bool stop = false;
    {
      std::lock_guard lock(mutex);
      batch.swap(replies);
      wake_set = false;
      stop = stopping;
    }
    for (Reply* call : batch) call->SendReply();
    if (stop && !cq_shut_down) {
      // From here on no call is requested or finished on this queue; Next drains it.
      cq_shut_down = true;
      cq->Shutdown();
    }
  }

  static thread_local Worker* current;

  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  std::thread thread;
  grpc::Alarm alarm;
  Wake wake{*this};
  bool cq_shut_down = false;  // The worker's thread only.

  std::mutex mutex;
  std::vector<Reply*> replies;  // Answered by the member, reply not yet sent.
  bool wake_set = false;        // The alarm is set and has not fired yet.
  bool stopping = false;
};

thread_local EtcdServices::Worker* EtcdServices::Worker::current = nullptr;

// One unary KV call: requested from gRPC, served (the handler hands it to the member), replied.
template <typename Service, typename Request, typename Response>
class EtcdServices::UnaryCall final : public EtcdServices::Reply {
 public:
  using RequestMethod = void (Service::*)(grpc::ServerContext*, Request*,
                                          grpc::ServerAsyncResponseWriter<Response>*,
                                          grpc::CompletionQueue*, grpc::ServerCompletionQueue*,
                                          void*);
  using Handler = void (EtcdServices::*)(UnaryCall&);

  UnaryCall(EtcdServices& services, Worker& worker, Service& service, RequestMethod request_method,
            Handler handler)
      : services_(services),
        worker_(worker),
        service_(service),
        request_method_(request_method),
        handler_(handler) {}

  // Asks gRPC for the next call of this method on the worker's queue.
  void Listen() {
    (service_.*request_method_)(&context_, &request_, &responder_, worker_.cq.get(),
                                worker_.cq.get(), this);
  }

  Request& request() { return request_; }
  Response& response() { return response_; }

  // Ends the call; any thread, once.
  void Answer(grpc::Status status) {
    status_ = std::move(status);
    worker_.Post(this);
  }
  void Answer(const Status& status) { Answer(ToGrpcStatus(status)); }

  void Done(bool ok) override {
    switch (state_) {
      case State::kListening:
        if (!ok || worker_.cq_shut_down) {  // The server is shutting down.
          delete this;
          return;
        }
        (new UnaryCall(services_, worker_, service_, request_method_, handler_))->Listen();
        state_ = State::kServing;
        (services_.*handler_)(*this);  // Last: the call may be answered and gone after it.
        return;
      case State::kServing:
        CAIRN_CHECK(false, "a client call got a completion while the member was serving it");
        return;
      case State::kFinishing:
        delete this;
        return;
    }
  }

  void SendReply() override {
    if (worker_.cq_shut_down) {  // Too late to send: gRPC has cancelled the call.
      delete this;
      return;
    }
    state_ = State::kFinishing;
    if (status_.ok()) {
      responder_.Finish(response_, status_, this);
    } else {
      responder_.FinishWithError(status_, this);
    }
  }

 private:
  enum class State { kListening, kServing, kFinishing };

  EtcdServices& services_;
  Worker& worker_;
  Service& service_;
  const RequestMethod request_method_;
  const Handler handler_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> responder_{&context_};
  grpc::Status status_;
  State state_ = State::kListening;
};

EtcdServices::EtcdServices(MemberNode& node, EtcdServicesOptions options)
    : node_(node), options_(options) {
  CAIRN_CHECK(options_.threads >= 1 && options_.calls_requested_per_method >= 1,
              "EtcdServices needs at least one thread and one requested call per method");
}

EtcdServices::~EtcdServices() {
  Stop();
}

void EtcdServices::AddTo(grpc::ServerBuilder& builder) {
  builder.RegisterService(&kv_);
  builder.RegisterService(&maintenance_);
  for (int i = 0; i < options_.threads; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->cq = builder.AddCompletionQueue();
    workers_.push_back(std::move(worker));
  }
}

void EtcdServices::Start() {
  using Maintenance = etcdserverpb::Maintenance::AsyncService;
  for (auto& worker : workers_) {
    Worker& w = *worker;
    for (int i = 0; i < options_.calls_requested_per_method; ++i) {
      (new RangeCall(*this, w, kv_, &KV::RequestRange, &EtcdServices::Range<RangeCall>))->Listen();
      (new PutCall(*this, w, kv_, &KV::RequestPut, &EtcdServices::Put<PutCall>))->Listen();
      (new DeleteRangeCall(*this, w, kv_, &KV::RequestDeleteRange, &EtcdServices::DeleteRange<DeleteRangeCall>))
          ->Listen();
      (new TxnCall(*this, w, kv_, &KV::RequestTxn, &EtcdServices::Txn<TxnCall>))->Listen();
      (new CompactCall(*this, w, kv_, &KV::RequestCompact, &EtcdServices::Compact<CompactCall>))->Listen();
    }
    (new StatusCall(*this, w, maintenance_, &Maintenance::RequestStatus,
                    &EtcdServices::MaintenanceStatus<StatusCall>))
        ->Listen();
    worker->thread = std::thread([this, &w] {
      pthread_setname_np(pthread_self(), "cairn-client");
      RunWorker(w);
    });
  }
}

void EtcdServices::RunWorker(Worker& worker) {
  Worker::current = &worker;
  void* tag = nullptr;
  bool ok = false;
  while (worker.cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Done(ok);
  Worker::current = nullptr;
}

void EtcdServices::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& worker : workers_) {
    if (!worker->thread.joinable()) {  // Never started (the server failed to build).
      worker->cq->Shutdown();
      void* tag = nullptr;
      bool ok = false;
      while (worker->cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Done(false);
      continue;
    }
    std::lock_guard lock(worker->mutex);
    worker->stopping = true;
    if (!worker->wake_set) {
      worker->wake_set = true;
      worker->alarm.Set(worker->cq.get(), gpr_time_0(GPR_CLOCK_MONOTONIC), &worker->wake);
    }
  }
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
    // Calls answered after the queue shut down (none when the member stopped first).
    for (Reply* call : worker->replies) call->SendReply();
    worker->replies.clear();
  }
}

template <typename Call, typename Fill>
void EtcdServices::Write(Call& call, size_t request_bytes, cairnpb::Command command, Fill fill) {
  if (request_bytes > options_.max_request_bytes) return call.Answer(TooLarge());
  node_.SubmitWrite(std::move(command),
                    [&call, fill](const Status& status, const mvcc::MvccStore* store,
                                  const mvcc::ResponseOp* result, const ReplyHeader& header) {
                      if (!status.ok()) return call.Answer(status);
                      fill(*store, result, &call.response());
                      ToProto(header, call.response().mutable_header());
                      call.Answer(grpc::Status::OK);
                    });
}

template <typename Call, typename ReadFn>
void EtcdServices::Read(Call& call, bool linearizable, ReadFn read) {
  node_.SubmitRead(linearizable, [&call, read](const Status& status, mvcc::MvccStore* store,
                                               const ReplyHeader& header) {
    if (!status.ok()) return call.Answer(status);
    const Status result = read(*store, call.request(), &call.response());
    if (!result.ok()) return call.Answer(result);
    ToProto(header, call.response().mutable_header());
    call.Answer(grpc::Status::OK);
  });
}

template <typename Call>
void EtcdServices::Range(Call& call) {
  if (call.request().key().empty()) return call.Answer(EmptyKey());
  Read(call, !call.request().serializable(),
       [](mvcc::MvccStore& store, const etcdserverpb::RangeRequest& request,
          etcdserverpb::RangeResponse* response) {
         auto range = store.Range(FromProto(request));
         if (!range.ok()) return range.status();
         ToProto(store, *range, response);
         return Status::Ok();
       });
}

template <typename Call>
void EtcdServices::Put(Call& call) {
  if (call.request().key().empty()) return call.Answer(EmptyKey());
  const size_t request_bytes = call.request().ByteSizeLong();
  cairnpb::Command command;
  command.mutable_put()->Swap(&call.request());  // The call no longer needs its request.
  Write(call, request_bytes, std::move(command),
        [](const mvcc::MvccStore& store, const mvcc::ResponseOp* result,
           etcdserverpb::PutResponse* out) {
          ToProto(store, std::get<mvcc::PutResponse>(result->response), out);
        });
}

template <typename Call>
void EtcdServices::DeleteRange(Call& call) {
  if (call.request().key().empty()) return call.Answer(EmptyKey());
  const size_t request_bytes = call.request().ByteSizeLong();
  cairnpb::Command command;
  command.mutable_delete_range()->Swap(&call.request());
  Write(call, request_bytes, std::move(command),
        [](const mvcc::MvccStore& store, const mvcc::ResponseOp* result,
           etcdserverpb::DeleteRangeResponse* out) {
          ToProto(store, std::get<mvcc::DeleteRangeResponse>(result->response), out);
        });
}

template <typename Call>
void EtcdServices::Txn(Call& call) {
  if (call.request().ByteSizeLong() > options_.max_request_bytes) return call.Answer(TooLarge());
  if (IsReadOnly(call.request())) {
    // etcd serves a transaction without writes as a read: after a read-index round unless every
    // range in it asks to be serializable.
    Read(call, !IsSerializable(call.request()),
         [](mvcc::MvccStore& store, const etcdserverpb::TxnRequest& request,
            etcdserverpb::TxnResponse* response) {
           const Revision before = store.current_revision();
           auto txn = store.Txn(FromProto(request), HybridTimestamp{});
           CAIRN_CHECK(store.current_revision() == before,
                       "a read-only transaction does not write");
           if (!txn.ok()) return txn.status();
           ToProto(store, *txn, response);
           return Status::Ok();
         });
    return;
  }
  cairnpb::Command command;
  command.mutable_txn()->Swap(&call.request());
  Write(call, 0, std::move(command),
        [](const mvcc::MvccStore& store, const mvcc::ResponseOp* result,
           etcdserverpb::TxnResponse* out) {
          ToProto(store, std::get<mvcc::TxnResponse>(result->response), out);
        });
}

template <typename Call>
void EtcdServices::Compact(Call& call) {
  cairnpb::Command command;
  command.mutable_compaction()->Swap(&call.request());
  Write(call, 0, std::move(command),
        [](const mvcc::MvccStore&, const mvcc::ResponseOp*, etcdserverpb::CompactionResponse*) {});
}

template <typename Call>
void EtcdServices::MaintenanceStatus(Call& call) {
  node_.SubmitStatus([&call](const MemberStatus& status) {
    if (status.header.member_id == 0) {
      return call.Answer(Status::Unavailable(std::string(kErrorStopped)));
    }
    etcdserverpb::StatusResponse& response = call.response();
    ToProto(status.header, response.mutable_header());
    response.set_version(std::string(kEtcdApiVersion));
    response.set_dbsize(static_cast<int64_t>(status.bytes_used));
    response.set_dbsizeinuse(static_cast<int64_t>(status.bytes_used));
    response.set_leader(status.leader.value());
    response.set_raftindex(status.commit_index.value());
    response.set_raftterm(status.header.raft_term);
    response.set_raftappliedindex(status.applied_index.value());
    response.set_islearner(status.is_learner);
    call.Answer(grpc::Status::OK);
  });
}

// The handlers for ClientPort's calls (the gRPC library's are instantiated by Start above).
template void EtcdServices::Range(WireCall<etcdserverpb::RangeRequest, etcdserverpb::RangeResponse>&);
template void EtcdServices::Put(WireCall<etcdserverpb::PutRequest, etcdserverpb::PutResponse>&);
template void EtcdServices::DeleteRange(
    WireCall<etcdserverpb::DeleteRangeRequest, etcdserverpb::DeleteRangeResponse>&);
template void EtcdServices::Txn(WireCall<etcdserverpb::TxnRequest, etcdserverpb::TxnResponse>&);
template void EtcdServices::Compact(
    WireCall<etcdserverpb::CompactionRequest, etcdserverpb::CompactionResponse>&);
template void EtcdServices::MaintenanceStatus(
    WireCall<etcdserverpb::StatusRequest, etcdserverpb::StatusResponse>&);

}  // namespace cairn::server
