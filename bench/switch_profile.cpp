// bench/switch_profile.cpp — fixed-count loops for instruction counting under callgrind; not a timing
// benchmark. Each mode does its setup, then runs exactly N operations between callgrind's START and STOP
// client requests, so with --instr-atstart=no the collected total divided by N is instructions per
// operation, exactly and reproducibly (wall-clock figures on the shared 2-core machine are not).
//
//   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.yield
//            ./build-rel/bench/switch_profile yield 100000      (one command line)
//   callgrind_annotate cg.yield | head -40
//
// Modes (N operations each): raw (one-way Boost.Context switches), trampoline (hand-offs between two raw
// fibers through a loop on the thread stack), yield (fiberio yield hand-offs between two
// fibers on one worker; a one-worker runtime never steals, so there is no stealing variant), spawn-join,
// channel-pingpong (messages), timer-heap (insert+cancel pairs; a third argument sets the live timers,
// default 100k). Outside valgrind the client requests are no-ops and it just runs.
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>

#include <fiberio/executor/detail/timer_heap.hpp>
#include <fiberio/fiberio.hpp>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define PROFILE_START() CALLGRIND_START_INSTRUMENTATION
#define PROFILE_STOP() CALLGRIND_STOP_INSTRUMENTATION
#else
#define PROFILE_START() ((void)0)
#define PROFILE_STOP() ((void)0)
#endif

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace ctx = boost::context;

fiberio::Config one_worker() {
  fiberio::Config config;
  config.threads = 1;
  return config;
}

// N one-way switches: N/2 round trips main -> fiber -> main.
void raw(std::uint64_t n) {
  ctx::fiber f{std::allocator_arg, ctx::fixedsize_stack(64 * 1024), [](ctx::fiber&& main) {
                 for (;;)
                   main = std::move(main).resume();
                 return std::move(main);
               }};
  f = std::move(f).resume();
  PROFILE_START();
  for (std::uint64_t i = 0; i < n / 2; ++i)
    f = std::move(f).resume();
  PROFILE_STOP();
}

// N hand-offs: the loop resumes a and b in turn (each hand-off: fiber -> loop -> other fiber).
void trampoline(std::uint64_t n) {
  auto body = [](ctx::fiber&& main) {
    for (;;)
      main = std::move(main).resume();
    return std::move(main);
  };
  ctx::fiber a{std::allocator_arg, ctx::fixedsize_stack(64 * 1024), body};
  ctx::fiber b{std::allocator_arg, ctx::fixedsize_stack(64 * 1024), body};
  a = std::move(a).resume();
  b = std::move(b).resume();
  PROFILE_START();
  for (std::uint64_t i = 0; i < n / 2; ++i) {
    a = std::move(a).resume();
    b = std::move(b).resume();
  }
  PROFILE_STOP();
}

// N hand-offs: the measuring fiber yields N/2 times, the partner yields back each time.
void yield(std::uint64_t n) {
  fiberio::block_on(
      [n] {
        std::atomic<bool> stop{false};
        auto partner = fiberio::spawn([&stop] {
          while (!stop.load(std::memory_order_relaxed))
            fiberio::yield();
        });
        fiberio::yield();
        PROFILE_START();
        for (std::uint64_t i = 0; i < n / 2; ++i)
          fiberio::yield();
        PROFILE_STOP();
        stop = true;
        partner.join();
      },
      one_worker());
}

void spawn_join(std::uint64_t n) {
  fiberio::block_on(
      [n] {
        fiberio::spawn([] { return 0; }).join();
        PROFILE_START();
        for (std::uint64_t i = 0; i < n; ++i)
          fiberio::spawn([] { return 1; }).join();
        PROFILE_STOP();
      },
      one_worker());
}

// N messages: N/2 round trips over two unbounded channels.
void channel_pingpong(std::uint64_t n) {
  fiberio::block_on(
      [n] {
        fiberio::Channel<std::uint64_t> ping, pong;
        auto echo = fiberio::spawn([&] {
          while (auto v = ping.recv())
            pong.send(*v);
        });
        ping.send(0);
        (void)pong.recv();
        PROFILE_START();
        for (std::uint64_t i = 0; i < n / 2; ++i) {
          ping.send(i);
          (void)pong.recv();
        }
        PROFILE_STOP();
        ping.close();
        echo.join();
      },
      one_worker());
}

// N insert+cancel pairs on a TimerHeap holding `live` timers; each pair cancels the oldest timer and arms a
// later one (the "set a timeout, cancel it" pattern of network servers; bench/timer_bench.cpp's Timeout).
void timer_heap(std::uint64_t n, std::size_t live) {
  struct Payload {
    void* fiber;
    std::uint64_t ticket;
  };
  fiberio::detail::TimerHeap<Payload> heap;
  std::vector<fiberio::detail::TimerHandle> ring(live);
  std::mt19937_64 rng(42);
  const auto base = fiberio::Clock::now();
  auto deadline = [&](std::uint64_t i) {
    return base + std::chrono::microseconds(i * 10 + rng() % 1000);  // rising, with jitter
  };
  std::uint64_t t = 0;
  for (auto& h : ring) {
    h = heap.insert(deadline(t), Payload{nullptr, t});
    ++t;
  }
  std::vector<fiberio::Deadline> deadlines(n);
  for (auto& d : deadlines)
    d = deadline(t++);
  std::size_t oldest = 0;
  PROFILE_START();
  for (std::uint64_t i = 0; i < n; ++i) {
    auto& h = ring[oldest];
    (void)heap.cancel(h);
    h = heap.insert(deadlines[i], Payload{nullptr, i});
    if (++oldest == live) oldest = 0;
  }
  PROFILE_STOP();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s raw|trampoline|yield|spawn-join|channel-pingpong|timer-heap [N] [live]\n",
                 argv[0]);
    return 2;
  }
  const std::string_view mode = argv[1];
  const std::uint64_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100'000;
  if (mode == "raw") {
    raw(n);
  } else if (mode == "trampoline") {
    trampoline(n);
  } else if (mode == "yield") {
    yield(n);
  } else if (mode == "spawn-join") {
    spawn_join(n);
  } else if (mode == "channel-pingpong") {
    channel_pingpong(n);
  } else if (mode == "timer-heap") {
    timer_heap(n, argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 100'000);
  } else {
    std::fprintf(stderr, "unknown mode '%s'\n", argv[1]);
    return 2;
  }
  std::printf("%s: %llu operations\n", argv[1], static_cast<unsigned long long>(n));
  return 0;
}
