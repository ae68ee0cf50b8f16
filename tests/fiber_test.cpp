// Fibers: spawn/join, results and exceptions across join, yield, sleep, names, block_on, cancellation.
#include <doctest/doctest.h>

#include <fiberio/executor/detail/sanitizer.hpp>
#include <fiberio/executor/detail/stack_pool.hpp>
#include <fiberio/fiberio.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("100,000 fibers spawned and joined") {
  const std::size_t total = fiberio::block_on([] {
    std::vector<fiberio::JoinHandle<std::size_t>> handles;
    handles.reserve(100'000);
    for (std::size_t i = 0; i < 100'000; ++i)
      handles.push_back(fiberio::spawn([i] { return i; }));
    std::size_t sum = 0;
    for (auto& h : handles)
      sum += h.join();
    return sum;
  });
  CHECK(total == 100'000ull * 99'999 / 2);
}

TEST_CASE("100,000 fibers across 2 workers, joined from main") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  std::vector<fiberio::JoinHandle<int>> handles;
  for (int i = 0; i < 100'000; ++i)
    handles.push_back(rt.spawn([] { return 1; }));
  int sum = 0;
  for (auto& h : handles)
    sum += h.join();
  CHECK(sum == 100'000);
}

TEST_CASE("a join from one worker races the fiber finishing on another (the lazily made join list)") {
  // The joiner's list is made by the first join (Fiber::joiners()), while the fiber may be completing on
  // the other worker's thread: a Dekker pair on `finished_` and the list pointer. A lost wake hangs here.
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .work_stealing = false}};
  rt.block_on([&rt] {
    for (int round = 0; round < 20'000; ++round) {
      auto child = rt.spawn_on(1, [round] {
        if (round % 3 == 0) fiberio::yield();
        return round;
      });
      if (round % 2 == 0) fiberio::yield();  // so the join lands before, during and after the finish
      REQUIRE(child.join() == round);
    }
  });
}

TEST_CASE("an exception crosses join") {
  fiberio::block_on([] {
    auto h = fiberio::spawn([]() -> int { throw std::runtime_error("boom"); });
    CHECK_THROWS_WITH_AS(h.join(), "boom", std::runtime_error);
  });
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  auto h = rt.spawn([] { throw std::out_of_range("from a worker"); });
  CHECK_THROWS_AS(h.join(), std::out_of_range);  // joined from a plain thread
}

TEST_CASE("join of a moved-from or joined handle is a logic error") {
  fiberio::block_on([] {
    auto h = fiberio::spawn([] { return 1; });
    CHECK(h.join() == 1);
    CHECK_FALSE(h.joinable());
    CHECK_THROWS_AS(h.join(), std::logic_error);
  });
}

TEST_CASE("yield interleaves fibers of one worker") {
  std::string trace = fiberio::block_on([] {
    std::string out;
    auto a = fiberio::spawn([&] {
      for (int i = 0; i < 3; ++i) {
        out += 'a';
        fiberio::yield();
      }
    });
    auto b = fiberio::spawn([&] {
      for (int i = 0; i < 3; ++i) {
        out += 'b';
        fiberio::yield();
      }
    });
    a.join();
    b.join();
    return out;
  });
  CHECK(trace == "ababab");
}

TEST_CASE("sleep_for sleeps at least as long as asked, and not absurdly longer") {
  fiberio::block_on([] {
    for (auto d : {1ms, 5ms, 20ms}) {
      const auto start = fiberio::Clock::now();
      fiberio::sleep_for(d);
      const auto slept = fiberio::Clock::now() - start;
      CHECK(slept >= d);
      CHECK(slept < d + 500ms);  // generous: this machine is shared, this is no speed test
    }
  });
}

TEST_CASE("sleeping fibers wake in deadline order") {
  std::vector<int> order = fiberio::block_on([] {
    std::vector<int> out;
    std::vector<fiberio::JoinHandle<void>> hs;
    for (int ms : {30, 10, 20, 0}) {
      hs.push_back(fiberio::spawn([&out, ms] {
        fiberio::sleep_for(std::chrono::milliseconds(ms));
        out.push_back(ms);
      }));
    }
    for (auto& h : hs)
      h.join();
    return out;
  });
  CHECK(order == std::vector<int>{0, 10, 20, 30});
}

TEST_CASE("fibers have names") {
  fiberio::block_on([] {
    auto h = fiberio::spawn([] { return std::string(fiberio::this_fiber::name()); }, {.name = "acceptor"});
    CHECK(h.name() == "acceptor");
    CHECK(h.join() == "acceptor");
  });
  CHECK(fiberio::this_fiber::name().empty());
  CHECK_FALSE(fiberio::this_fiber::in_fiber());
}

TEST_CASE("block_on from a fiber is an error; Runtime::block_on from a fiber is a nested run") {
  fiberio::block_on([] { CHECK_THROWS_AS(fiberio::block_on([] { return 1; }), std::logic_error); });
  fiberio::Runtime rt{fiberio::Config{.threads = 1}};
  const int v = rt.block_on([&rt] { return rt.block_on([] { return 7; }) + 1; });  // one worker: no deadlock
  CHECK(v == 8);
}

TEST_CASE("cancel a sleeping fiber: it unwinds with Cancelled and its destructors run") {
  fiberio::block_on([] {
    std::atomic<bool> destroyed{false};
    struct Guard {
      std::atomic<bool>& flag;
      ~Guard() { flag = true; }
    };
    auto h = fiberio::spawn([&] {
      Guard g{destroyed};
      fiberio::sleep_for(1h);
    });
    fiberio::sleep_for(1ms);
    h.cancel();
    CHECK_THROWS_AS(h.join(), fiberio::Cancelled);
    CHECK(destroyed);
  });
}

TEST_CASE("cancellation is delivered once: a fiber that catches it may still wait") {
  fiberio::block_on([] {
    auto h = fiberio::spawn([] {
      try {
        fiberio::sleep_for(1h);
      } catch (const fiberio::Cancelled&) {
      }
      fiberio::sleep_for(1ms);  // cleanup that waits still works
      return 5;
    });
    fiberio::yield();
    h.cancel();
    CHECK(h.join() == 5);
  });
}

TEST_CASE("a fiber cancelled before it starts never runs its body") {
  fiberio::block_on([] {
    bool ran = false;
    auto h = fiberio::spawn([&] { ran = true; });
    h.cancel();
    CHECK_THROWS_AS(h.join(), fiberio::Cancelled);
    CHECK_FALSE(ran);
  });
}

TEST_CASE("with stack pool warm, stacks are reused and trimmed") {
  fiberio::block_on([] {
    for (int round = 0; round < 3; ++round) {
      std::vector<fiberio::JoinHandle<void>> hs;
      for (int i = 0; i < 50; ++i)
        hs.push_back(fiberio::spawn([] { fiberio::yield(); }));
      for (auto& h : hs)
        h.join();
    }
  });
  // block_on ran on this thread, so its stacks came back to this thread's pool.
  auto& pool = fiberio::detail::StackPool::local();
  REQUIRE(pool.cached() >= 2);
  pool.trim();  // the pool was busy since the last trim: frees only what stayed unused throughout
  const std::size_t idle = pool.cached();
  pool.trim();  // nothing used in between: half of the idle stacks go back to the system
  CHECK(pool.cached() < idle);
  const std::size_t mapped = fiberio::detail::StackPool::live_mappings();
  pool.trim();
  CHECK(fiberio::detail::StackPool::live_mappings() < mapped);
}

TEST_CASE("shutdown leaves no fiber stack mapped") {
  const std::size_t before = fiberio::detail::StackPool::live_mappings();
  {
    fiberio::Runtime rt{fiberio::Config{.threads = 2}};
    for (int i = 0; i < 200; ++i)
      rt.spawn([] { fiberio::sleep_for(1h); }).detach();
    std::this_thread::sleep_for(20ms);
  }  // worker threads exit: their pools unmap what they cached
  CHECK(fiberio::detail::StackPool::live_mappings() == before);
}

namespace {
// Recurses until the stack runs out (a fiber stack is far smaller than the bound); the volatile array
// keeps each frame real.
int recurse(int depth) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  if (depth > 10'000'000) return frame[0];
  return recurse(depth + 1) + frame[0];
}
}  // namespace

namespace {

std::size_t memory_mappings() {
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return 0;
  std::size_t lines = 0;
  for (int c; (c = std::fgetc(maps)) != EOF;)
    lines += c == '\n';
  std::fclose(maps);
  return lines;
}

}  // namespace

TEST_CASE("fiber stacks do not cost a memory mapping each where the kernel has lightweight guards") {
  // vm.max_map_count (65,530 by default) would otherwise cap a process near 32,700 fibers: a PROT_NONE
  // guard splits each stack's mapping in two. The guard itself is tested by the overflow test below.
  if (fiberio::detail::kSanitized) {
    MESSAGE("skipped: the sanitizers map shadow memory beside every mapping, so the count means nothing");
    return;
  }
  fiberio::detail::StackPool pool;
  std::vector<boost::context::stack_context> stacks;
  stacks.push_back(pool.allocate(64 * 1024));
  if (!fiberio::detail::StackPool::light_guards() || memory_mappings() == 0) {
    MESSAGE("skipped: this kernel has no MADV_GUARD_INSTALL (Linux < 6.13) or no /proc/self/maps");
    pool.deallocate(stacks.back());
    return;
  }
  const std::size_t before = memory_mappings();
  for (int i = 0; i < 2'000; ++i)
    stacks.push_back(pool.allocate(64 * 1024));
  const std::size_t grown = memory_mappings() - before;
  CHECK(grown < 200);  // neighbouring stacks merge; with PROT_NONE guards this would be 4,000
  MESSAGE("2,000 stacks added " << grown << " memory mappings");
  for (auto& stack : stacks)
    pool.deallocate(stack);
}

// One frame far larger than the guard page, whose first store is at its lowest address: without stack
// probing (-fstack-clash-protection) the stack pointer jumps the guard and the store lands in whatever
// lies below, a neighbouring fiber's stack included.
__attribute__((noinline)) int huge_frame(int seed) {
  volatile char big[256 * 1024];
  big[0] = static_cast<char>(seed);
  big[sizeof big - 1] = static_cast<char>(seed);
  return big[0] + big[sizeof big - 1];
}

// Runs `body` in a forked child whose stderr is captured; returns (wait status, stderr).
template <class Body>
std::pair<int, std::string> in_child(Body body) {
  int err[2];
  REQUIRE(::pipe(err) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::dup2(err[1], STDERR_FILENO);
    ::signal(SIGSEGV, SIG_DFL);  // the test runner's crash handler must not report this expected crash
    body();
    ::_exit(0);
  }
  ::close(err[1]);
  std::string output;
  char buf[512];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;)
    output.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return {status, output};
}

TEST_CASE(
    "one frame bigger than the guard faults in the guard and names its fiber, with neighbours running") {
  if (fiberio::detail::kSanitized) return;  // sanitizers report overflows themselves
  auto [status, output] = in_child([] {
    fiberio::block_on(
        [] {
          fiberio::Event go;
          auto huge = fiberio::spawn(
              [&] {
                go.wait();  // holds its stack first: the neighbours' stacks are mapped after (below) it
                return huge_frame(1);
              },
              {.name = "huge-frame"});
          std::vector<fiberio::JoinHandle<int>> neighbours;
          fiberio::Event done;
          for (int i = 0; i < 8; ++i)
            neighbours.push_back(fiberio::spawn([&] {
              done.wait();
              return 0;
            }));
          fiberio::sleep_for(std::chrono::milliseconds(5));
          go.set();
          huge.join();
          done.set();
          for (auto& n : neighbours)
            n.join();
        },
        fiberio::Config{.threads = 1, .stack_size = 64 * 1024});
  });
  INFO(output);
  CHECK(WIFSIGNALED(status));
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV));
  CHECK(output.find("fiber 'huge-frame' overflowed its 65536-byte stack") != std::string::npos);
}

TEST_CASE("a stack overflow names the fiber and kills the process") {
  if (fiberio::detail::kSanitized) return;  // sanitizers report overflows themselves
  auto [status, output] = in_child([] {
    fiberio::block_on([] { fiberio::spawn([] { return recurse(0); }, {.name = "deep-recursion"}).join(); });
  });
  INFO(output);
  CHECK(WIFSIGNALED(status));
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV));
  CHECK(output.find("fiber 'deep-recursion' overflowed its 65536-byte stack") != std::string::npos);
}
