// cairn-bench: a load generator speaking the etcd v3 gRPC API, so Cairn and etcd are measured the
// same way (issue #5).
//
// Design note. `--conns` gRPC channels carry `--clients` concurrent callers; each caller keeps one
// request in flight and issues the next when the previous completes (closed loop), optionally
// paced to `--rate` requests per second over all callers (open loop with a token schedule). All
// calls are asynchronous on completion queues, one polling thread per queue (`--threads`), so the
// client is not the bottleneck: it reports its own CPU seconds next to the server's throughput.
// Every latency is kept (8 bytes each) and sorted at the end for exact percentiles.
//
// A workload is a class that issues one request for a caller and checks its response (Workload
// below); `put`, `range` (linearizable or serializable), `txn-put` and `mixed` exist now, and
// watch or lease workloads plug in the same way when those services exist.
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
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"

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
};

std::string MakeKey(const Options& options, int64_t number) {
  std::string key = fmt::format("{:0{}d}", number, options.key_size);
  if (static_cast<int>(key.size()) > options.key_size) key = key.substr(key.size() - options.key_size);
  return key;
}

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
  enum class Kind { kPut, kRange, kTxn } kind = Kind::kPut;
};

class Workload {
 public:
  explicit Workload(const Options& options) : options_(options), value_(options.value_size, 'v') {}
  virtual ~Workload() = default;
  // Starts one request for `call` on `stub`, completing on `queue` with tag `call`.
  virtual void Issue(etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue, Call& call,
                     std::mt19937_64& random) = 0;

 protected:
  std::string NextKey(std::mt19937_64& random) {
    const int64_t number = options_.sequential_keys
                               ? sequence_.fetch_add(1, std::memory_order_relaxed) % options_.key_space
                               : static_cast<int64_t>(random() % options_.key_space);
    return MakeKey(options_, number);
  }
  void IssuePut(etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue, Call& call,
                std::mt19937_64& random) {
    etcdserverpb::PutRequest request;
    request.set_key(NextKey(random));
    request.set_value(value_);
    call.kind = Call::Kind::kPut;
    call.put_reader = stub.AsyncPut(&call.context, request, &queue);
    call.put_reader->Finish(&call.put, &call.status, &call);
  }
  void IssueRange(etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue, Call& call,
                  std::mt19937_64& random, bool serializable) {
    etcdserverpb::RangeRequest request;
    request.set_key(NextKey(random));
    request.set_serializable(serializable);
    call.kind = Call::Kind::kRange;
    call.range_reader = stub.AsyncRange(&call.context, request, &queue);
    call.range_reader->Finish(&call.range, &call.status, &call);
  }

  const Options& options_;
  const std::string value_;
  std::atomic<int64_t> sequence_{0};
};

class PutWorkload final : public Workload {
 public:
  using Workload::Workload;
  void Issue(etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue, Call& call,
             std::mt19937_64& random) override {
    IssuePut(stub, queue, call, random);
  }
};

class RangeWorkload final : public Workload {
 public:
  RangeWorkload(const Options& options, bool serializable)
      : Workload(options), serializable_(serializable) {}
  void Issue(etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue, Call& call,
             std::mt19937_64& random) override {
    IssueRange(stub, queue, call, random, serializable_);
  }

 private:
  const bool serializable_;
};

// Compare-and-swap shaped: one compare (the key's version >= 0, true for any key) and one put.
class TxnPutWorkload final : public Workload {
 public:
  using Workload::Workload;
  void Issue(etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue, Call& call,
             std::mt19937_64& random) override {
    etcdserverpb::TxnRequest request;
    const std::string key = NextKey(random);
    auto* compare = request.add_compare();
    compare->set_key(key);
    compare->set_target(etcdserverpb::Compare::VERSION);
    compare->set_result(etcdserverpb::Compare::GREATER);
    compare->set_version(-1);
    auto* put = request.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value_);
    call.kind = Call::Kind::kTxn;
    call.txn_reader = stub.AsyncTxn(&call.context, request, &queue);
    call.txn_reader->Finish(&call.txn, &call.status, &call);
  }
};

class MixedWorkload final : public Workload {
 public:
  using Workload::Workload;
  void Issue(etcdserverpb::KV::Stub& stub, grpc::CompletionQueue& queue, Call& call,
             std::mt19937_64& random) override {
    if (std::uniform_real_distribution<double>(0, 1)(random) < options_.read_ratio) {
      IssueRange(stub, queue, call, random, false);
    } else {
      IssuePut(stub, queue, call, random);
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
};

// Runs `workload` over all callers until `total` requests or `duration_s` pass.
Result Run(const Options& options, Workload& workload,
           std::vector<std::unique_ptr<etcdserverpb::KV::Stub>>& stubs, int64_t total,
           double duration_s, double rate) {
  const int threads = std::max(1, options.threads);
  std::vector<std::unique_ptr<grpc::CompletionQueue>> queues;
  for (int i = 0; i < threads; ++i) queues.push_back(std::make_unique<grpc::CompletionQueue>());
  std::atomic<int64_t> issued{0};
  const auto start = Clock::now();
  const auto deadline = duration_s > 0 ? start + std::chrono::duration_cast<Clock::duration>(
                                                     std::chrono::duration<double>(duration_s))
                                       : Clock::time_point::max();
  std::mutex result_mutex;
  Result result;
  result.latencies_ns.reserve(total > 0 ? static_cast<size_t>(total) : 1u << 20);
  const double cpu_before = CpuSeconds();

  // Returns false when the run is over (no more requests to issue).
  auto claim = [&]() -> bool {
    if (Clock::now() >= deadline) return false;
    const int64_t n = issued.fetch_add(1, std::memory_order_relaxed);
    if (total > 0 && n >= total) return false;
    if (rate > 0) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(static_cast<double>(n) / rate));
      std::this_thread::sleep_until(due);
    }
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
        workload.Issue(*stubs[caller % stubs.size()], queue, *call, random);
        calls.push_back(std::move(call));
        ++outstanding;
      }
      std::vector<int64_t> latencies;
      int64_t ok = 0;
      int64_t errors = 0;
      std::string first_error;
      while (outstanding > 0) {
        void* tag = nullptr;
        bool fine = false;
        if (!queue.Next(&tag, &fine)) break;
        Call* call = static_cast<Call*>(tag);
        --outstanding;
        latencies.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - call->started)
                .count());
        if (call->status.ok()) {
          ++ok;
        } else {
          ++errors;
          if (first_error.empty()) first_error = call->status.error_message();
        }
        if (!claim()) continue;
        const int caller = call->caller;
        // A ClientContext is single-use: start the next call on a fresh one.
        auto next = std::make_unique<Call>();
        next->caller = caller;
        next->started = Clock::now();
        workload.Issue(*stubs[caller % stubs.size()], queue, *next, random);
        for (auto& slot : calls) {
          if (slot.get() == call) {
            slot = std::move(next);
            break;
          }
        }
        ++outstanding;
      }
      std::lock_guard lock(result_mutex);
      result.ok += ok;
      result.errors += errors;
      if (result.first_error.empty()) result.first_error = first_error;
      result.latencies_ns.insert(result.latencies_ns.end(), latencies.begin(), latencies.end());
    });
  }
  for (auto& poller : pollers) poller.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.client_cpu_seconds = CpuSeconds() - cpu_before;
  for (auto& queue : queues) {
    queue->Shutdown();
    void* tag = nullptr;
    bool fine = false;
    while (queue->Next(&tag, &fine)) {
    }
  }
  return result;
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[index]) / 1e6;  // ms
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"cairn-bench: etcd v3 API load generator (measures Cairn and etcd the same way)"};
  app.add_option("--endpoints", options.endpoints, "Comma-separated host:port list")->capture_default_str();
  app.add_option("--workload", options.workload, "put, range, range-serializable, txn-put, mixed")
      ->check(CLI::IsMember({"put", "range", "range-serializable", "txn-put", "mixed"}))
      ->capture_default_str();
  app.add_option("--conns", options.conns, "gRPC connections (channels)")->capture_default_str();
  app.add_option("--clients", options.clients, "Concurrent callers, one request in flight each")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Completion-queue threads")->capture_default_str();
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
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int i = 0; i < options.conns; ++i) {
    grpc::ChannelArguments arguments;
    arguments.SetInt("cairn-bench-channel", i);  // Distinct arguments: distinct connections.
    arguments.SetMaxReceiveMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(endpoints[i % endpoints.size()],
                                             grpc::InsecureChannelCredentials(), arguments);
    stubs.push_back(etcdserverpb::KV::NewStub(channel));
  }

  if (options.preload > 0) {
    Options preload = options;
    preload.sequential_keys = true;
    preload.key_space = options.preload;
    PutWorkload writer(preload);
    Result loaded = Run(preload, writer, stubs, options.preload, 0, 0);
    if (loaded.errors > 0) {
      std::fprintf(stderr, "cairn-bench: preload failed: %lld errors, first: %s\n",
                   static_cast<long long>(loaded.errors), loaded.first_error.c_str());
      return 1;
    }
  }

  auto workload = MakeWorkload(options);
  Result result = Run(options, *workload, stubs, options.total, options.total > 0 ? 0 : options.duration_s,
                      options.rate);
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
        "\"client_cpu_seconds\":%.3f,\"first_error\":\"%s\"}\n",
        options.workload.c_str(), options.conns, options.clients, options.key_size, options.value_size,
        static_cast<long long>(result.ok), static_cast<long long>(result.errors), result.seconds,
        throughput, mean, p50, p90, p99, p999, max, result.client_cpu_seconds,
        result.first_error.substr(0, 200).c_str());
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
  }
  return result.errors > 0 && result.ok == 0 ? 1 : 0;
}
