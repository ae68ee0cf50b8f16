// bench/runtime_bench.cpp — a Runtime with 2 worker threads: spawn throughput from main, cross-thread wake
// latency (plain thread -> fiber, fiber on worker 0 -> fiber on worker 1), a skewed load with work stealing
// on and off, and yield/token rings across the two workers. Wall-clock time throughout (UseRealTime): the
// work is spread over threads. docs/benchmarks.md has the figures and what the machine was doing.
//
// Latencies are steady_clock differences between the waker's timestamp (taken just before it sets the
// Event or sends on the Channel) and the woken fiber's timestamp (taken first thing after its wait
// returns); they are reported as p50/p90/p99 counters, in nanoseconds, over a fixed number of samples.
#include <benchmark/benchmark.h>

#include <fiberio/fiberio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Ns = std::int64_t;

Ns now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

fiberio::Config two_workers(bool stealing) {
  fiberio::Config config;
  config.threads = 2;
  config.work_stealing = stealing;
  return config;
}

// Sets p50/p90/p99 (ns) counters from `samples` (reordered).
void report_percentiles(benchmark::State& state, std::vector<Ns>& samples, const char* prefix = "") {
  if (samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return static_cast<double>(
        samples[static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1))]);
  };
  const std::string p(prefix);
  state.counters[p + "p50_ns"] = at(0.50);
  state.counters[p + "p90_ns"] = at(0.90);
  state.counters[p + "p99_ns"] = at(0.99);
}

std::uint64_t total_stolen(const fiberio::Runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& s : rt.stats())
    n += s.fibers_stolen;
  return n;
}

// Backend waits of all workers that ended through the wake channel (a cross-thread unpark).
std::uint64_t total_unparks(const fiberio::Runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& s : rt.stats())
    n += s.unparks;
  return n;
}

// --- spawn from main -----------------------------------------------------------------------------------

// One iteration: main spawns `n` fibers that return at once (round-robin over the workers), then joins them
// in order (a plain thread blocks on each). Arg: stealing.
void BM_SpawnFromMain(benchmark::State& state) {
  constexpr std::size_t n = 1000;
  fiberio::Runtime rt{two_workers(state.range(0) != 0)};
  std::vector<fiberio::JoinHandle<int>> handles;
  handles.reserve(n);
  for (auto _ : state) {
    handles.clear();
    for (std::size_t i = 0; i < n; ++i)
      handles.push_back(rt.spawn([] { return 1; }));
    for (auto& h : handles)
      benchmark::DoNotOptimize(h.join());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  state.counters["ns_per_fiber"] = benchmark::Counter(
      static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_SpawnFromMain)->ArgName("stealing")->Arg(0)->Arg(1)->UseRealTime();

// --- plain thread -> fiber -----------------------------------------------------------------------------

// The benchmark thread wakes a fiber parked on worker 0: Event::set() (Arg kind 0) or Channel::send()
// (kind 1). After each sample the fiber acknowledges through an atomic the thread waits on (futex), so the
// thread is asleep while the fiber runs. Args: kind, stealing, gap_us: pause before each wake (0: at once,
// the worker may still be busy going to sleep; 50: the worker is parked in its backend wait, so the wake
// includes the eventfd write and the epoll wake-up). Also reports unparks_per_wake (backend waits of either
// worker ended by a cross-thread unpark, per sample) and on_worker1_share (samples in which the fiber ran on
// worker 1: with stealing on, a woken worker may take it from worker 0's inbox).
void BM_WakeThreadToFiber(benchmark::State& state) {
  const bool use_channel = state.range(0) != 0;
  const bool stealing = state.range(1) != 0;
  const auto gap = std::chrono::microseconds(state.range(2));
  fiberio::Runtime rt{two_workers(stealing)};
  fiberio::Event event;
  fiberio::Channel<Ns> channel;
  std::atomic<Ns> sent{0};
  std::atomic<std::uint64_t> acked{0};
  std::vector<Ns> samples;
  samples.reserve(static_cast<std::size_t>(state.max_iterations));
  std::atomic<bool> stop{false};
  std::uint64_t on_worker1 = 0;  // samples the fiber received while running on worker 1

  auto fiber = rt.spawn_on(0, [&] {
    for (std::uint64_t seq = 1;; ++seq) {
      Ns t0;
      if (use_channel) {
        auto v = channel.recv();
        const Ns t1 = now_ns();
        if (!v) return;
        t0 = *v;
        samples.push_back(t1 - t0);
        if (fiberio::this_fiber::worker_index() == 1) ++on_worker1;
      } else {
        event.wait();
        const Ns t1 = now_ns();
        if (stop.load(std::memory_order_acquire)) return;
        samples.push_back(t1 - sent.load(std::memory_order_relaxed));
        if (fiberio::this_fiber::worker_index() == 1) ++on_worker1;
        event.reset();
      }
      acked.store(seq, std::memory_order_release);
      acked.notify_one();
    }
  });

  std::this_thread::sleep_for(1ms);  // let the workers settle (park) before counting
  const std::uint64_t unparks_before = total_unparks(rt);
  std::uint64_t seq = 0;
  for (auto _ : state) {
    if (gap.count() > 0) std::this_thread::sleep_for(gap);
    ++seq;
    if (use_channel) {
      channel.send(now_ns());
    } else {
      sent.store(now_ns(), std::memory_order_relaxed);
      event.set();
    }
    for (std::uint64_t a = acked.load(std::memory_order_acquire); a != seq;
         a = acked.load(std::memory_order_acquire)) {
      acked.wait(a, std::memory_order_acquire);
    }
  }
  const std::uint64_t unparks = total_unparks(rt) - unparks_before;
  stop.store(true, std::memory_order_release);
  event.set();
  channel.close();
  fiber.join();
  report_percentiles(state, samples);
  const auto n = static_cast<double>(state.iterations());
  state.counters["unparks_per_wake"] = static_cast<double>(unparks) / n;
  state.counters["on_worker1_share"] = static_cast<double>(on_worker1) / n;
}
BENCHMARK(BM_WakeThreadToFiber)
    ->ArgNames({"channel", "stealing", "gap_us"})
    ->Args({0, 1, 0})
    ->Args({0, 1, 50})
    ->Args({0, 0, 50})
    ->Args({1, 1, 50})
    ->Iterations(5000)
    ->UseRealTime();

// --- fiber on worker 0 -> fiber on worker 1 ------------------------------------------------------------

// Fiber A (placed on worker 0) sends a timestamp on a channel, fiber B (placed on worker 1) receives it
// and answers with its own timestamp; one iteration is that round trip (two wakes, each of a fiber parked
// on its channel). The timed loop runs inside fiber A. Reports the A->B and B->A latencies and the share of
// samples B received on another worker than A ("cross_share"). With stealing on, schedule() runs a woken
// fiber on the waker's worker (hot cache), so B joins A after the first message and the wakes stop being
// cross-thread: that is the fiberio policy this measures, not a bug of the benchmark. Arg: stealing.
void BM_WakeFiberToFiber(benchmark::State& state) {
  fiberio::Runtime rt{two_workers(state.range(0) != 0)};
  fiberio::Channel<Ns> to_b, to_a;
  std::vector<Ns> ab, ba;
  ab.reserve(static_cast<std::size_t>(state.max_iterations));
  ba.reserve(static_cast<std::size_t>(state.max_iterations));
  std::atomic<int> a_worker{-1};
  std::uint64_t cross = 0;

  auto b = rt.spawn_on(1, [&] {
    while (auto v = to_b.recv()) {
      const Ns t1 = now_ns();
      ab.push_back(t1 - *v);
      if (fiberio::this_fiber::worker_index() != a_worker.load(std::memory_order_relaxed)) ++cross;
      to_a.send(now_ns());
    }
  });
  rt.spawn_on(0, [&] {
      for (auto _ : state) {
        a_worker.store(fiberio::this_fiber::worker_index(), std::memory_order_relaxed);
        to_b.send(now_ns());
        auto v = to_a.recv();
        const Ns t1 = now_ns();
        ba.push_back(t1 - *v);
      }
      to_b.close();
    }).join();
  b.join();
  report_percentiles(state, ab, "a_to_b_");
  report_percentiles(state, ba, "b_to_a_");
  state.counters["cross_share"] =
      ab.empty() ? 0.0 : static_cast<double>(cross) / static_cast<double>(ab.size());
}
BENCHMARK(BM_WakeFiberToFiber)->ArgName("stealing")->Arg(0)->Arg(1)->Iterations(20000)->UseRealTime();

// --- skewed load ---------------------------------------------------------------------------------------

// A unit of CPU-bound work, ~20 us on this machine (BM_WorkUnit measures it): a dependent multiply chain.
std::uint64_t work_unit(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (int i = 0; i < 16'000; ++i)
    x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x;
}

void BM_WorkUnit(benchmark::State& state) {
  std::uint64_t seed = 1;
  for (auto _ : state)
    benchmark::DoNotOptimize(seed = work_unit(seed));
}
BENCHMARK(BM_WorkUnit);

// One fiber, on worker 0, produces all the work: it spawns 256 CPU-bound fibers (one work unit each) on its
// own worker and joins them. Without stealing worker 1 stays idle; with it, worker 1 steals half of worker
// 0's queue. One iteration is one such burst (ideal: 256 units / 2 cores). Reports fibers stolen per burst.
// Arg: stealing.
void BM_SkewedLoad(benchmark::State& state) {
  constexpr int kFibers = 256;
  fiberio::Runtime rt{two_workers(state.range(0) != 0)};
  const std::uint64_t stolen_before = total_stolen(rt);
  for (auto _ : state) {
    rt.spawn_on(0, [] {
        std::vector<fiberio::JoinHandle<std::uint64_t>> handles;
        handles.reserve(kFibers);
        for (int i = 0; i < kFibers; ++i) {
          handles.push_back(fiberio::spawn([i] { return work_unit(static_cast<std::uint64_t>(i) + 1); }));
        }
        std::uint64_t sum = 0;
        for (auto& h : handles)
          sum += h.join();
        benchmark::DoNotOptimize(sum);
      }).join();
  }
  state.counters["stolen_per_burst"] =
      static_cast<double>(total_stolen(rt) - stolen_before) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_SkewedLoad)->ArgName("stealing")->Arg(0)->Arg(1)->UseRealTime();

// --- rings across workers --------------------------------------------------------------------------------

// Token ring: `k` fibers alternately placed on worker 0 and 1; fiber i receives the token on its channel
// and sends it to fiber i+1, so with stealing off every hop is a cross-thread wake. The timed loop runs in
// fiber 0; one iteration is one lap (k hops). Args: k, stealing.
void BM_TokenRing(benchmark::State& state) {
  const auto k = static_cast<std::size_t>(state.range(0));
  fiberio::Runtime rt{two_workers(state.range(1) != 0)};
  std::vector<fiberio::Channel<std::uint64_t>> channels(k);
  std::vector<fiberio::JoinHandle<void>> others;
  for (std::size_t i = 1; i < k; ++i) {
    others.push_back(rt.spawn_on(static_cast<std::uint32_t>(i % 2), [&channels, i, k] {
      while (auto v = channels[i].recv())
        channels[(i + 1) % k].send(*v + 1);
      channels[(i + 1) % k].close();
    }));
  }
  rt.spawn_on(0, [&] {
      std::uint64_t token = 0;
      for (auto _ : state) {
        channels[1].send(token);
        token = *channels[0].recv();
      }
      channels[1].close();
      while (channels[0].recv()) {
      }
      benchmark::DoNotOptimize(token);
    }).join();
  for (auto& h : others)
    h.join();
  state.counters["ns_per_hop"] = benchmark::Counter(
      static_cast<double>(state.iterations() * k), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_TokenRing)->ArgNames({"fibers", "stealing"})->Args({4, 0})->Args({4, 1})->UseRealTime();

// Yield ring: `per_worker` fibers on each worker all yield `kYields` times; one iteration spawns them (from
// main, placed) and joins them. With no cross-worker traffic, 2 workers should do about twice the yields per
// second of 1 (Arg threads). Reports wall ns per yield over all fibers. Args: threads, stealing.
void BM_YieldRing(benchmark::State& state) {
  constexpr int kPerWorker = 4;
  constexpr int kYields = 10'000;
  fiberio::Config config;
  config.threads = static_cast<std::uint32_t>(state.range(0));
  config.work_stealing = state.range(1) != 0;
  fiberio::Runtime rt{config};
  const int fibers = kPerWorker * static_cast<int>(config.threads);
  std::vector<fiberio::JoinHandle<void>> handles;
  for (auto _ : state) {
    handles.clear();
    for (int i = 0; i < fibers; ++i) {
      handles.push_back(rt.spawn_on(static_cast<std::uint32_t>(i), [] {
        for (int y = 0; y < kYields; ++y)
          fiberio::yield();
      }));
    }
    for (auto& h : handles)
      h.join();
  }
  state.counters["ns_per_yield"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * fibers * kYields,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_YieldRing)
    ->ArgNames({"threads", "stealing"})
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({2, 1})
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
