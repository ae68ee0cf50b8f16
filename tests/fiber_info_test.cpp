// The fiber dump (Runtime::fibers()): every live fiber with its state, what it waits on and for how
// long, its worker and its stack's high-water mark, taken while the workers run; and the same under
// churn from a plain thread (TSan runs this).
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

const fiberio::FiberInfo* find(const std::vector<fiberio::FiberInfo>& fibers, const std::string& name) {
  auto it = std::find_if(fibers.begin(), fibers.end(), [&](const auto& f) { return f.name == name; });
  return it == fibers.end() ? nullptr : &*it;
}

// Dumps until `name` shows up in `state` (the spawned fiber gets there soon); nullptr after 10 s.
std::vector<fiberio::FiberInfo> dump_until(const fiberio::Runtime& rt, const std::string& name,
                                           fiberio::FiberInfo::State state) {
  std::vector<fiberio::FiberInfo> fibers;
  for (int i = 0; i < 2000; ++i) {
    fibers = rt.fibers();
    if (const auto* f = find(fibers, name); f && f->state == state) return fibers;
    fiberio::sleep_for(5ms);
  }
  return fibers;
}

// Everything but the spinner stays on worker 0: the spinner never lets worker 1 fire a timer or poll.
fiberio::SpawnOptions on_worker_0(const char* name) {
  return {.name = name, .worker = 0, .pinned = true};
}

struct PipeEnd {
  fiberio::AsyncFd fd;
  fiberio::AsyncFd& async_fd() { return fd; }
};

}  // namespace

TEST_CASE("fiber dump: what each fiber waits on, for how long, where, and how deep its stack went") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .idle_stack_release = 5ms}};
  rt.spawn(
        [&] {
          using State = fiberio::FiberInfo::State;
          int p[2];
          REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
          fiberio::AsyncFd read_end{p[0]};
          const int write_fd = p[1];
          int q[2];
          REQUIRE(::pipe2(q, O_CLOEXEC | O_NONBLOCK) == 0);
          const int idle_write_fd = q[1];
          fiberio::Mutex mutex;
          fiberio::Channel<int> channel;
          std::atomic<bool> spin{true};

          auto sleeper = fiberio::spawn(
              [] {
                volatile char deep[24 * 1024];  // a frame that reaches 24 KiB down its stack
                for (std::size_t k = 0; k < sizeof deep; k += 256)
                  deep[k] = 1;
                fiberio::sleep_for(1h);
              },
              on_worker_0("sleeper"));
          auto reader = fiberio::spawn(
              [&] {
                std::byte b[1];
                (void)read_end.read(b);
              },
              on_worker_0("reader"));
          mutex.lock();
          auto locker = fiberio::spawn([&] { std::lock_guard g(mutex); }, on_worker_0("locker"));
          auto receiver = fiberio::spawn([&] { (void)channel.recv(); }, on_worker_0("receiver"));
          auto joiner = fiberio::spawn([&] { sleeper.join(); }, on_worker_0("joiner"));
          auto spinner = fiberio::spawn(
              [&] {
                while (spin.load()) {  // computes without reaching the scheduler: running, on its worker
                }
              },
              {.name = "spinner", .worker = 1, .pinned = true});
          auto idle = fiberio::spawn_idle_loop(
              PipeEnd{fiberio::AsyncFd{q[0]}},
              [](PipeEnd& end) {
                std::byte b[16];
                auto n = end.fd.try_io_some(
                    fiberio::Interest::read, [&] { return ::read(end.fd.fd(), b, sizeof b); }, sizeof b);
                return !n && n.error() == fiberio::AsyncFd::would_block() ? fiberio::Next::wait
                                                                          : fiberio::Next::stop;
              },
              {.spawn = on_worker_0("idle")});

          auto fibers = dump_until(rt, "spinner", State::running);
          fiberio::sleep_for(100ms);  // the waits age
          fibers = dump_until(rt, "idle", State::waiting);
          for (int i = 0; i < 2000; ++i) {  // the idle loop's stack goes after a few release periods
            if (const auto* f = find(fibers, "idle"); f && f->stack_size == 0) break;
            fiberio::sleep_for(5ms);
            fibers = rt.fibers();
          }
          std::string all;
          for (const auto& f : fibers)
            all += fiberio::to_string(f) + "\n";
          {
            INFO(all);  // its scope holds no suspension
            const auto* f = find(fibers, "sleeper");
            REQUIRE(f);
            CHECK(f->state == State::waiting);
            CHECK(f->waiting_on == "sleep");
            CHECK(f->waiting_for >= 50ms);
            CHECK(f->waiting_for < 1h);
            CHECK(f->stack_high_water >= 24 * 1024);
            CHECK(f->stack_high_water <= f->stack_size);
            CHECK(f->stack_size == rt.config().stack_size);  // what was asked for, not the page rounding

            f = find(fibers, "reader");
            REQUIRE(f);
            CHECK(f->state == State::waiting);
            CHECK(f->waiting_on == "fd " + std::to_string(read_end.fd()) + " read");

            f = find(fibers, "locker");
            REQUIRE(f);
            CHECK(f->waiting_on == "mutex");
            f = find(fibers, "receiver");
            REQUIRE(f);
            CHECK(f->waiting_on == "channel receive");
            f = find(fibers, "joiner");
            REQUIRE(f);
            CHECK(f->waiting_on == "join");

            f = find(fibers, "spinner");
            REQUIRE(f);
            CHECK(f->state == State::running);
            CHECK(f->worker == 1);

            f = find(fibers, "idle");
            REQUIRE(f);
            CHECK(f->state == State::waiting);
            CHECK(f->waiting_on == "fd " + std::to_string(q[0]) + " read, idle loop");
            CHECK(f->stack_size == 0);  // released: an idle loop at rest holds no stack
            CHECK(fiberio::to_string(*f) == "fiber 'idle' on worker " + std::to_string(f->worker) +
                                                ": waiting " + std::to_string(f->waiting_for.count()) +
                                                " ms on fd " + std::to_string(q[0]) +
                                                " read, idle loop, no stack");

            f = find(fibers, "dumper");  // the fiber taking the dump
            REQUIRE(f);
            CHECK(f->state == State::running);
          }

          spin = false;
          mutex.unlock();
          (void)channel.send(1);
          REQUIRE(::write(write_fd, "x", 1) == 1);
          REQUIRE(::write(idle_write_fd, "x", 1) ==
                  1);  // wakes the idle loop: its handler reads, then EOF below
          ::close(idle_write_fd);
          sleeper.cancel();
          CHECK_THROWS_AS(joiner.join(), fiberio::Cancelled);
          for (auto* h : {&reader, &locker, &receiver, &spinner})
            h->join();
          idle.join();
          ::close(write_fd);
        },
        on_worker_0("dumper"))
      .join();
}

TEST_CASE("fiber dump: taken from a plain thread again and again while fibers come, go and wait") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .idle_stack_release = 1ms}};
  std::atomic<bool> done{false};
  std::size_t dumps = 0, seen = 0;
  std::thread dumper([&] {
    while (!done.load()) {
      for (const auto& f : rt.fibers())
        seen += f.name.size() + f.waiting_on.size() + f.stack_high_water % 2;
      ++dumps;
    }
  });
  rt.block_on([&] {
    fiberio::Channel<int> channel(4);
    std::vector<fiberio::JoinHandle<void>> producers;
    for (int p = 0; p < 4; ++p) {
      producers.push_back(fiberio::spawn([&] {
        for (int i = 0; i < 2000; ++i) {
          REQUIRE(channel.send(i));
          if (i % 64 == 0) fiberio::spawn([] { fiberio::sleep_for(1ms); }).join();
        }
      }));
    }
    long sum = 0;
    for (int i = 0; i < 4 * 2000; ++i)
      sum += *channel.recv();
    for (auto& p : producers)
      p.join();
    CHECK(sum == 4L * 1999 * 2000 / 2);
  });
  done = true;
  dumper.join();
  CHECK(dumps > 0);
  CHECK(seen > 0);
}
