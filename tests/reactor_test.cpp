// Reactor: fd waits through AsyncFd on every backend, deadlines, cancellation, several waiters,
// deregistration, the wake channel, and a user-supplied backend.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>
#include <fiberio/reactor/detail/epoll_backend.hpp>
#include <fiberio/reactor/detail/io_source.hpp>
#include <fiberio/reactor/detail/poll_backend.hpp>
#include <fiberio/reactor/detail/reactor.hpp>
#include <fiberio/reactor/detail/wake_channel.hpp>
#include "backends.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <numeric>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct Pipe {
  fiberio::AsyncFd read_end, write_end;
};

Pipe make_pipe() {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  return Pipe{fiberio::AsyncFd(fds[0]), fiberio::AsyncFd(fds[1])};
}

std::span<const std::byte> bytes(const std::vector<unsigned char>& v) {
  return std::as_bytes(std::span(v));
}

}  // namespace

TEST_CASE("pipe I/O through AsyncFd: 4 MiB in both fibers' pieces arrive intact") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .backend = kind}};
    rt.block_on([] {
      Pipe p = make_pipe();
      constexpr std::size_t kTotal = 4 << 20;
      auto writer = fiberio::spawn([&] {
        std::vector<unsigned char> chunk(64 * 1024);
        std::size_t sent = 0;
        while (sent < kTotal) {
          for (std::size_t i = 0; i < chunk.size(); ++i)
            chunk[i] = static_cast<unsigned char>((sent + i) * 31);
          auto rest = bytes(chunk);
          while (!rest.empty()) {
            auto n = p.write_end.write(rest);
            REQUIRE(n);
            rest = rest.subspan(*n);
          }
          sent += chunk.size();
        }
        p.write_end.close();
      });
      std::vector<std::byte> buffer(10'000);  // odd size: reads straddle the writer's chunks
      std::size_t received = 0;
      bool intact = true;
      for (;;) {
        auto n = p.read_end.read(buffer);
        REQUIRE(n);
        if (*n == 0) break;
        for (std::size_t i = 0; i < *n; ++i) {
          intact &= buffer[i] == static_cast<std::byte>(static_cast<unsigned char>((received + i) * 31));
        }
        received += *n;
      }
      writer.join();
      CHECK(received == kTotal);
      CHECK(intact);
    });
  });
}

TEST_CASE("read with a deadline times out; readable() waits for data") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          Pipe p = make_pipe();
          std::byte b[1];
          auto n = p.read_end.read(b, fiberio::Clock::now() + 5ms);
          REQUIRE_FALSE(n);
          CHECK(n.error() == std::errc::timed_out);

          CHECK(p.write_end.writable());
          auto reader =
              fiberio::spawn([&] { return p.read_end.readable(fiberio::Clock::now() + 10s).has_value(); });
          fiberio::sleep_for(2ms);
          const unsigned char one = 1;
          REQUIRE(p.write_end.write(std::as_bytes(std::span(&one, 1))));
          CHECK(reader.join());
        },
        fiberio::Config{.threads = 1, .backend = kind});
  });
}

TEST_CASE("a fiber blocked in read is cancelled") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          Pipe p = make_pipe();
          auto reader = fiberio::spawn([&] {
            std::byte b[1];
            (void)p.read_end.read(b);
          });
          fiberio::sleep_for(1ms);
          reader.cancel();
          CHECK_THROWS_AS(reader.join(), fiberio::Cancelled);
          // The fd is still usable afterwards.
          const unsigned char one = 1;
          REQUIRE(p.write_end.write(std::as_bytes(std::span(&one, 1))));
          std::byte b[1];
          CHECK(p.read_end.read(b) == 1u);
        },
        fiberio::Config{.threads = 1, .backend = kind});
  });
}

TEST_CASE("several fibers waiting to read the same fd: every byte reaches exactly one of them") {
  // One worker (its reactor runs the fibers an event wakes at once, the queued ones too: none may run
  // while the waker still holds the fd's lock), two with stealing, two without (all on one worker).
  for (const auto& config : {fiberio::Config{.threads = 1}, fiberio::Config{.threads = 2},
                             fiberio::Config{.threads = 2, .work_stealing = false}}) {
    for_each_backend([&](fiberio::BackendKind kind) {
      fiberio::Config c = config;
      c.backend = kind;
      fiberio::Runtime rt{c};
      rt.block_on([] {
        Pipe p = make_pipe();
        std::vector<fiberio::JoinHandle<std::size_t>> readers;
        for (int i = 0; i < 4; ++i) {
          readers.push_back(fiberio::spawn([&] {
            std::size_t got = 0;
            std::byte b[1];
            for (;;) {
              auto n = p.read_end.read(b);
              if (!n || *n == 0) return got;
              got += *n;
            }
          }));
        }
        fiberio::sleep_for(2ms);  // all four park on the same direction
        std::vector<unsigned char> data(1000, 7);
        for (int i = 0; i < 10; ++i) {
          auto rest = bytes(data);
          while (!rest.empty())
            rest = rest.subspan(*p.write_end.write(rest));
          fiberio::sleep_for(1ms);
        }
        p.write_end.close();
        std::size_t total = 0;
        for (auto& r : readers)
          total += r.join();
        CHECK(total == 10'000);
      });
    });
  }
}

TEST_CASE("closing an AsyncFd wakes the fiber waiting on it") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          int sv[2];
          REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
          fiberio::AsyncFd a(sv[0]);
          fiberio::AsyncFd b(sv[1]);
          auto reader = fiberio::spawn([&] {
            std::byte buf[1];
            return a.read(buf, fiberio::Clock::now() + 10s);
          });
          fiberio::sleep_for(1ms);
          const int fd = a.release();  // deregisters: the waiter wakes and retries on an fd we now own
          ::shutdown(fd, SHUT_RDWR);
          auto result = reader.join();
          CHECK((!result || *result == 0));
          ::close(fd);
        },
        fiberio::Config{.threads = 1, .backend = kind});
  });
}

TEST_CASE("closing a watched fd closes it for real: the peer sees the end at once") {
  // A backend that kept a reference to the file (an io_uring poll request not cancelled before the close)
  // would keep the socket open: the peer would never see the end of the stream.
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          for (int round = 0; round < 3; ++round) {  // the fd number is reused by the next round
            int sv[2];
            REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            fiberio::AsyncFd watched(sv[0]);
            fiberio::AsyncFd peer(sv[1]);
            std::byte buf[1];
            CHECK(watched.read(buf, 5ms).error() == std::errc::timed_out);  // registered and waited on
            watched.close();
            auto n = peer.read(buf, 2s);
            REQUIRE(n);
            CHECK(*n == 0);
          }
        },
        fiberio::Config{.threads = 1, .backend = kind});
  });
}

TEST_CASE("waiting needs a fiber") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  fiberio::AsyncFd r(fds[0]), w(fds[1]);
  std::byte b[1];
  auto n = r.read(b);
  REQUIRE_FALSE(n);
  CHECK(n.error() == std::errc::operation_not_permitted);
}

TEST_CASE("wake channel: a burst of notifies costs one write until drained") {
  fiberio::detail::WakeChannel wake;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        wake.notify();
    });
  }
  for (auto& t : threads)
    t.join();
  CHECK(wake.writes() == 1);
  wake.drain();
  wake.notify();
  CHECK(wake.writes() == 2);
}

TEST_CASE("a worker blocked in its backend is woken by a spawn from another thread") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 1, .backend = kind}};
    std::this_thread::sleep_for(20ms);  // the worker parks with no timer: an unbounded wait
    for (int i = 0; i < 20; ++i) {
      std::atomic<bool> ran{false};
      std::thread other([&] { rt.spawn([&] { ran = true; }).join(); });
      other.join();
      CHECK(ran);
      std::this_thread::sleep_for(1ms);
    }
    CHECK(rt.stats()[0].unparks >= 1);
  });
}

namespace {

// A user-written backend: wraps the poll backend and counts calls, plugged in through Config.
class CountingBackend final : public fiberio::Backend {
 public:
  explicit CountingBackend(std::atomic<int>& waits) : waits_(waits) {}
  std::string_view name() const override { return "counting"; }
  std::error_code add(int fd, std::uint64_t token) override { return inner_.add(fd, token); }
  bool arm(int fd, std::uint64_t token, fiberio::Interest interest) override {
    return inner_.arm(fd, token, interest);
  }
  void remove(int fd) override { inner_.remove(fd); }
  std::size_t wait(std::span<fiberio::ReadinessEvent> out,
                   std::optional<std::chrono::nanoseconds> timeout) override {
    ++waits_;
    return inner_.wait(out, timeout);
  }

 private:
  fiberio::detail::PollBackend inner_;
  std::atomic<int>& waits_;
};

}  // namespace

TEST_CASE("a user-supplied backend plugs in through Config::backend_factory") {
  std::atomic<int> waits{0};
  fiberio::Config config{.threads = 1};
  config.backend_factory = [&] { return std::make_unique<CountingBackend>(waits); };
  fiberio::block_on(
      [] {
        Pipe p = make_pipe();
        auto reader = fiberio::spawn([&] {
          std::byte b[1];
          return *p.read_end.read(b);
        });
        fiberio::sleep_for(1ms);
        const unsigned char one = 1;
        REQUIRE(p.write_end.write(std::as_bytes(std::span(&one, 1))));
        CHECK(reader.join() == 1u);
      },
      config);
  CHECK(waits.load() > 0);
}

// The readiness word of one direction (reactor/detail/io_source.hpp): an event between the snapshot and
// the clear must survive the clear.
TEST_CASE("readiness state: a clear loses to an event that came after the snapshot") {
  fiberio::detail::IoSource::Direction d;
  using D = fiberio::detail::IoSource::Direction;
  const std::uint32_t seen = d.snapshot();
  CHECK(D::ready(seen));
  CHECK_FALSE(d.signal());  // nobody waits
  CHECK_FALSE(d.clear_if_unchanged(seen));
  CHECK(D::ready(d.snapshot()));
  const std::uint32_t now = d.snapshot();
  CHECK(d.clear_if_unchanged(now));
  CHECK_FALSE(D::ready(d.snapshot()));
  CHECK(D::epoch(d.snapshot()) == D::epoch(now));
  CHECK(d.clear_if_unchanged(now));  // already clear, same epoch: nothing to do
}

TEST_CASE("readiness state: a clearer racing a signaller never leaves the last event cleared") {
  // The signaller bumps the epoch N times; the clearer keeps clearing with fresh snapshots. Whatever the
  // interleaving, a clear only succeeds against the epoch it saw, so once the signaller's last event is in,
  // a clear with a snapshot from before it fails, and the state ends ready unless cleared after it.
  using D = fiberio::detail::IoSource::Direction;
  for (int round = 0; round < 20; ++round) {
    D d;
    std::atomic<bool> done{false};
    std::atomic<std::uint32_t> stale_clears_won{0};
    std::thread clearer([&] {
      while (!done.load(std::memory_order_acquire)) {
        const std::uint32_t seen = d.snapshot();
        if (d.clear_if_unchanged(seen) && D::epoch(d.snapshot()) != D::epoch(seen) && D::ready(seen) &&
            !D::ready(d.snapshot()))
          stale_clears_won.fetch_add(1);  // cleared although an event came after `seen`: a lost edge
      }
    });
    for (int i = 0; i < 20'000; ++i)
      d.signal();
    const std::uint32_t before_last = d.snapshot();
    done.store(true, std::memory_order_release);
    clearer.join();
    d.signal();
    CHECK_FALSE(d.clear_if_unchanged(before_last));
    CHECK(D::ready(d.snapshot()));
    CHECK(stale_clears_won.load() == 0);
  }
}

// The lock-free park slot (io_source.hpp): a fiber parks on one worker while the events for its fd are
// dispatched by another worker's thread, so the waker and the parker race on every round.
namespace {

// Makes the first wait on each fd from worker 0, so worker 0's reactor (and thread) dispatches their
// events whatever worker the fibers that use them later run on.
void register_on_worker_zero(fiberio::Runtime& rt, std::initializer_list<fiberio::AsyncFd*> fds) {
  rt.spawn_on(0, [&] {
      for (fiberio::AsyncFd* fd : fds)
        (void)fd->readable(fiberio::Clock::now());  // a passed deadline: registers, then times out
    }).join();
}

}  // namespace

TEST_CASE("park slot: a fiber parked against another worker's dispatch is woken by every event") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .work_stealing = false, .backend = kind}};
    Pipe to_echo = make_pipe(), from_echo = make_pipe();
    register_on_worker_zero(rt, {&to_echo.read_end, &from_echo.read_end});
    constexpr int kRounds = 5'000;
    auto echo = rt.spawn_on(1, [&] {
      std::byte b[1];
      for (;;) {
        auto n = to_echo.read_end.read(b, fiberio::Clock::now() + 10s);  // a lost wake-up times out
        if (!n || *n == 0) return n ? 0 : 1;
        if (!from_echo.write_end.write(b)) return 2;
      }
    });
    auto driver = rt.spawn_on(1, [&] {
      int completed = 0;
      std::byte b[1] = {std::byte{42}};
      for (; completed < kRounds; ++completed) {
        if (!to_echo.write_end.write(b)) break;
        auto n = from_echo.read_end.read(b, fiberio::Clock::now() + 10s);
        if (!n || *n != 1) break;
      }
      to_echo.write_end.close();
      return completed;
    });
    CHECK(driver.join() == kRounds);
    CHECK(echo.join() == 0);
  });
}

TEST_CASE("park slot: waiters that time out or queue behind each other while events land lose no byte") {
  // Two readers on one fd (one parks in the slot, the other queues behind it), each with deadlines of a
  // few microseconds so that timeouts keep racing the waker's take of the parked record; a plain thread
  // writes one byte at a time. Every byte must reach exactly one reader, and the readers must see the end.
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .work_stealing = false, .backend = kind}};
    Pipe p = make_pipe();
    register_on_worker_zero(rt, {&p.read_end});
    constexpr std::size_t kBytes = 5'000;
    auto reader = [&](unsigned seed) {
      return rt.spawn_on(1, [&p, seed] {
        std::size_t got = 0, timeouts = 0;
        unsigned x = seed;
        std::byte b[1];
        for (;;) {
          x = x * 1103515245u + 12345u;
          auto n = p.read_end.read(b, fiberio::Clock::now() + std::chrono::microseconds((x >> 16) % 40));
          if (!n) {
            if (n.error() != std::errc::timed_out) return got;
            ++timeouts;
            continue;
          }
          if (*n == 0) return got;
          got += *n;
        }
      });
    };
    auto first = reader(1), second = reader(2);
    std::thread writer([&] {
      const std::byte b[1] = {std::byte{7}};
      for (std::size_t i = 0; i < kBytes; ++i) {
        while (::write(p.write_end.fd(), b, 1) != 1) {
        }
        if (i % 64 == 0) std::this_thread::sleep_for(20us);  // let the readers park now and then
      }
      ::close(p.write_end.release());
    });
    writer.join();
    CHECK(first.join() + second.join() == kBytes);
  });
}

// A waker thread that fires the moment the parker has cleared the ready bit lands inside the parker's
// window (cleared, not yet parked, or parked but not yet looked at the epoch again) on most rounds: the
// race the Dekker pair closes. wait_ready() on a reactor of the test's own, as dispatch would do it.
struct ParkRace {
  fiberio::detail::Reactor reactor{std::make_unique<fiberio::detail::EpollBackend>()};
  fiberio::detail::SourceHandle handle;
  int fds[2] = {-1, -1};
  ParkRace() {
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    REQUIRE_FALSE(reactor.register_fd(fds[0], handle));
  }
  ~ParkRace() {
    reactor.deregister(handle);
    ::close(fds[0]);
    ::close(fds[1]);
  }
  fiberio::detail::IoSource::Direction& read_direction() { return handle.source->directions[0]; }
};

TEST_CASE("park slot: an event landing while the fiber parks is never lost") {
  using D = fiberio::detail::IoSource::Direction;
  ParkRace race;
  D& d = race.read_direction();
  constexpr int kRounds = 20'000;
  std::atomic<int> round{-1};
  std::thread waker([&] {
    for (int r = 0; r < kRounds; ++r) {
      while (round.load(std::memory_order_acquire) != r) {
      }
      while (D::ready(d.snapshot())) {  // until the parker has cleared it: its window is open
      }
      d.signal();
      d.wake_parked();
    }
  });
  int lost = 0;
  fiberio::block_on([&] {
    for (int r = 0; r < kRounds; ++r) {
      const std::uint32_t seen = d.snapshot();
      round.store(r, std::memory_order_release);
      const auto why = race.reactor.wait_ready(race.handle.source, race.handle.generation, race.handle.fd,
                                               fiberio::Interest::read, seen, fiberio::Clock::now() + 2s);
      if (why != fiberio::detail::WakeReason::notified) ++lost;
      while (!D::ready(d.snapshot())) {  // the waker's event, whichever way the round went
      }
    }
  });
  waker.join();
  CHECK(lost == 0);
}

// Writes over the stack just below the caller's frame, where the frame of a function it just called was:
// a waker still reading a record there would then read garbage (and TSan sees the write race the read).
[[gnu::noinline]] void scribble_stack() {
  volatile unsigned char junk[512];
  for (auto& b : junk)
    b = 0xA5;
}

TEST_CASE("park slot: a fiber that times out while a waker takes its record leaves nothing behind") {
  // Deadlines of 0-7 microseconds race the waker: sometimes the timer wins and the fiber takes its record
  // back, sometimes the waker holds it (kTaking) and the fiber must wait for it to let go before its
  // frame dies (TSan and ASan see a read of a dead record). After each round the slot must be empty.
  using D = fiberio::detail::IoSource::Direction;
  ParkRace race;
  D& d = race.read_direction();
  constexpr int kRounds = 50'000;
  std::atomic<int> round{-1};
  std::thread waker([&] {
    for (int r = 0; r < kRounds; ++r) {
      while (round.load(std::memory_order_acquire) != r) {
      }
      while (D::ready(d.snapshot()) && round.load(std::memory_order_acquire) == r) {
      }
      d.signal();
      d.wake_parked();
      while (round.load(std::memory_order_acquire) == r) {
      }
    }
  });
  int timeouts = 0, left_behind = 0;
  fiberio::block_on([&] {
    for (int r = 0; r < kRounds; ++r) {
      const std::uint32_t seen = d.snapshot();
      round.store(r, std::memory_order_release);
      const auto why = race.reactor.wait_ready(race.handle.source, race.handle.generation, race.handle.fd,
                                               fiberio::Interest::read, seen,
                                               fiberio::Clock::now() + std::chrono::microseconds(r % 8));
      scribble_stack();
      if (why == fiberio::detail::WakeReason::timeout) ++timeouts;
      if (d.parked.load() != D::kEmpty) ++left_behind;
      while (!D::ready(d.snapshot())) {  // the waker has signalled this round
      }
      round.store(-1, std::memory_order_release);  // let the waker finish the round
    }
  });
  waker.join();
  CHECK(left_behind == 0);
  MESSAGE("timeouts: " << timeouts << " of " << kRounds);
}

// epoll watches an fd's writability only from its first wait to write (Arming::first_write): that first
// arm must reach the kernel for a writer parked in the slot, for one queued behind it (armed under the
// source's lock) and for a select() branch, and later waits must need none. A lost arm times out.
TEST_CASE(
    "waits to write: writers blocked on a full pipe all wake when it drains, the first time and after") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .work_stealing = false, .backend = kind}};
    Pipe p = make_pipe();
    register_on_worker_zero(rt, {&p.write_end});  // registered before its first wait to write
    const auto fill = [&] {
      std::vector<std::byte> chunk(64 * 1024);
      while (::write(p.write_end.fd(), chunk.data(), chunk.size()) > 0) {
      }
      REQUIRE(errno == EAGAIN);
    };
    const auto drain = [&] {  // from this thread, not a fiber: the event comes from the kernel alone
      std::vector<std::byte> chunk(64 * 1024);
      while (::read(p.read_end.fd(), chunk.data(), chunk.size()) > 0) {
      }
    };
    std::atomic<int> blocked{0};
    for (int round = 0; round < 3; ++round) {
      fill();
      blocked = 0;
      std::vector<fiberio::JoinHandle<bool>> writers;
      for (std::uint32_t i = 0; i < 3; ++i) {  // the first parks in the slot, the others queue
        writers.push_back(rt.spawn_on(i % 2, [&] {
          const std::byte one{1};
          blocked.fetch_add(1);
          auto n = p.write_end.write(std::span(&one, 1), fiberio::Clock::now() + 5s);
          return n && *n == 1;
        }));
      }
      writers.push_back(rt.spawn_on(1, [&] {
        blocked.fetch_add(1);
        return fiberio::select(fiberio::on_writable(p.write_end), fiberio::on_timeout(5s)).index() == 0;
      }));
      while (blocked.load() < 4)
        std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(20ms);  // into their waits (a write that came too early only succeeds)
      drain();
      for (auto& writer : writers)
        CHECK(writer.join());
      drain();
    }
  });
}
