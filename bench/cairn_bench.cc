// cairn-bench: a load generator speaking the etcd v3 gRPC API, so Cairn and etcd are measured the
// same way (issue #5).
//
// Design note. `--conns` connections carry `--clients` concurrent callers; each caller keeps one
// request in flight and issues the next when the previous completes (closed loop), optionally
// paced to `--rate` requests per second over all callers (open loop with a token schedule). It
// reports its own CPU seconds next to the server's throughput, so a reader can see whether the
// client was the limit. Every latency is kept (8 bytes each) and sorted at the end for exact
// percentiles.
//
// Two clients speak the same gRPC wire protocol (`--client`):
// - cairn (default): Cairn's own HTTP/2 and gRPC client (src/http2/grpc_client.h) on Asio,
//   `--threads` event-loop threads each owning some connections. A connection writes every
//   request its callers issued in one event-loop turn with one write.
// - grpc: the gRPC C++ library's asynchronous stubs on completion queues, one polling thread per
//   queue (`--threads`) — what the figures in docs/benchmarks.md before 2026-11-26 13:00 were
//   measured with. With 100 callers on 2 CPUs most of a call's latency was spent inside it (its
//   poller serves every connection in turn), so it set the pace for both servers.
//
// `--timeline-ms N` also prints the run in buckets of N ms by completion time (requests/s, p50,
// p99, max of each): a tail that comes from a few stalls (a snapshot, a log roll, a leader
// change) shows there as a few bad buckets, where the whole-run percentiles cannot tell it from
// requests that are all a little slow.
//
// A workload is a class that makes one request for a caller (Workload below); `put`, `range`
// (linearizable or serializable), `txn-put` and `mixed` exist now, and watch or lease workloads
// plug in the same way when those services exist.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include <asio.hpp>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "http2/grpc_client.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string endpoints = "127.0.0.1:2379";
  std::string workload = "put";
  int conns = 10;
  int clients = 100;
  int threads = 2;
  int key_size = 8;
  int value_size = 256;
  int64_t key_space = 100'000;
  bool sequential_keys = false;
  int64_t total = 0;
  double duration_s = 10;
  double rate = 0;
  double read_ratio = 0.9;  // mixed: fraction of ranges.
  int64_t preload = 0;      // Keys [0, preload) written before measuring.
  bool json = false;
  std::string client = "cairn";
  int timeline_ms = 0;  // > 0: also report the run in buckets of this many ms.
};

std::string MakeKey(const Options& options, int64_t number) {
  std::string key = fmt::format("{:0{}d}", number, options.key_size);
  if (static_cast<int>(key.size()) > options.key_size) key = key.substr(key.size() - options.key_size);
  return key;
}

// One request of a workload, in any of the shapes the workloads send.
struct Request {
  enum class Kind { kPut, kRange, kTxn } kind = Kind::kPut;
  etcdserverpb::PutRequest put;
  etcdserverpb::RangeRequest range;
  etcdserverpb::TxnRequest txn;

  const char* path() const {
    switch (kind) {
      case Kind::kPut:
        return "/etcdserverpb.KV/Put";
      case Kind::kRange:
        return "/etcdserverpb.KV/Range";
      case Kind::kTxn:
        return "/etcdserverpb.KV/Txn";
    }
    return "";
  }
  const google::protobuf::MessageLite& message() const {
    switch (kind) {
      case Kind::kPut:
        return put;
      case Kind::kRange:
        return range;
      case Kind::kTxn:
        return txn;
    }
    return put;
  }
};

class Workload {
 public:
  explicit Workload(const Options& options) : options_(options), value_(options.value_size, 'v') {}
  virtual ~Workload() = default;
  // Fills `request` with a caller's next request.
  virtual void Make(Request& request, std::mt19937_64& random) = 0;

 protected:
  std::string NextKey(std::mt19937_64& random) {
    const int64_t number = options_.sequential_keys
                               ? sequence_.fetch_add(1, std::memory_order_relaxed) % options_.key_space
                               : static_cast<int64_t>(random() % options_.key_space);
    return MakeKey(options_, number);
  }
  void MakePut(Request& request, std::mt19937_64& random) {
    request.kind = Request::Kind::kPut;
    request.put.set_key(NextKey(random));
    request.put.set_value(value_);
  }
  void MakeRange(Request& request, std::mt19937_64& random, bool serializable) {
    request.kind = Request::Kind::kRange;
    request.range.set_key(NextKey(random));
    request.range.set_serializable(serializable);
  }

  const Options& options_;
  const std::string value_;
  std::atomic<int64_t> sequence_{0};
};

class PutWorkload final : public Workload {
 public:
  using Workload::Workload;
  void Make(Request& request, std::mt19937_64& random) override { MakePut(request, random); }
};

class RangeWorkload final : public Workload {
 public:
  RangeWorkload(const Options& options, bool serializable)
      : Workload(options), serializable_(serializable) {}
  void Make(Request& request, std::mt19937_64& random) override {
    MakeRange(request, random, serializable_);
  }

 private:
  const bool serializable_;
};

// Compare-and-swap shaped: one compare (the key's version >= 0, true for any key) and one put.
class TxnPutWorkload final : public Workload {
 public:
  using Workload::Workload;
  void Make(Request& request, std::mt19937_64& random) override {
    request.kind = Request::Kind::kTxn;
    request.txn.Clear();
    const std::string key = NextKey(random);
    auto* compare = request.txn.add_compare();
    compare->set_key(key);
    compare->set_target(etcdserverpb::Compare::VERSION);
    compare->set_result(etcdserverpb::Compare::GREATER);
    compare->set_version(-1);
    auto* put = request.txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value_);
  }
};

class MixedWorkload final : public Workload {
 public:
  using Workload::Workload;
  void Make(Request& request, std::mt19937_64& random) override {
    if (std::uniform_real_distribution<double>(0, 1)(random) < options_.read_ratio) {
      MakeRange(request, random, false);
    } else {
      MakePut(request, random);
    }
  }
};

std::unique_ptr<Workload> MakeWorkload(const Options& options) {
  if (options.workload == "put") return std::make_unique<PutWorkload>(options);
  if (options.workload == "range") return std::make_unique<RangeWorkload>(options, false);
  if (options.workload == "range-serializable") return std::make_unique<RangeWorkload>(options, true);
  if (options.workload == "txn-put") return std::make_unique<TxnPutWorkload>(options);
  if (options.workload == "mixed") return std::make_unique<MixedWorkload>(options);
  return nullptr;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Result {
  int64_t ok = 0;
  int64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  double client_cpu_seconds = 0;
  std::vector<int64_t> latencies_ns;
  // When each request completed, in ms since the run started: completed_ms[i] goes with
  // latencies_ns[i] (until latencies_ns is sorted).
  std::vector<uint32_t> completed_ms;
};

// What a driver thread gathers, merged into the Result at its end.
struct Tally {
  int64_t ok = 0;
  int64_t errors = 0;
  std::string first_error;
  std::vector<int64_t> latencies_ns;
  std::vector<uint32_t> completed_ms;

  void Add(Clock::time_point run_start, Clock::time_point started, Clock::time_point now, bool fine,
           std::string_view error) {
    latencies_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - started).count());
    completed_ms.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - run_start).count()));
    if (fine) {
      ++ok;
    } else {
      ++errors;
      if (first_error.empty()) first_error = std::string(error);
    }
  }
};

// What every driver shares: when the run ends, which request is due when, and the results.
class Schedule {
 public:
  Schedule(int64_t total, double duration_s, double rate)
      : total_(total),
        rate_(rate),
        start_(Clock::now()),
        deadline_(duration_s > 0 ? start_ + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(duration_s))
                                 : Clock::time_point::max()) {
    result_.latencies_ns.reserve(total > 0 ? static_cast<size_t>(total) : 1u << 20);
  }

  Clock::time_point start() const { return start_; }

  // Claims the next request; false when the run is over. `*due` is when it may start (at once
  // unless --rate paces the run).
  bool Claim(Clock::time_point* due) {
    if (Clock::now() >= deadline_) return false;
    const int64_t n = issued_.fetch_add(1, std::memory_order_relaxed);
    if (total_ > 0 && n >= total_) return false;
    *due = rate_ > 0 ? start_ + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(static_cast<double>(n) / rate_))
                     : Clock::time_point::min();
    return true;
  }

  // One thread's results, merged once at its end.
  void Merge(const Tally& tally) {
    std::lock_guard lock(mutex_);
    result_.ok += tally.ok;
    result_.errors += tally.errors;
    if (result_.first_error.empty()) result_.first_error = tally.first_error;
    result_.latencies_ns.insert(result_.latencies_ns.end(), tally.latencies_ns.begin(),
                                tally.latencies_ns.end());
    result_.completed_ms.insert(result_.completed_ms.end(), tally.completed_ms.begin(),
                                tally.completed_ms.end());
  }

  Result Finish(double cpu_before) {
    result_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    result_.client_cpu_seconds = CpuSeconds() - cpu_before;
    return std::move(result_);
  }

 private:
  const int64_t total_;
  const double rate_;
  const Clock::time_point start_;
  const Clock::time_point deadline_;
  std::atomic<int64_t> issued_{0};
  std::mutex mutex_;
  Result result_;
};

// -- The gRPC C++ library's client (--client grpc) ------------------------------------------------

// One caller's in-flight call: the context, the response reader and the response live here.
struct Call {
  grpc::ClientContext context;
  grpc::Status status;
  etcdserverpb::PutResponse put;
  etcdserverpb::RangeResponse range;
  etcdserverpb::TxnResponse txn;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> put_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> range_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> txn_reader;
  Clock::time_point started;
  int caller = 0;
};

void IssueOnStub(Workload& workload, etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue,
                 Call& call, std::mt19937_64& random) {
  Request request;
  workload.Make(request, random);
  switch (request.kind) {
    case Request::Kind::kPut:
      call.put_reader = stub.AsyncPut(&call.context, request.put, &queue);
      call.put_reader->Finish(&call.put, &call.status, &call);
      break;
    case Request::Kind::kRange:
      call.range_reader = stub.AsyncRange(&call.context, request.range, &queue);
      call.range_reader->Finish(&call.range, &call.status, &call);
      break;
    case Request::Kind::kTxn:
      call.txn_reader = stub.AsyncTxn(&call.context, request.txn, &queue);
      call.txn_reader->Finish(&call.txn, &call.status, &call);
      break;
  }
}

// Runs `workload` over all callers until `total` requests or `duration_s` pass.
Result RunGrpcLibrary(const Options& options, Workload& workload,
                      const std::vector<std::string>& endpoints, int64_t total, double duration_s,
                      double rate) {
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int i = 0; i < options.conns; ++i) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("cairn-bench-channel", i);  // Distinct arguments: distinct connections.
    arguments.SetMaxReceiveMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(endpoints[i % endpoints.size()],
                                             grpc::InsecureChannelCredentials(), arguments);
    stubs.push_back(etcdserverpb::KV::NewStub(channel));
  }
  const int threads = std::max(1, options.threads);
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
  for (int i = 0; i < threads; ++i) queues.push_back(std::make_unique<grpc::CompletionQueue>());
  const double cpu_before = CpuSeconds();
  Schedule schedule(total, duration_s, rate);
  auto claim = [&]() -> bool {
    Clock::time_point due;
    if (!schedule.Claim(&due)) return false;
    if (due > Clock::now()) std::this_thread::sleep_until(due);
    return true;
  };

  std::vector<std::thread> pollers;
  for (int t = 0; t < threads; ++t) {
    pollers.emplace_back([&, t] {
      std::mt19937_64 random(1234 + t);
      grpc::CompletionQueue& queue = *queues[t];
      std::vector<std::unique_ptr<Call>> calls;
      int outstanding = 0;
      // Callers handled by this thread: every threads-th one.
      for (int caller = t; caller < options.clients; caller += threads) {
        if (!claim()) break;
        auto call = std::make_unique<Call>();
        call->caller = caller;
        call->started = Clock::now();
        IssueOnStub(workload, *stubs[caller % stubs.size()], queue, *call, random);
        calls.push_back(std::move(call));
        ++outstanding;
      }
      Tally tally;
      while (outstanding > 0) {
        void* tag = nullptr;
        bool fine = false;
        if (!queue.Next(&tag, &fine)) break;
        Call* call = static_cast<Call*>(tag);
        --outstanding;
        tally.Add(schedule.start(), call->started, Clock::now(), call->status.ok(),
                  call->status.error_message());
        if (!claim()) continue;
        const int caller = call->caller;
        // A ClientContext is single-use: start the next call on a fresh one.
        auto next = std::make_unique<Call>();
        next->caller = caller;
        next->started = Clock::now();
        IssueOnStub(workload, *stubs[caller % stubs.size()], queue, *next, random);
        for (auto& slot : calls) {
          if (slot.get() == call) {
            slot = std::move(next);
            break;
          }
        }
        ++outstanding;
      }
      schedule.Merge(tally);
    });
  }
  for (auto& poller : pollers) poller.join();
  Result result = schedule.Finish(cpu_before);
  for (auto& queue : queues) {
    queue->Shutdown();
    void* tag = nullptr;
    bool fine = false;
    while (queue->Next(&tag, &fine)) {
    }
  }
  return result;
}

// -- Cairn's own client (--client cairn) -----------------------------------------------------------

// One event-loop thread's share of the run: its connections, each with its callers.
class CairnClientThread {
 public:
  CairnClientThread(Workload& workload, Schedule& schedule, uint64_t seed)
      : workload_(workload), schedule_(schedule), random_(seed) {}

  // Connects to `endpoint` ("host:port"); false (with `*error`) if it cannot.
  bool AddConnection(const std::string& endpoint, std::string* error) {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos) {
      *error = "endpoint without a port: " + endpoint;
      return false;
    }
    asio::error_code code;
    asio::ip::tcp::resolver resolver(io_);
    auto resolved = resolver.resolve(endpoint.substr(0, colon), endpoint.substr(colon + 1), code);
    auto connection = std::make_unique<Connection>(io_, endpoint);
    if (!code) asio::connect(connection->socket, resolved, code);
    if (code) {
      *error = fmt::format("cannot connect to {}: {}", endpoint, code.message());
      return false;
    }
    connection->socket.set_option(asio::ip::tcp::no_delay(true), code);
    connections_.push_back(std::move(connection));
    return true;
  }

  void AddCaller(size_t connection) {
    callers_.push_back(std::make_unique<Caller>(io_));
    callers_.back()->connection = connections_.at(connection).get();
  }

  // Runs until every caller is done, then merges the results.
  void Run() {
    if (callers_.empty()) return schedule_.Merge(Tally{});
    for (auto& connection : connections_) Read(*connection);
    for (auto& caller : callers_) Next(*caller);
    for (auto& connection : connections_) Flush(*connection);
    io_.run();
    schedule_.Merge(tally_);
  }

 private:
  struct Caller;
  struct Connection {
    Connection(asio::io_context& io, const std::string& name)
        : socket(io), endpoint(name), client(ClientOptions(name)) {}
    static cairn::http2::GrpcClientOptions ClientOptions(const std::string& endpoint) {
      cairn::http2::GrpcClientOptions options;
      options.authority = endpoint;
      return options;
    }
    asio::ip::tcp::socket socket;
    std::string endpoint;
    cairn::http2::GrpcClient client;
    std::array<char, 64 * 1024> read_buffer{};
    std::string writing;
    bool write_in_flight = false;
    bool broken = false;
    std::unordered_map<uint64_t, Caller*> calls;  // Call id -> its caller.
  };
  struct Caller {
    explicit Caller(asio::io_context& io) : timer(io) {}
    Connection* connection = nullptr;
    Clock::time_point started;
    asio::steady_timer timer;  // --rate: waits for the request's due time.
    Request request;
  };

  // Claims and sends the caller's next request, or retires the caller when the run is over.
  void Next(Caller& caller) {
    Clock::time_point due;
    if (caller.connection->broken || !schedule_.Claim(&due)) {
      if (active_ == 0) Shutdown();
      return;
    }
    ++active_;
    if (due > Clock::now()) {
      caller.timer.expires_at(due);
      caller.timer.async_wait([this, &caller, due](asio::error_code) {
        Send(caller, due);
        Flush(*caller.connection);
      });
      return;
    }
    Send(caller, due);
  }

  // `due`: when --rate scheduled the request (latency counts from then, so a client that falls
  // behind its schedule shows it), or the earliest time point in a closed loop.
  void Send(Caller& caller, Clock::time_point due) {
    workload_.Make(caller.request, random_);
    const auto& message = caller.request.message();
    const size_t bytes = message.ByteSizeLong();
    std::string framed(cairn::http2::kGrpcMessagePrefixBytes + bytes, '\0');
    cairn::http2::WriteMessagePrefix(framed.data(), bytes);
    message.SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(framed.data() + cairn::http2::kGrpcMessagePrefixBytes));
    caller.started = due == Clock::time_point::min() ? Clock::now() : due;
    Connection& connection = *caller.connection;
    if (connection.broken) return Done(caller, false, "connection lost");
    const uint64_t id = connection.client.Call(caller.request.path(), std::move(framed));
    if (id == 0) return Done(caller, false, "too many calls queued on one connection");
    connection.calls[id] = &caller;
  }

  void Done(Caller& caller, bool ok, std::string_view error) {
    --active_;
    tally_.Add(schedule_.start(), caller.started, Clock::now(), ok, error);
    Next(caller);
  }

  void Read(Connection& connection) {
    connection.socket.async_read_some(
        asio::buffer(connection.read_buffer), [this, &connection](asio::error_code code, size_t n) {
          if (connection.broken) return;
          done_.clear();
          const bool alive =
              !code && connection.client.Receive(
                           std::string_view(connection.read_buffer.data(), n), &done_);
          // Calls finished by this read count before the connection's end fails the rest.
          for (const cairn::http2::GrpcResponse& response : done_) Answer(connection, response);
          if (!alive) Break(connection, code ? code.message() : "the server ended the connection");
          Flush(connection);
          if (alive) Read(connection);
        });
  }

  void Answer(Connection& connection, const cairn::http2::GrpcResponse& response) {
    auto it = connection.calls.find(response.call_id);
    if (it == connection.calls.end()) return;
    Caller& caller = *it->second;
    connection.calls.erase(it);
    Done(caller, response.code == cairn::http2::GrpcCode::kOk, response.message);
  }

  // Fails every call still open on the connection; its callers stop.
  void Break(Connection& connection, const std::string& why) {
    if (connection.broken) return;
    connection.broken = true;
    if (tally_.first_error.empty()) {
      tally_.first_error = fmt::format("{}: {}", connection.endpoint, why);
    }
    asio::error_code ignored;
    connection.socket.close(ignored);
    auto calls = std::move(connection.calls);
    for (const auto& [id, caller] : calls) Done(*caller, false, why);
  }

  // Writes everything the connection's session produced, one write at a time.
  void Flush(Connection& connection) {
    if (connection.write_in_flight || connection.broken) return;
    if (!connection.client.session().HasOutput()) return;
    connection.client.session().TakeOutput(&connection.writing);
    connection.write_in_flight = true;
    asio::async_write(connection.socket, asio::buffer(connection.writing),
                      [this, &connection](asio::error_code code, size_t) {
                        connection.write_in_flight = false;
                        if (code) return Break(connection, code.message());
                        Flush(connection);
                      });
  }

  // The run is over: closing the sockets ends the reads, and with them io_.run().
  void Shutdown() {
    for (auto& connection : connections_) {
      connection->broken = true;
      asio::error_code ignored;
      connection->socket.close(ignored);
    }
  }

  Workload& workload_;
  Schedule& schedule_;
  std::mt19937_64 random_;
  asio::io_context io_{1};
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Caller>> callers_;
  std::vector<cairn::http2::GrpcResponse> done_;
  int64_t active_ = 0;  // Callers with a request in flight or waiting for its due time.
  Tally tally_;
};

Result RunCairnClient(const Options& options, Workload& workload,
                      const std::vector<std::string>& endpoints, int64_t total, double duration_s,
                      double rate, std::string* error) {
  const int threads = std::max(1, std::min({options.threads, options.conns, options.clients}));
  std::vector<std::unique_ptr<CairnClientThread>> loops;
  Schedule schedule(total, duration_s, rate);
  for (int t = 0; t < threads; ++t) {
    loops.push_back(std::make_unique<CairnClientThread>(workload, schedule, 1234 + t));
  }
  // Connection i belongs to thread i % threads (as its (i / threads)-th); caller c uses
  // connection c % conns.
  for (int i = 0; i < options.conns; ++i) {
    if (!loops[i % threads]->AddConnection(endpoints[i % endpoints.size()], error)) return {};
  }
  for (int c = 0; c < options.clients; ++c) {
    const int connection = c % options.conns;
    loops[connection % threads]->AddCaller(static_cast<size_t>(connection / threads));
  }
  const double cpu_before = CpuSeconds();
  std::vector<std::thread> runners;
  for (auto& loop : loops) runners.emplace_back([&loop] { loop->Run(); });
  for (auto& runner : runners) runner.join();
  return schedule.Finish(cpu_before);
}

Result RunWorkload(const Options& options, Workload& workload,
                   const std::vector<std::string>& endpoints, int64_t total, double duration_s,
                   double rate, std::string* error) {
  if (options.client == "grpc") {
    return RunGrpcLibrary(options, workload, endpoints, total, duration_s, rate);
  }
  return RunCairnClient(options, workload, endpoints, total, duration_s, rate, error);
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[index]) / 1e6;  // ms
}

// One bucket of --timeline-ms: the requests that completed in [start_ms, start_ms + bucket).
struct TimelineBucket {
  uint32_t start_ms = 0;
  double requests_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  bool partial = false;  // The run ended inside it.
};

// Call before latencies_ns is sorted (it pairs latencies_ns[i] with completed_ms[i]).
std::vector<TimelineBucket> Timeline(const Result& result, int bucket_ms) {
  std::vector<std::vector<int64_t>> buckets;
  for (size_t i = 0; i < result.completed_ms.size() && i < result.latencies_ns.size(); ++i) {
    const size_t bucket = result.completed_ms[i] / static_cast<uint32_t>(bucket_ms);
    if (bucket >= buckets.size()) buckets.resize(bucket + 1);
    buckets[bucket].push_back(result.latencies_ns[i]);
  }
  std::vector<TimelineBucket> timeline;
  for (size_t b = 0; b < buckets.size(); ++b) {
    std::vector<int64_t>& latencies = buckets[b];
    std::sort(latencies.begin(), latencies.end());
    TimelineBucket bucket;
    bucket.start_ms = static_cast<uint32_t>(b * static_cast<size_t>(bucket_ms));
    // Over the whole bucket, also the last, which the end of the run may cut short.
    bucket.requests_per_second = static_cast<double>(latencies.size()) * 1000.0 / bucket_ms;
    bucket.partial = static_cast<double>(bucket.start_ms + static_cast<uint32_t>(bucket_ms)) >
                     result.seconds * 1000.0;
    bucket.p50_ms = Percentile(latencies, 0.50);
    bucket.p99_ms = Percentile(latencies, 0.99);
    bucket.max_ms = latencies.empty() ? 0 : static_cast<double>(latencies.back()) / 1e6;
    timeline.push_back(bucket);
  }
  return timeline;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"cairn-bench: etcd v3 API load generator (measures Cairn and etcd the same way)"};
  app.add_option("--endpoints", options.endpoints, "Comma-separated host:port list")->capture_default_str();
  app.add_option("--workload", options.workload, "put, range, range-serializable, txn-put, mixed")
      ->check(CLI::IsMember({"put", "range", "range-serializable", "txn-put", "mixed"}))
      ->capture_default_str();
  app.add_option("--conns", options.conns, "Connections (gRPC channels)")->capture_default_str();
  app.add_option("--clients", options.clients, "Concurrent callers, one request in flight each")
      ->capture_default_str();
  app.add_option("--threads", options.threads,
                 "Client threads (event loops, or completion-queue pollers with --client grpc)")
      ->capture_default_str();
  app.add_option("--key-size", options.key_size, "Key bytes")->capture_default_str();
  app.add_option("--val-size", options.value_size, "Value bytes")->capture_default_str();
  app.add_option("--key-space", options.key_space, "Distinct keys")->capture_default_str();
  app.add_flag("--sequential-keys", options.sequential_keys, "Keys in order instead of random");
  app.add_option("--total", options.total, "Requests to send (0: until --duration)")->capture_default_str();
  app.add_option("--duration", options.duration_s, "Seconds to run (0: until --total)")->capture_default_str();
  app.add_option("--rate", options.rate, "Target requests per second over all callers (0: as fast as possible)")
      ->capture_default_str();
  app.add_option("--read-ratio", options.read_ratio, "mixed: fraction of requests that are ranges")
      ->capture_default_str();
  app.add_option("--preload", options.preload, "Write keys [0, N) before measuring")->capture_default_str();
  app.add_flag("--json", options.json, "One JSON object instead of the table");
  app.add_option("--timeline-ms", options.timeline_ms,
                 "Also report the run in buckets of this many ms (requests/s, p50, p99, max)")
      ->check(CLI::Range(0, 3'600'000))
      ->capture_default_str();
  app.add_option("--client", options.client,
                 "cairn (Cairn's own HTTP/2 gRPC client) or grpc (the gRPC C++ library)")
      ->check(CLI::IsMember({"cairn", "grpc"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (options.conns < 1 || options.clients < 1 || options.key_space < 1 ||
      (options.total <= 0 && options.duration_s <= 0)) {
    std::fprintf(stderr, "cairn-bench: need conns, clients, key-space >= 1 and --total or --duration\n");
    return 2;
  }

  std::vector<std::string> endpoints;
  for (size_t start = 0; start <= options.endpoints.size();) {
    const size_t comma = std::min(options.endpoints.find(',', start), options.endpoints.size());
    if (comma > start) endpoints.push_back(options.endpoints.substr(start, comma - start));
    start = comma + 1;
  }
  std::string error;
  if (options.preload > 0) {
    Options preload = options;
    preload.sequential_keys = true;
    preload.key_space = options.preload;
    PutWorkload writer(preload);
    Result loaded = RunWorkload(preload, writer, endpoints, options.preload, 0, 0, &error);
    if (!error.empty() || loaded.errors > 0) {
      std::fprintf(stderr, "cairn-bench: preload failed: %s%lld errors, first: %s\n",
                   error.empty() ? "" : (error + "; ").c_str(),
                   static_cast<long long>(loaded.errors), loaded.first_error.c_str());
      return 1;
    }
  }

  auto workload = MakeWorkload(options);
  Result result = RunWorkload(options, *workload, endpoints, options.total,
                              options.total > 0 ? 0 : options.duration_s, options.rate, &error);
  if (!error.empty()) {
    std::fprintf(stderr, "cairn-bench: %s\n", error.c_str());
    return 1;
  }
  const std::vector<TimelineBucket> timeline =
      options.timeline_ms > 0 ? Timeline(result, options.timeline_ms) : std::vector<TimelineBucket>{};
  std::sort(result.latencies_ns.begin(), result.latencies_ns.end());
  const double throughput = static_cast<double>(result.ok) / result.seconds;
  const double p50 = Percentile(result.latencies_ns, 0.50), p90 = Percentile(result.latencies_ns, 0.90),
               p99 = Percentile(result.latencies_ns, 0.99), p999 = Percentile(result.latencies_ns, 0.999),
               max = result.latencies_ns.empty() ? 0 : static_cast<double>(result.latencies_ns.back()) / 1e6;
  const double mean = result.latencies_ns.empty()
                          ? 0
                          : static_cast<double>(std::accumulate(result.latencies_ns.begin(),
                                                                result.latencies_ns.end(), int64_t{0})) /
                                static_cast<double>(result.latencies_ns.size()) / 1e6;
  if (options.json) {
    std::printf(
        "{\"workload\":\"%s\",\"conns\":%d,\"clients\":%d,\"key_size\":%d,\"val_size\":%d,"
        "\"ok\":%lld,\"errors\":%lld,\"seconds\":%.3f,\"throughput\":%.1f,\"mean_ms\":%.3f,"
        "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
        "\"client_cpu_seconds\":%.3f,\"first_error\":\"%s\"",
        options.workload.c_str(), options.conns, options.clients, options.key_size, options.value_size,
        static_cast<long long>(result.ok), static_cast<long long>(result.errors), result.seconds,
        throughput, mean, p50, p90, p99, p999, max, result.client_cpu_seconds,
        result.first_error.substr(0, 200).c_str());
    if (options.timeline_ms > 0) {
      // [start ms, requests/s, p50 ms, p99 ms, max ms] per bucket; requests/s counts the whole
      // bucket, also the last one, which the run's end may cut short.
      std::printf(",\"timeline_ms\":%d,\"timeline\":[", options.timeline_ms);
      for (size_t i = 0; i < timeline.size(); ++i) {
        const TimelineBucket& b = timeline[i];
        std::printf("%s[%u,%.1f,%.3f,%.3f,%.3f]", i == 0 ? "" : ",", b.start_ms,
                    b.requests_per_second, b.p50_ms, b.p99_ms, b.max_ms);
      }
      std::printf("]");
    }
    std::printf("}\n");
  } else {
    std::printf("workload %s: %d conns, %d clients, %d-byte keys, %d-byte values\n",
                options.workload.c_str(), options.conns, options.clients, options.key_size,
                options.value_size);
    std::printf("  requests   %lld ok, %lld errors in %.2f s%s%s\n", static_cast<long long>(result.ok),
                static_cast<long long>(result.errors), result.seconds,
                result.first_error.empty() ? "" : "; first error: ", result.first_error.c_str());
    std::printf("  throughput %.0f requests/s\n", throughput);
    std::printf("  latency ms mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", mean,
                p50, p90, p99, p999, max);
    std::printf("  client CPU %.2f s (%.0f%% of one core)\n", result.client_cpu_seconds,
                100 * result.client_cpu_seconds / result.seconds);
    if (options.timeline_ms > 0) {
      std::printf("  timeline (by completion time, %d ms buckets)\n", options.timeline_ms);
      std::printf("    %9s %12s %9s %9s %9s\n", "from s", "requests/s", "p50 ms", "p99 ms", "max ms");
      for (const TimelineBucket& b : timeline) {
        std::printf("    %9.3f %12.0f %9.3f %9.3f %9.3f%s\n", b.start_ms / 1000.0,
                    b.requests_per_second, b.p50_ms, b.p99_ms, b.max_ms,
                    b.partial ? "  (the run ended in this bucket)" : "");
      }
    }
  }
  return result.errors > 0 && result.ok == 0 ? 1 : 0;
}
