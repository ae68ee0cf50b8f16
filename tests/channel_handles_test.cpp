// Sender and Receiver handles (executor/channel_handles.hpp): the last sender gone closes the channel, the
// last receiver gone refuses every send (waking blocked senders) and drops the queue,
// wait_receivers_gone()/on_receivers_gone() tell a sender so; copies count; a stress of handles copied and
// dropped across workers.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct RuntimeShape {
  std::uint32_t threads;
  bool stealing;
  const char* name;
};
constexpr RuntimeShape kShapes[] = {
    {1, true, "1 worker"}, {4, false, "4 workers without stealing"}, {4, true, "4 workers with stealing"}};

// One runtime of a shape, as the test body sees it.
struct Run {
  const RuntimeShape& shape;
  fiberio::Runtime& rt;
  // Spawns on worker k (modulo the workers): without stealing a fiber stays where it was spawned, so
  // fiberio::spawn() alone would keep every fiber on the caller's worker.
  template <class F>
  auto spawn(std::uint32_t k, F&& fn) const {
    return rt.spawn_on(k % shape.threads, std::forward<F>(fn));
  }
};

// Runs `body(run)` as a fiber on a runtime of each shape.
template <class Body>
void on_each_shape(Body body) {
  for (const RuntimeShape& shape : kShapes) {
    fiberio::Runtime rt{fiberio::Config{.threads = shape.threads, .work_stealing = shape.stealing}};
    rt.block_on([&] { body(Run{shape, rt}); });
  }
}

// Waits at most `limit` for the fiber's end. A fiber still running then is cancelled, so a broken wake-up
// fails the test instead of hanging it. True if it ended by itself.
template <class R>
bool ends_within(fiberio::JoinHandle<R>& fiber, std::chrono::milliseconds limit) {
  if (fiberio::select(fiberio::on_join(fiber), fiberio::on_timeout(limit)).index() == 0) return true;
  fiber.cancel();
  return false;
}

// Fills a stack region with junk: a waiter a select left behind on its (now dead) frame would be
// overwritten, and the next wake-up through it would fault (or trip ASan).
__attribute__((noinline)) void scribble_stack() {
  volatile char junk[4096];
  for (std::size_t i = 0; i < sizeof junk; ++i)
    junk[i] = static_cast<char>(0xA5);
}

}  // namespace

TEST_CASE("channel handles: the last sender gone closes the channel; receivers drain, then get nullopt") {
  on_each_shape([](const Run& run) {
    auto [tx, rx] = fiberio::channel<int>(8);
    std::atomic<bool> waiting_ended{false};
    auto waiter = run.spawn(1, [rx, &waiting_ended] {  // a second receiver, blocked until the end
      std::vector<int> got;
      while (auto v = rx.recv())
        got.push_back(*v);
      waiting_ended = true;
      return got;
    });
    fiberio::sleep_for(2ms);
    auto tx2 = tx;
    CHECK(tx.send(1));
    CHECK(tx2.send(2));
    {
      // Moving passes the count on: the moved-from handle counts nothing when it goes.
      auto moved = std::move(tx);
      auto moved_again = std::move(moved);
    }
    fiberio::sleep_for(5ms);
    CHECK_FALSE(waiting_ended);  // tx2 is still there
    CHECK(tx2.send(3));
    // Assigning a copy over a handle of the same channel keeps the count; the last one closes.
    fiberio::Sender<int> tx3 = tx2;
    tx3 = tx2;
    tx2 = std::move(tx3);
    CHECK(tx2.send(4));
    { auto last = std::move(tx2); }
    REQUIRE(ends_within(waiter, 2s));
    const auto got = waiter.join();
    CHECK(waiting_ended);
    CHECK(got == std::vector<int>{1, 2, 3, 4});

    // Items still queued when the last sender goes are drained first.
    auto [tx4, rx4] = fiberio::channel<int>();
    CHECK(tx4.send(7));
    CHECK(tx4.send(8));
    { auto last = std::move(tx4); }
    CHECK(rx4.recv() == 7);
    CHECK(rx4.try_recv() == 8);
    CHECK_FALSE(rx4.recv());
    CHECK_FALSE(rx4.recv_for(1s));  // closed: at once, not after the second
    auto got_select = fiberio::select(fiberio::on_recv(rx4), fiberio::on_timeout(5s));
    REQUIRE(got_select.index() == 0);
    CHECK_FALSE(std::get<0>(got_select));
  });
}

TEST_CASE(
    "channel handles: the last receiver gone refuses sends, hands values back, drops the queue at once") {
  fiberio::block_on([] {
    auto [tx, rx] = fiberio::channel<std::shared_ptr<int>>(4);
    auto item = std::make_shared<int>(1);
    CHECK(tx.send(item));
    CHECK(tx.send(item));
    CHECK(item.use_count() == 3);  // two queued copies
    CHECK_FALSE(tx.receivers_gone());
    { auto last = std::move(rx); }
    CHECK(item.use_count() == 1);  // dropped with the last receiver, though a sender is still there
    CHECK(tx.receivers_gone());
    CHECK_FALSE(tx.send(item));
    CHECK_FALSE(tx.try_send(item));
    auto refused = tx.send_until(std::make_shared<int>(2), fiberio::Clock::now() + 5s);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().closed);
    REQUIRE(refused.error().value);
    CHECK(*refused.error().value == 2);
    auto refused_for = tx.send_for(item, 5s);
    REQUIRE_FALSE(refused_for);
    CHECK(refused_for.error().closed);
    CHECK(refused_for.error().value == item);
    refused_for.emplace();
    CHECK(item.use_count() == 1);  // a refused send queued nothing
    CHECK(tx.wait_receivers_gone_for(1s));
    auto send = fiberio::on_send(tx, item);
    auto got = fiberio::select(send, fiberio::on_timeout(5s));
    REQUIRE(got.index() == 0);
    CHECK_FALSE(std::get<0>(got));
    CHECK(send.take_value() == item);
  });
}

TEST_CASE(
    "channel handles: senders blocked on a full or a rendezvous channel wake when the last receiver goes") {
  on_each_shape([](const Run& run) {
    for (const std::size_t capacity : {std::size_t{1}, std::size_t{0}}) {
      auto [tx, rx] = fiberio::channel<int>(capacity);
      if (capacity == 1) REQUIRE(tx.send(0));  // full from now on
      std::atomic<int> ended{0};
      auto plain = run.spawn(1, [tx, &ended] {
        const bool sent = tx.send(1);
        ++ended;
        return sent;
      });
      auto limited = run.spawn(2, [tx, &ended] {
        auto r = tx.send_for(2, 10s);
        ++ended;
        return r;
      });
      auto selecting = run.spawn(3, [tx, &ended] {
        auto branch = fiberio::on_send(tx, 3);
        auto got = fiberio::select(branch);
        ++ended;
        return std::pair{std::get<0>(got), branch.take_value()};
      });
      auto watching = run.spawn(0, [tx, &ended] {
        tx.wait_receivers_gone();
        ++ended;
        return tx.receivers_gone();
      });
      fiberio::sleep_for(5ms);
      CHECK(ended == 0);  // all four wait for a receiver
      // The last receiver goes on a plain thread.
      std::thread dropper([rx = std::move(rx)]() mutable { auto last = std::move(rx); });
      dropper.join();
      REQUIRE(ends_within(plain, 2s));
      CHECK_FALSE(plain.join());
      REQUIRE(ends_within(limited, 2s));
      const auto refused = limited.join();
      REQUIRE_FALSE(refused);
      CHECK(refused.error().closed);
      CHECK(refused.error().value == 2);
      REQUIRE(ends_within(selecting, 2s));
      const auto [sent, kept] = selecting.join();
      CHECK_FALSE(sent);
      CHECK(kept == 3);
      REQUIRE(ends_within(watching, 2s));
      CHECK(watching.join());
    }
  });
}

TEST_CASE("channel handles: wait_receivers_gone() returns when the last receiver goes on another thread") {
  on_each_shape([](const Run& run) {
    auto [tx, rx] = fiberio::channel<int>();
    CHECK_FALSE(tx.wait_receivers_gone_for(2ms));
    CHECK_FALSE(tx.wait_receivers_gone_until(fiberio::Clock::now() + 1ms));
    std::atomic<bool> dropped{false};
    // A fiber waits, and a plain thread too.
    auto fiber_waiter = run.spawn(1, [tx, &dropped] {
      tx.wait_receivers_gone();
      return dropped.load() && !tx.send(1);  // once wait_receivers_gone() returns, every send is refused
    });
    std::atomic<bool> thread_saw{false};
    std::thread thread_waiter([tx, &dropped, &thread_saw] {  // bounded: a broken wake-up fails, not hangs
      thread_saw = tx.wait_receivers_gone_for(5s) && dropped.load() && tx.receivers_gone();
    });
    // The last receiver leaves from a fiber on (possibly) another worker, after a copy went first.
    auto rx2 = rx;
    { auto gone = std::move(rx); }
    fiberio::sleep_for(5ms);
    CHECK_FALSE(tx.receivers_gone());  // rx2 still counts
    auto dropper = run.spawn(2, [rx2 = std::move(rx2), &dropped]() mutable {
      fiberio::sleep_for(2ms);
      dropped = true;
      auto last = std::move(rx2);
    });
    dropper.join();
    const bool fiber_ended = ends_within(fiber_waiter, 2s);
    thread_waiter.join();
    CHECK(thread_saw);
    REQUIRE(fiber_ended);
    CHECK(fiber_waiter.join());
    CHECK(tx.wait_receivers_gone_until(fiberio::Clock::now() + 1s));
  });
}

TEST_CASE("channel handles: on_receivers_gone in select; a branch that loses leaves nothing behind") {
  on_each_shape([](const Run& run) {
    auto [tx, rx] = fiberio::channel<int>();
    auto [work_tx, work_rx] = fiberio::channel<int>();
    CHECK(work_tx.send(5));
    // Ready work wins; the wait for the end takes nothing.
    auto got = fiberio::select(fiberio::on_receivers_gone(tx), fiberio::on_recv(work_rx));
    REQUIRE(got.index() == 1);
    CHECK(std::get<1>(got) == 5);
    // Lost to a timeout while waiting (so it was subscribed).
    CHECK(fiberio::select(fiberio::on_receivers_gone(tx), fiberio::on_timeout(5ms)).index() == 1);
    scribble_stack();
    // A waiter that branch left queued lies on a dead, scribbled frame: the last receiver's exit below
    // would wake it and fault. Meanwhile a producer answers work until nobody reads its answers.
    auto producer = run.spawn(1, [tx, work_rx] {
      int answered = 0;
      for (;;) {
        auto next = fiberio::select(fiberio::on_receivers_gone(tx), fiberio::on_recv(work_rx));
        if (next.index() == 0) return answered;
        if (!std::get<1>(next)) return -1;  // no more work: not this test's way to end
        if (tx.send(*std::get<1>(next) * 2)) ++answered;
      }
    });
    for (int i = 1; i <= 3; ++i) {
      REQUIRE(work_tx.send(i));
      CHECK(rx.recv() == 2 * i);
    }
    { auto last = std::move(rx); }
    REQUIRE(ends_within(producer, 2s));
    CHECK(producer.join() == 3);
    auto again = fiberio::select(fiberio::on_receivers_gone(tx), fiberio::on_timeout(5s));
    CHECK(again.index() == 0);  // closed: ready at once, as often as asked
  });
}

TEST_CASE("channel handles: every copy counts; dropping one of two receivers leaves the sender open") {
  fiberio::block_on([] {
    auto [tx, rx] = fiberio::channel<int>(2);
    std::optional<fiberio::Receiver<int>> rx2{rx};
    fiberio::Receiver<int> rx3 = rx;
    rx3 = std::move(*rx2);  // assigning over a handle of the same channel: still two counted
    rx2.reset();            // a moved-from handle counts nothing
    { auto gone = std::move(rx); }
    CHECK_FALSE(tx.receivers_gone());
    CHECK_FALSE(tx.wait_receivers_gone_for(2ms));
    CHECK(tx.send(1));
    CHECK(tx.try_send(2));
    CHECK(rx3.recv() == 1);
    // A receiver assigned a handle of another channel leaves the first: the last one here.
    auto [other_tx, other_rx] = fiberio::channel<int>(2);
    rx3 = other_rx;
    CHECK(tx.receivers_gone());
    CHECK_FALSE(tx.send(3));
    CHECK(other_tx.send(4));
    CHECK(rx3.recv() == 4);
    CHECK_FALSE(other_tx.receivers_gone());
  });
}

namespace {

// Where each value of the stress ended: received, handed back to its sender, or dropped (destroyed while
// in the channel's hands or refused by send()). Each value sent must end exactly once.
struct Ledger {
  explicit Ledger(int n) : attempted(n), received(n), handed_back(n), dropped(n) {}
  std::vector<std::atomic<int>> attempted, received, handed_back, dropped;
  std::atomic<int> receivers_alive{0};  // fibers holding a Receiver: drops before it is 0 are wrong
  std::atomic<int> early_drops{0};
};

class Token {
 public:
  Token(int value, Ledger& ledger) : value_(value), ledger_(&ledger) { ++ledger.attempted[value]; }
  Token(Token&& other) noexcept : value_(other.value_), ledger_(std::exchange(other.ledger_, nullptr)) {}
  Token& operator=(Token&& other) noexcept {
    std::swap(value_, other.value_);
    std::swap(ledger_, other.ledger_);
    return *this;
  }
  ~Token() {
    if (!ledger_) return;
    ++ledger_->dropped[value_];
    if (ledger_->receivers_alive.load() > 0) ++ledger_->early_drops;
  }
  void settle(std::vector<std::atomic<int>> Ledger::*where) {
    ++((*ledger_).*where)[value_];
    ledger_ = nullptr;
  }

 private:
  int value_;
  Ledger* ledger_;
};

// Sends `value` the way `how` picks; false once refused (the value then settled as handed back or dropped).
bool send_one(const fiberio::Sender<Token>& tx, Token token, int how) {
  switch (how % 3) {
    case 0:
      return tx.send(std::move(token));  // refused: destroyed in send(), a drop
    case 1: {
      auto r = tx.send_until(std::move(token), fiberio::Clock::now() + 10s);
      if (r) return true;
      r.error().value.settle(&Ledger::handed_back);
      return false;
    }
    default: {
      auto branch = fiberio::on_send(tx, std::move(token));
      auto got = fiberio::select(branch, fiberio::on_receivers_gone(tx));
      if (got.index() == 0 && std::get<0>(got)) return true;
      branch.take_value()->settle(&Ledger::handed_back);
      return false;
    }
  }
}

// One receive, picked by `how`: the item, nullopt once closed and drained; `idle` when nothing came yet.
std::optional<Token> recv_one(const fiberio::Receiver<Token>& rx, int how, bool& idle) {
  idle = false;
  switch (how % 3) {
    case 0:
      return rx.recv();
    case 1: {
      auto got = fiberio::select(fiberio::on_recv(rx), fiberio::on_timeout(1ms));
      if (got.index() == 1) {
        idle = true;
        return std::nullopt;
      }
      return std::move(std::get<0>(got));
    }
    default: {
      auto v = rx.try_recv();
      if (!v) {
        idle = true;  // empty or closed: a later recv() tells
        fiberio::yield();
      }
      return v;
    }
  }
}

// Copies and drops both ends, `rounds` times, while the traffic flows: handles made and destroyed on
// whichever worker runs it. Counted as a live receiver until it lets go of its last Receiver.
fiberio::JoinHandle<void> spawn_churner(const Run& run, std::uint32_t worker,
                                        const fiberio::Sender<Token>& tx, const fiberio::Receiver<Token>& rx,
                                        Ledger& ledger, int rounds) {
  ++ledger.receivers_alive;
  return run.spawn(worker, [tx = tx, rx = rx, &ledger, rounds]() mutable {
    for (int i = 0; i < rounds; ++i) {
      std::vector<fiberio::Sender<Token>> senders(3, tx);
      std::vector<fiberio::Receiver<Token>> receivers(3, rx);
      tx = senders[i % 3];
      rx = std::move(receivers[(i + 1) % 3]);
      if (i % 4 == 0) fiberio::yield();
    }
    --ledger.receivers_alive;
    auto last = std::move(rx);
  });
}

}  // namespace

TEST_CASE(
    "channel handles stress: handles copied and dropped across workers; every value ends exactly once") {
  on_each_shape([](const Run& run) {
    constexpr int kSenders = 6, kPerSender = 600, kReceivers = 5, kChurners = 2;
    constexpr int kValues = kSenders * kPerSender;

    // Senders leave first: every value is received exactly once.
    for (const std::size_t capacity : {std::size_t{8}, std::size_t{0}}) {
      Ledger ledger(kValues);
      auto [tx, rx] = fiberio::channel<Token>(capacity);
      std::vector<fiberio::JoinHandle<void>> receivers;
      for (int r = 0; r < kReceivers; ++r) {
        receivers.push_back(run.spawn(r, [rx, &ledger, r]() mutable {
          for (int n = r;; ++n) {
            bool idle = false;
            auto token = recv_one(rx, n, idle);
            if (!token && !idle) return;
            if (token) token->settle(&Ledger::received);
            if (n % 16 == 0) {  // churn: a fresh copy replaces the handle
              auto next = rx;
              rx = std::move(next);
            }
          }
        }));
      }
      std::vector<fiberio::JoinHandle<void>> churners;
      for (int c = 0; c < kChurners; ++c)
        churners.push_back(spawn_churner(run, c + 2, tx, rx, ledger, 200));
      std::thread plain_churner([tx, rx] {  // copies made and dropped on a thread outside the runtime
        for (int i = 0; i < 2000; ++i) {
          auto t = tx;
          auto r = rx;
        }
      });
      { auto mine = std::move(rx); }
      std::vector<fiberio::JoinHandle<std::vector<fiberio::JoinHandle<void>>>> senders;
      for (int s = 0; s < kSenders; ++s) {
        senders.push_back(run.spawn(s + 1, [tx, &ledger, &run, s]() mutable {
          std::vector<fiberio::JoinHandle<void>> helpers;
          for (int i = 0; i < kPerSender; ++i) {
            const int value = s * kPerSender + i;
            if (i % 50 == 10) {
              // A helper with a copy of the handle sends the next 10 values, then drops its copy.
              helpers.push_back(run.spawn(value, [copy = tx, &ledger, value] {
                for (int k = 0; k < 10; ++k)
                  REQUIRE(send_one(copy, Token(value + k, ledger), k));
              }));
              i += 9;
              continue;
            }
            REQUIRE(send_one(tx, Token(value, ledger), i));
            if (i % 16 == 0) {
              fiberio::Sender<Token> next = tx;
              tx = next;
            }
          }
          return helpers;
        }));
      }
      { auto mine = std::move(tx); }
      for (auto& s : senders) {
        REQUIRE(ends_within(s, 10s));
        for (auto& h : s.join())
          REQUIRE(ends_within(h, 10s));
      }
      plain_churner.join();  // ends on its own: it only copies
      for (auto& c : churners)
        REQUIRE(ends_within(c, 10s));
      for (auto& r : receivers)
        REQUIRE(ends_within(r, 10s));
      int wrong = 0;
      for (int v = 0; v < kValues; ++v)
        wrong += ledger.attempted[v] != 1 || ledger.received[v] != 1 || ledger.handed_back[v] != 0 ||
                 ledger.dropped[v] != 0;
      CHECK_MESSAGE(wrong == 0, std::string(run.shape.name), ", capacity ", capacity, ": senders left first");
    }

    // Receivers leave first: senders, blocked or not, are refused and stop; each value tried is received,
    // handed back or dropped (only once every receiver has gone) exactly once.
    for (const std::size_t capacity : {std::size_t{8}, std::size_t{0}}) {
      Ledger ledger(kValues);
      auto [tx, rx] = fiberio::channel<Token>(capacity);
      ledger.receivers_alive = 1;  // this fiber's rx
      auto tx_for_churners = tx;
      std::vector<fiberio::JoinHandle<void>> senders;
      for (int s = 0; s < kSenders; ++s) {
        senders.push_back(run.spawn(s + 1, [tx, &ledger, s]() mutable {
          for (int i = 0; i < kPerSender; ++i) {
            if (!send_one(tx, Token(s * kPerSender + i, ledger), i + s)) return;
            if (i % 16 == 0) {
              auto next = tx;
              tx = std::move(next);
            }
          }
        }));
      }
      { auto mine = std::move(tx); }
      std::vector<fiberio::JoinHandle<void>> receivers;
      for (int r = 0; r < kReceivers; ++r) {
        ++ledger.receivers_alive;
        receivers.push_back(run.spawn(r, [rx, &ledger, r]() mutable {
          const int quota = 40 + 25 * r;
          for (int n = r, got = 0; got < quota; ++n) {
            bool idle = false;
            auto token = recv_one(rx, n, idle);
            if (!token && !idle) break;
            if (token) {
              token->settle(&Ledger::received);
              ++got;
            }
            if (n % 8 == 0) {
              fiberio::Receiver<Token> next = rx;
              rx = next;
            }
          }
          --ledger.receivers_alive;  // before the handle goes: it may be the last
          auto last = std::move(rx);
        }));
      }
      std::vector<fiberio::JoinHandle<void>> churners;
      for (int c = 0; c < kChurners; ++c)
        churners.push_back(spawn_churner(run, c + 2, tx_for_churners, rx, ledger, 100));
      { auto none = std::move(tx_for_churners); }
      --ledger.receivers_alive;
      { auto mine = std::move(rx); }
      for (auto& c : churners)
        REQUIRE(ends_within(c, 10s));
      for (auto& r : receivers)
        REQUIRE(ends_within(r, 10s));
      for (auto& s : senders)
        REQUIRE(ends_within(s, 10s));
      int wrong = 0, tried = 0;
      for (int v = 0; v < kValues; ++v) {
        const int ends = ledger.received[v] + ledger.handed_back[v] + ledger.dropped[v];
        tried += ledger.attempted[v];
        wrong += ledger.attempted[v] > 1 || ends != ledger.attempted[v];
      }
      CHECK_MESSAGE(wrong == 0, std::string(run.shape.name), ", capacity ", capacity,
                    ": receivers left first");
      CHECK_MESSAGE(ledger.early_drops == 0, std::string(run.shape.name), ", capacity ", capacity);
      // The senders did stop early: refused, not out of values.
      CHECK_MESSAGE(tried < kValues, std::string(run.shape.name), ", capacity ", capacity);
    }
  });
}
