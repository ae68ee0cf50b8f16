// bench/fiber_bench.cpp — one worker, no cross-thread traffic: the cost of a fiber switch (next to the raw
// Boost.Context switch it is built on), of spawn+join with a warm stack pool, and of channel send/recv
// between two fibers. Every fiberio benchmark runs its timed loop inside a fiber of fiberio::block_on,
// which drives a one-worker runtime on the benchmark thread itself. docs/benchmarks.md has the figures.
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>

#include <fiberio/fiberio.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace {

namespace ctx = boost::context;

// Reports `per_iteration` operations per benchmark iteration as "ns_per_op" (seconds per op, shown in ns).
void report_per_op(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] = benchmark::Counter(static_cast<double>(state.iterations()) * per_iteration,
                                            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

fiberio::Config one_worker(bool stealing) {
  fiberio::Config config;
  config.threads = 1;
  config.work_stealing = stealing;
  return config;
}

// --- raw Boost.Context -----------------------------------------------------------------------------------

// One iteration: main resumes the fiber, the fiber resumes main: two one-way switches.
void BM_RawBoostResume(benchmark::State& state) {
  ctx::fiber f{std::allocator_arg, ctx::fixedsize_stack(64 * 1024), [](ctx::fiber&& main) {
                 for (;;)
                   main = std::move(main).resume();
                 return std::move(main);
               }};
  for (auto _ : state)
    f = std::move(f).resume();
  report_per_op(state, "ns_per_switch", 2);
}
BENCHMARK(BM_RawBoostResume);

// Like BM_RawBoostResume, but each side resumes from `frames` nested (non-inlined) calls and returns
// through them after each switch. Boost.Context's jump_fcontext is entered with `call` and leaves with an
// indirect `jmp`, so after a switch the return-address predictor still holds the other stack's return
// addresses: each `ret` on the way out of the nested calls may be mispredicted. This isolates that cost
// (fiberio's yield returns through several frames on both the fiber and the worker side).
__attribute__((noinline)) void nested_resume(ctx::fiber& f, int frames) {
  if (frames == 0) {
    f = std::move(f).resume();
  } else {
    nested_resume(f, frames - 1);
  }
  asm volatile("" ::: "memory");  // no tail call: every frame returns with its own `ret`
}

void BM_RawBoostResumeNested(benchmark::State& state) {
  const int frames = static_cast<int>(state.range(0));
  ctx::fiber f{std::allocator_arg, ctx::fixedsize_stack(64 * 1024), [frames](ctx::fiber&& main) {
                 for (;;)
                   nested_resume(main, frames);
                 return std::move(main);
               }};
  for (auto _ : state)
    nested_resume(f, frames);
  report_per_op(state, "ns_per_switch", 2);
}
BENCHMARK(BM_RawBoostResumeNested)->ArgName("frames")->Arg(0)->Arg(1)->Arg(2)->Arg(4);

// The shape of a scheduler without any scheduling: a loop on the thread's own stack resumes two fibers in
// turn, each of which switches straight back. One iteration hands the CPU A -> B -> A: two hand-offs, each
// two one-way switches (fiber -> loop -> other fiber). fiberio's yield has this shape, plus its run queue.
void BM_RawBoostTrampoline(benchmark::State& state) {
  auto body = [](ctx::fiber&& main) {
    for (;;)
      main = std::move(main).resume();
    return std::move(main);
  };
  ctx::fiber a{std::allocator_arg, ctx::fixedsize_stack(64 * 1024), body};
  ctx::fiber b{std::allocator_arg, ctx::fixedsize_stack(64 * 1024), body};
  for (auto _ : state) {
    a = std::move(a).resume();
    b = std::move(b).resume();
  }
  report_per_op(state, "ns_per_handoff", 2);
}
BENCHMARK(BM_RawBoostTrampoline);

// --- fiberio yield -----------------------------------------------------------------------------------------

// Two fibers on one worker yield to each other. One iteration: the timed fiber yields, the partner runs and
// yields back: two hand-offs through the worker's run queue, i.e. two "fiber switches" in the sense
// (each is two one-way Boost.Context switches plus the scheduler's work). Arg 0/1: work stealing off/on
// (with one worker stealing has nothing to steal from, but push_local still calls notify_work()).
void BM_FiberYieldPingPong(benchmark::State& state) {
  fiberio::block_on(
      [&state] {
        std::atomic<bool> stop{false};
        auto partner = fiberio::spawn([&stop] {
          while (!stop.load(std::memory_order_relaxed))
            fiberio::yield();
        });
        fiberio::yield();  // let the partner start
        for (auto _ : state)
          fiberio::yield();
        stop = true;
        partner.join();
      },
      one_worker(state.range(0) != 0));
  report_per_op(state, "ns_per_switch", 2);
}
BENCHMARK(BM_FiberYieldPingPong)->ArgName("stealing")->Arg(0)->Arg(1);

// One fiber yields with nobody else ready: it goes through the run queue and straight back (one hand-off to
// itself, two one-way switches).
void BM_FiberYieldAlone(benchmark::State& state) {
  fiberio::block_on(
      [&state] {
        for (auto _ : state)
          fiberio::yield();
      },
      one_worker(state.range(0) != 0));
  report_per_op(state, "ns_per_switch", 1);
}
BENCHMARK(BM_FiberYieldAlone)->ArgName("stealing")->Arg(0)->Arg(1);

// --- spawn + join ------------------------------------------------------------------------------------------

// One iteration: spawn a fiber that returns at once, join it. The stack pool is warm after the first
// iteration (the same stack goes back and forth). Covers: Task allocation, registry insert/remove, a stack
// from the pool, context creation, two round trips through the run queue, join's wait and wake.
void BM_SpawnJoin(benchmark::State& state) {
  fiberio::block_on(
      [&state] {
        fiberio::spawn([] { return 0; }).join();  // warm the pool
        for (auto _ : state) {
          auto h = fiberio::spawn([] { return 1; });
          benchmark::DoNotOptimize(h.join());
        }
      },
      one_worker(false));
}
BENCHMARK(BM_SpawnJoin);

// One iteration: spawn `batch` fibers, then join them all (the pool keeps `batch` stacks warm).
void BM_SpawnJoinBatch(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  fiberio::block_on(
      [&state, batch] {
        std::vector<fiberio::JoinHandle<int>> handles;
        handles.reserve(batch);
        for (std::size_t i = 0; i < batch; ++i)
          handles.push_back(fiberio::spawn([] { return 1; }));
        for (auto& h : handles)
          h.join();  // warm the pool
        for (auto _ : state) {
          handles.clear();
          for (std::size_t i = 0; i < batch; ++i)
            handles.push_back(fiberio::spawn([] { return 1; }));
          for (auto& h : handles)
            benchmark::DoNotOptimize(h.join());
        }
      },
      one_worker(false));
  report_per_op(state, "ns_per_fiber", static_cast<double>(batch));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_SpawnJoinBatch)->Arg(100);

// --- channels ----------------------------------------------------------------------------------------------

constexpr std::size_t kUnbounded = fiberio::Channel<std::uint64_t>::unbounded;

// Round trip: the timed fiber sends on `ping`, the echo fiber receives and sends back on `pong`. Every
// message finds its receiver parked: one iteration = two messages, two park/wake cycles. Arg: capacity of
// both channels (0 = unbounded).
void BM_ChannelPingPong(benchmark::State& state) {
  const std::size_t capacity = state.range(0) == 0 ? kUnbounded : static_cast<std::size_t>(state.range(0));
  fiberio::block_on(
      [&state, capacity] {
        fiberio::Channel<std::uint64_t> ping{capacity}, pong{capacity};
        auto echo = fiberio::spawn([&] {
          while (auto v = ping.recv())
            pong.send(*v);
          pong.close();
        });
        std::uint64_t i = 0;
        for (auto _ : state) {
          ping.send(i++);
          benchmark::DoNotOptimize(pong.recv());
        }
        ping.close();
        echo.join();
      },
      one_worker(false));
  report_per_op(state, "ns_per_message", 2);
}
BENCHMARK(BM_ChannelPingPong)->ArgName("capacity")->Arg(1)->Arg(0);

// Stream: the timed fiber sends one item per iteration, a consumer fiber receives them. A bounded channel
// makes the producer wait when full, so the two alternate in batches of `capacity` items; with an unbounded
// channel send never waits, so the producer yields every 64 items to let the consumer drain (the same batch
// as capacity 64). Arg: capacity (0 = unbounded).
void BM_ChannelStream(benchmark::State& state) {
  const std::size_t capacity = state.range(0) == 0 ? kUnbounded : static_cast<std::size_t>(state.range(0));
  fiberio::block_on(
      [&state, capacity] {
        fiberio::Channel<std::uint64_t> ch{capacity};
        std::uint64_t received = 0;
        auto consumer = fiberio::spawn([&] {
          while (auto v = ch.recv())
            received += *v & 1;
        });
        std::uint64_t i = 0;
        for (auto _ : state) {
          ch.send(i);
          if (capacity == kUnbounded && (++i & 63) == 0) fiberio::yield();
        }
        ch.close();
        consumer.join();
        benchmark::DoNotOptimize(received);
      },
      one_worker(false));
  report_per_op(state, "ns_per_item", 1);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ChannelStream)->ArgName("capacity")->Arg(1)->Arg(64)->Arg(0);

}  // namespace

BENCHMARK_MAIN();
