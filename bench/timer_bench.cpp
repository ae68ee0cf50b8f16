// bench/timer_bench.cpp — insert+cancel on a worker's timer store while it holds 1k, 100k or 1M live timers:
// the raw detail::TimerHeap (an indexed 4-ary heap, no lock) and the locked detail::TimerQueue a worker
// really uses (mutex + a reference on the fiber per timer). docs/benchmarks.md has the figures.
//
// Two access patterns, one insert and one cancel per iteration, the number of live timers held constant:
//  - Timeout: every timer is a timeout armed for a request and cancelled when the request completes; the
//    oldest is cancelled and a new one armed further out (deadlines rise, with 1 ms of jitter). The
//    cancelled timer sits near the top of the heap, the last leaf replaces it and sinks: the worst case.
//  - Random: deadlines uniform over a minute, a random live timer cancelled.
#include <benchmark/benchmark.h>

#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/timer_heap.hpp>
#include <fiberio/executor/detail/timer_queue.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

namespace {

using fiberio::Clock;
using fiberio::Deadline;
using fiberio::detail::TimerHandle;

// The payload a TimerQueue stores (a fiber and a wait ticket): 16 bytes.
struct Payload {
  void* fiber;
  std::uint64_t ticket;
};

// Deadlines are precomputed so the timed loop draws no random numbers. Timeout pattern: timer k (k counts
// every insert) is due at base + k * 10 us plus up to 1 ms of jitter, so deadlines keep rising however long
// the benchmark runs. Random pattern: uniform over a minute, reused cyclically.
constexpr std::size_t kPrepared = 1 << 20;

class RisingDeadlines {
 public:
  explicit RisingDeadlines(std::uint64_t seed) : base_(Clock::now()), jitter_(kPrepared) {
    std::mt19937_64 rng(seed);
    for (auto& j : jitter_)
      j = static_cast<std::uint32_t>(rng() % 1000);
  }
  Deadline operator()(std::uint64_t k) const {
    return base_ + std::chrono::microseconds(k * 10 + jitter_[k % kPrepared]);
  }

 private:
  Deadline base_;
  std::vector<std::uint32_t> jitter_;
};

std::vector<Deadline> random_deadlines(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Deadline base = Clock::now();
  std::vector<Deadline> out(n);
  for (auto& d : out)
    d = base + std::chrono::microseconds(rng() % 60'000'000);
  return out;
}

// Timeout pattern on the raw heap.
void BM_TimerHeap_Timeout(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  const RisingDeadlines deadline(1);
  fiberio::detail::TimerHeap<Payload> heap;
  std::vector<TimerHandle> ring(live);
  std::uint64_t k = 0;
  for (; k < live; ++k)
    ring[k] = heap.insert(deadline(k), Payload{nullptr, k});
  std::size_t oldest = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(heap.cancel(ring[oldest]));
    ring[oldest] = heap.insert(deadline(k), Payload{nullptr, k});
    ++k;
    if (++oldest == live) oldest = 0;
  }
  state.counters["live"] = static_cast<double>(heap.size());
}
BENCHMARK(BM_TimerHeap_Timeout)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

// Random pattern on the raw heap.
void BM_TimerHeap_Random(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  const auto deadlines = random_deadlines(live + kPrepared, 2);
  std::mt19937_64 rng(3);
  std::vector<std::uint32_t> victims(kPrepared);
  for (auto& v : victims)
    v = static_cast<std::uint32_t>(rng() % live);
  fiberio::detail::TimerHeap<Payload> heap;
  std::vector<TimerHandle> handles(live);
  for (std::size_t i = 0; i < live; ++i)
    handles[i] = heap.insert(deadlines[i], Payload{nullptr, i});
  std::size_t i = 0;
  for (auto _ : state) {
    TimerHandle& h = handles[victims[i]];
    benchmark::DoNotOptimize(heap.cancel(h));
    h = heap.insert(deadlines[live + i], Payload{nullptr, i});
    if (++i == kPrepared) i = 0;
  }
  state.counters["live"] = static_cast<double>(heap.size());
}
BENCHMARK(BM_TimerHeap_Random)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

// A fiber that never runs: TimerQueue only needs something to add_ref/release and (on firing) to wake.
class IdleFiber final : public fiberio::detail::Fiber {
 public:
  using Fiber::Fiber;

 private:
  void run() override {}
};

// Timeout pattern on the TimerQueue (mutex, reference counting on the fiber), uncontended, one thread.
void BM_TimerQueue_Timeout(benchmark::State& state) {
  const auto live = static_cast<std::size_t>(state.range(0));
  const RisingDeadlines deadline(1);
  auto* fiber = new IdleFiber("timer_bench");  // never run, never woken: no scheduler needed
  {
    fiberio::detail::TimerQueue queue;
    std::vector<TimerHandle> ring(live);
    std::uint64_t k = 0;
    for (; k < live; ++k)
      ring[k] = queue.insert(deadline(k), *fiber, 1);
    std::size_t oldest = 0;
    for (auto _ : state) {
      queue.cancel(ring[oldest]);
      ring[oldest] = queue.insert(deadline(k), *fiber, 1);
      ++k;
      if (++oldest == live) oldest = 0;
    }
    state.counters["live"] = static_cast<double>(queue.size());
  }  // the queue's destructor drops the references its timers hold
  fiber->release();
}
BENCHMARK(BM_TimerQueue_Timeout)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

}  // namespace

BENCHMARK_MAIN();
