// select(): one of several waits completes, the others leave nothing behind; on one worker and across
// workers, with cancellation and deadlines, and a stress of many selecting receivers.
#include "backends.hpp"

#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Fills a stack region with junk: a waiter a select left behind on its (now dead) frame would be
// overwritten, and the next wake-up through it would fault (or trip ASan).
__attribute__((noinline)) void scribble_stack() {
  volatile char junk[4096];
  for (std::size_t i = 0; i < sizeof junk; ++i)
    junk[i] = static_cast<char>(0xA5);
}

}  // namespace

TEST_CASE("select: a ready branch completes at once and the others are untouched") {
  fiberio::block_on([] {
    fiberio::Channel<int> a, b;
    a.send(1);
    b.send(2);
    fiberio::Event never;
    auto got = fiberio::select(fiberio::on_recv(a), fiberio::on_recv(b), fiberio::on_set(never));
    REQUIRE(got.index() < 2);
    const int value = got.index() == 0 ? *std::get<0>(got) : *std::get<1>(got);
    CHECK(value == static_cast<int>(got.index()) + 1);
    // Exactly one item was taken, from the chosen channel.
    CHECK(a.size() + b.size() == 1);
    CHECK((got.index() == 0 ? b.size() : a.size()) == 1);
  });
}

TEST_CASE("select: the choice among ready branches is fair") {
  fiberio::block_on([] {
    fiberio::Channel<int> a, b;
    std::array<int, 2> chosen{};
    for (int i = 0; i < 1000; ++i) {
      if (a.size() == 0) a.send(0);
      if (b.size() == 0) b.send(1);
      auto got = fiberio::select(fiberio::on_recv(a), fiberio::on_recv(b));
      ++chosen[got.index()];
    }
    CHECK(chosen[0] >= 300);
    CHECK(chosen[1] >= 300);
  });
}

TEST_CASE("select: waits for the first channel that gets an item, from a fiber or a plain thread") {
  for (const std::uint32_t threads : {1u, 3u}) {
    fiberio::Runtime rt{fiberio::Config{.threads = threads}};
    rt.block_on([] {
      fiberio::Channel<int> a, b;
      auto sender = fiberio::spawn([&] {
        fiberio::sleep_for(5ms);
        b.send(42);
      });
      auto got = fiberio::select(fiberio::on_recv(a), fiberio::on_recv(b));
      CHECK(got.index() == 1);
      CHECK(std::get<1>(got) == 42);
      sender.join();

      std::thread plain([&] {
        std::this_thread::sleep_for(5ms);
        a.send(7);
      });
      auto again = fiberio::select(fiberio::on_recv(a), fiberio::on_recv(b));
      plain.join();
      CHECK(again.index() == 0);
      CHECK(std::get<0>(again) == 7);
    });
  }
}

TEST_CASE("select: a timeout wins when nothing comes, and the losing receive leaves no waiter behind") {
  fiberio::block_on([] {
    fiberio::Channel<int> a;
    auto got = fiberio::select(fiberio::on_recv(a), fiberio::on_timeout(10ms));
    CHECK(got.index() == 1);
    scribble_stack();
    // A receiver queued now is the only one: a stale waiter in front of it would take (or crash) the wake.
    auto receiver = fiberio::spawn([&] { return a.recv(); });
    fiberio::sleep_for(2ms);
    a.send(5);
    CHECK(receiver.join() == 5);

    // A deadline already passed completes at once, even with nothing else ready.
    auto late = fiberio::select(fiberio::on_recv(a), fiberio::on_deadline(fiberio::Clock::now() - 1s));
    CHECK(late.index() == 1);
  });
}

TEST_CASE("select: a send completes when there is room; a send that lost keeps its value") {
  fiberio::block_on([] {
    fiberio::Channel<std::string> ch{1};
    ch.send("first");
    auto send = fiberio::on_send(ch, std::string("second"));
    auto lost = fiberio::select(send, fiberio::on_timeout(10ms));
    CHECK(lost.index() == 1);
    CHECK(send.take_value() == "second");
    CHECK(ch.size() == 1);

    auto reader = fiberio::spawn([&] {
      fiberio::sleep_for(5ms);
      return ch.recv();
    });
    auto third = fiberio::on_send(ch, std::string("third"));
    auto won = fiberio::select(third, fiberio::on_timeout(5s));
    CHECK(won.index() == 0);
    CHECK(std::get<0>(won));  // sent
    CHECK_FALSE(third.take_value());
    CHECK(reader.join() == "first");
    CHECK(ch.recv() == "third");

    ch.close();
    auto refused = fiberio::on_send(ch, std::string("late"));
    auto closed = fiberio::select(refused);
    CHECK_FALSE(std::get<0>(closed));
    CHECK(refused.take_value() == "late");
  });
}

TEST_CASE("select: a closed channel completes its receive with nullopt") {
  fiberio::block_on([] {
    fiberio::Channel<int> a, b;
    auto closer = fiberio::spawn([&] {
      fiberio::sleep_for(5ms);
      b.close();
    });
    auto got = fiberio::select(fiberio::on_recv(a), fiberio::on_recv(b));
    CHECK(got.index() == 1);
    CHECK_FALSE(std::get<1>(got));
    closer.join();
  });
}

TEST_CASE("select: cancellation while waiting throws Cancelled and takes nothing") {
  for (const std::uint32_t threads : {1u, 2u}) {
    fiberio::Runtime rt{fiberio::Config{.threads = threads}};
    rt.block_on([] {
      fiberio::Channel<int> a, b;
      std::atomic<bool> waiting{false};
      auto selector = fiberio::spawn([&] {
        waiting = true;
        (void)fiberio::select(fiberio::on_recv(a), fiberio::on_recv(b), fiberio::on_timeout(10s));
      });
      while (!waiting)
        fiberio::sleep_for(1ms);
      fiberio::sleep_for(2ms);
      selector.cancel();
      CHECK_THROWS_AS(selector.join(), fiberio::Cancelled);
      scribble_stack();
      a.send(1);
      b.send(2);
      CHECK(a.try_recv() == 1);
      CHECK(b.try_recv() == 2);
    });
  }
}

TEST_CASE("select: an event set from a plain thread, and a fiber's end") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  rt.block_on([] {
    fiberio::Event ev;
    fiberio::Channel<int> never;
    std::thread setter([&] {
      std::this_thread::sleep_for(5ms);
      ev.set();
    });
    auto got = fiberio::select(fiberio::on_recv(never), fiberio::on_set(ev));
    setter.join();
    CHECK(got.index() == 1);
    // A set event completes every branch on it, as often as asked.
    CHECK(fiberio::select(fiberio::on_set(ev)).index() == 0);

    auto worker = fiberio::spawn([] {
      fiberio::sleep_for(5ms);
      return 42;
    });
    auto done = fiberio::select(fiberio::on_recv(never), fiberio::on_join(worker));
    CHECK(done.index() == 1);
    CHECK(worker.is_finished());
    CHECK(worker.join() == 42);

    auto slow = fiberio::spawn([] { fiberio::sleep_for(10s); });
    CHECK(fiberio::select(fiberio::on_join(slow), fiberio::on_timeout(5ms)).index() == 1);
    scribble_stack();
    slow.cancel();
    CHECK_THROWS_AS(slow.join(), fiberio::Cancelled);  // its end wakes nobody stale
  });
}

TEST_CASE("select: an fd's readiness, without consuming it") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 1, .backend = kind}};
    rt.block_on([] {
      int fds[2];
      REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
      fiberio::AsyncFd reader{fds[0]}, writer{fds[1]};
      fiberio::Channel<int> never;

      // Nothing to read: the timeout wins, and the wait leaves nothing behind.
      auto idle = fiberio::select(fiberio::on_readable(reader), fiberio::on_timeout(10ms));
      CHECK(idle.index() == 1);
      scribble_stack();

      auto later = fiberio::spawn([&] {
        fiberio::sleep_for(5ms);
        const char byte = 'x';
        REQUIRE(writer.write(std::as_bytes(std::span(&byte, 1))));
      });
      auto got = fiberio::select(fiberio::on_recv(never), fiberio::on_readable(reader));
      CHECK(got.index() == 1);
      CHECK(std::get<1>(got));
      later.join();
      std::array<std::byte, 8> buffer;
      auto n = reader.read(buffer);  // the select consumed nothing
      REQUIRE(n);
      CHECK(*n == 1);

      // Readable again only after more bytes: a read after a select that timed out still wakes.
      CHECK(fiberio::select(fiberio::on_readable(reader), fiberio::on_timeout(5ms)).index() == 1);
      auto more = fiberio::spawn([&] {
        fiberio::sleep_for(5ms);
        const char byte = 'y';
        REQUIRE(writer.write(std::as_bytes(std::span(&byte, 1))));
      });
      auto m = reader.read(buffer, fiberio::Clock::now() + 5s);
      REQUIRE(m);
      CHECK(*m == 1);
      more.join();

      CHECK(fiberio::select(fiberio::on_writable(writer)).index() == 0);
      reader.close();
      auto closed = fiberio::select(fiberio::on_readable(reader));
      REQUIRE_FALSE(std::get<0>(closed));
      CHECK(std::get<0>(closed).error() == std::errc::bad_file_descriptor);
    });
  });
}

TEST_CASE("select stress: selecting receivers across workers get every item exactly once") {
  for (const bool stealing : {false, true}) {
    fiberio::Runtime rt{fiberio::Config{.threads = 4, .work_stealing = stealing}};
    rt.block_on([] {
      constexpr int kProducers = 4, kConsumers = 6, kPerProducer = 2000;
      fiberio::Channel<int> a{8}, b{8};
      std::atomic<long> sum{0};
      std::atomic<int> count{0};
      std::vector<fiberio::JoinHandle<void>> consumers;
      for (int c = 0; c < kConsumers; ++c) {
        consumers.push_back(fiberio::spawn([&] {
          bool a_open = true, b_open = true;
          while (a_open || b_open) {
            auto got = fiberio::select(fiberio::on_recv(a), fiberio::on_recv(b), fiberio::on_timeout(1ms));
            if (got.index() == 2) continue;  // timeouts race the items too: they must lose nothing
            auto& item = got.index() == 0 ? std::get<0>(got) : std::get<1>(got);
            if (!item) {
              (got.index() == 0 ? a_open : b_open) = false;
              if (!a_open && !b_open) break;
              // One side is closed and drained: wait on the other alone.
              auto& open = a_open ? a : b;
              while (auto v = open.recv()) {
                sum += *v;
                ++count;
              }
              break;
            }
            sum += *item;
            ++count;
          }
        }));
      }
      std::vector<fiberio::JoinHandle<void>> producers;
      for (int p = 0; p < kProducers; ++p) {
        producers.push_back(fiberio::spawn([&, p] {
          for (int i = 1; i <= kPerProducer; ++i) {
            auto& ch = (i + p) % 2 ? a : b;
            // Senders select too: on the two channels, whichever has room (either is fine for the sum).
            auto to_a = fiberio::on_send(a, i);
            auto to_b = fiberio::on_send(b, i);
            if ((i + p) % 3 == 0) {
              (void)fiberio::select(to_a, to_b);
            } else {
              ch.send(i);
            }
          }
        }));
      }
      for (auto& p : producers)
        p.join();
      a.close();
      b.close();
      for (auto& c : consumers)
        c.join();
      CHECK(count == kProducers * kPerProducer);
      CHECK(sum == static_cast<long>(kProducers) * kPerProducer * (kPerProducer + 1) / 2);
    });
  }
}
