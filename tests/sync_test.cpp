// Fiber synchronisation: Mutex, ConditionVariable, Semaphore, Event, Channel, WaitGroup, on one worker and
// across workers, woken by fibers and by plain threads.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("channel ping-pong between two fibers") {
  const int last = fiberio::block_on([] {
    fiberio::Channel<int> ping{1}, pong{1};
    auto echo = fiberio::spawn([&] {
      while (auto v = ping.recv())
        pong.send(*v + 1);
      pong.close();
    });
    int v = 0;
    for (int i = 0; i < 10'000; ++i) {
      ping.send(v);
      v = *pong.recv();
    }
    ping.close();
    CHECK_FALSE(pong.recv());  // closed and drained
    echo.join();
    return v;
  });
  CHECK(last == 10'000);
}

TEST_CASE("channel close: receivers drain, then get nullopt; senders get false") {
  fiberio::block_on([] {
    fiberio::Channel<int> ch{4};
    CHECK(ch.send(1));
    CHECK(ch.send(2));
    ch.close();
    CHECK_FALSE(ch.send(3));
    CHECK(ch.recv() == 1);
    CHECK(ch.recv() == 2);
    CHECK_FALSE(ch.recv());
    CHECK(ch.is_closed());
  });
}

TEST_CASE("close wakes blocked receivers and senders") {
  fiberio::block_on([] {
    fiberio::Channel<int> empty{1}, full{1};
    full.send(0);
    auto r = fiberio::spawn([&] { return empty.recv().has_value(); });
    auto s = fiberio::spawn([&] { return full.send(1); });
    fiberio::sleep_for(2ms);
    empty.close();
    full.close();
    CHECK_FALSE(r.join());
    CHECK_FALSE(s.join());
  });
}

TEST_CASE("bounded channel: a sender waits while full, and order is kept") {
  fiberio::block_on([] {
    fiberio::Channel<int> ch{2};
    auto producer = fiberio::spawn([&] {
      for (int i = 0; i < 100; ++i)
        ch.send(i);
      ch.close();
    });
    fiberio::yield();
    CHECK(ch.size() <= 2);
    int expected = 0;
    while (auto v = ch.recv())
      CHECK(*v == expected++);
    CHECK(expected == 100);
    producer.join();
  });
}

TEST_CASE("MPMC channel across 4 workers: every item delivered exactly once") {
  fiberio::Runtime rt{fiberio::Config{.threads = 4}};
  fiberio::Channel<int> ch{8};
  constexpr int kProducers = 8, kConsumers = 8, kPerProducer = 5000;
  std::vector<fiberio::JoinHandle<void>> producers;
  std::vector<fiberio::JoinHandle<std::vector<int>>> consumers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(rt.spawn([&ch, p] {
      for (int i = 0; i < kPerProducer; ++i)
        ch.send(p * kPerProducer + i);
    }));
  }
  for (int c = 0; c < kConsumers; ++c) {
    consumers.push_back(rt.spawn([&ch] {
      std::vector<int> got;
      while (auto v = ch.recv())
        got.push_back(*v);
      return got;
    }));
  }
  for (auto& p : producers)
    p.join();
  ch.close();
  std::vector<int> seen(kProducers * kPerProducer, 0);
  for (auto& c : consumers) {
    for (int v : c.join())
      ++seen[v];
  }
  for (int count : seen)
    REQUIRE(count == 1);
}

TEST_CASE("recv_until times out on an empty channel") {
  fiberio::block_on([] {
    fiberio::Channel<int> ch;
    CHECK_FALSE(ch.recv_until(fiberio::Clock::now() + 2ms));
  });
}

TEST_CASE("mutex: exclusive across workers") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  fiberio::Mutex m;
  long counter = 0;  // deliberately not atomic: the mutex must protect it (TSan checks)
  std::vector<fiberio::JoinHandle<void>> hs;
  for (int f = 0; f < 16; ++f) {
    hs.push_back(rt.spawn([&] {
      for (int i = 0; i < 2000; ++i) {
        std::lock_guard lock(m);
        ++counter;
        if (i % 100 == 0) fiberio::yield();  // hold the lock across a switch now and then
      }
    }));
  }
  for (auto& h : hs)
    h.join();
  CHECK(counter == 16 * 2000);
}

TEST_CASE("mutex fairness: under contention every waiter gets the lock in FIFO turns") {
  fiberio::block_on([] {
    fiberio::Mutex m;
    std::vector<int> order;
    constexpr int kFibers = 5, kRounds = 20;
    std::vector<fiberio::JoinHandle<void>> hs;
    m.lock();  // everyone queues behind main first
    for (int f = 0; f < kFibers; ++f) {
      hs.push_back(fiberio::spawn([&, f] {
        for (int r = 0; r < kRounds; ++r) {
          std::lock_guard lock(m);
          order.push_back(f);
          fiberio::yield();  // others queue up while we hold it
        }
      }));
    }
    fiberio::yield();
    m.unlock();
    for (auto& h : hs)
      h.join();
    REQUIRE(order.size() == kFibers * kRounds);
    // Hand-off is FIFO: the fibers take strict turns.
    for (std::size_t i = 0; i < order.size(); ++i)
      CHECK(order[i] == static_cast<int>(i % kFibers));
  });
}

TEST_CASE("a cancelled mutex waiter is skipped: the lock is not lost") {
  fiberio::block_on([] {
    fiberio::Mutex m;
    m.lock();
    auto cancelled = fiberio::spawn([&] { std::lock_guard lock(m); });
    auto next = fiberio::spawn([&] {
      std::lock_guard lock(m);
      return 1;
    });
    fiberio::yield();  // both queue
    cancelled.cancel();
    CHECK_THROWS_AS(cancelled.join(), fiberio::Cancelled);
    m.unlock();
    CHECK(next.join() == 1);
    CHECK(m.try_lock());  // and it was released again
    m.unlock();
  });
}

TEST_CASE("condition variable: wait with predicate, notify_one, timeout") {
  fiberio::block_on([] {
    fiberio::Mutex m;
    fiberio::ConditionVariable cv;
    bool ready = false;
    auto waiter = fiberio::spawn([&] {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return ready; });
      return 1;
    });
    fiberio::yield();
    {
      std::lock_guard lock(m);
      ready = true;
    }
    cv.notify_one();
    CHECK(waiter.join() == 1);

    std::unique_lock lock(m);
    CHECK(cv.wait_for(lock, 2ms) == std::cv_status::timeout);
    CHECK(lock.owns_lock());
  });
}

TEST_CASE("notify_one whose chosen waiter was cancelled wakes another") {
  fiberio::block_on([] {
    fiberio::Mutex m;
    fiberio::ConditionVariable cv;
    int woken = 0;
    auto first = fiberio::spawn([&] {
      std::unique_lock lock(m);
      cv.wait(lock);
    });
    auto second = fiberio::spawn([&] {
      std::unique_lock lock(m);
      cv.wait(lock);
      ++woken;
    });
    fiberio::yield();
    first.cancel();  // first in line, but gone
    CHECK_THROWS_AS(first.join(), fiberio::Cancelled);
    cv.notify_one();
    second.join();
    CHECK(woken == 1);
  });
}

TEST_CASE("semaphore: permits are remembered and handed over") {
  fiberio::block_on([] {
    fiberio::Semaphore sem{0};
    sem.release(2);  // no waiter: remembered
    sem.acquire();
    sem.acquire();
    CHECK_FALSE(sem.try_acquire());
    CHECK_FALSE(sem.try_acquire_until(fiberio::Clock::now() + 1ms));
    auto h = fiberio::spawn([&] { sem.acquire(); });
    fiberio::yield();
    sem.release();
    h.join();
    CHECK(sem.available() == 0);
  });
}

TEST_CASE("semaphore bounds concurrency across workers") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  fiberio::Semaphore sem{3};
  std::atomic<int> inside{0}, peak{0};
  std::vector<fiberio::JoinHandle<void>> hs;
  for (int i = 0; i < 50; ++i) {
    hs.push_back(rt.spawn([&] {
      sem.acquire();
      const int now = ++inside;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      fiberio::sleep_for(100us);
      --inside;
      sem.release();
    }));
  }
  for (auto& h : hs)
    h.join();
  CHECK(peak.load() <= 3);
  CHECK(peak.load() >= 1);
}

TEST_CASE("event: set before wait is remembered; wait_until times out") {
  fiberio::block_on([] {
    fiberio::Event e;
    CHECK_FALSE(e.wait_until(fiberio::Clock::now() + 1ms));
    e.set();
    e.wait();
    CHECK(e.is_set());
    e.reset();
    CHECK_FALSE(e.is_set());
  });
}

TEST_CASE("a plain std::thread wakes fibers through Event and Channel") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  fiberio::Event go;
  fiberio::Channel<int> ch;
  auto waiter = rt.spawn([&] {
    go.wait();
    int sum = 0;
    while (auto v = ch.recv())
      sum += *v;
    return sum;
  });
  std::thread producer([&] {
    std::this_thread::sleep_for(5ms);  // let the fiber park first
    go.set();
    for (int i = 1; i <= 100; ++i)
      ch.send(i);
    ch.close();
  });
  CHECK(waiter.join() == 5050);
  producer.join();
}

TEST_CASE("a plain thread blocks on a channel fed by fibers") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  fiberio::Channel<int> ch{1};
  rt.spawn([&] {
      for (int i = 0; i < 100; ++i)
        ch.send(i);
      ch.close();
    }).detach();
  int count = 0;
  while (ch.recv())
    ++count;  // main thread: futex waits
  CHECK(count == 100);
}

TEST_CASE("a plain thread's deadline is kept: recv_until, wait_until and try_acquire_until time out") {
  // The headers promise use from any thread; a plain thread used to sleep past the deadline until
  // notified. Each wait gets 100 ms and must give up well before 1.5 s, reporting the timeout.
  fiberio::Channel<int> ch{1};
  fiberio::Event event;
  fiberio::Semaphore semaphore{0};
  auto elapsed = [](auto wait) {
    const auto start = std::chrono::steady_clock::now();
    const bool got = wait(fiberio::Clock::now() + 100ms);
    const auto end = std::chrono::steady_clock::now();
    return std::pair{got, end - start};
  };
  const auto [received, recv_took] =
      elapsed([&](fiberio::Deadline d) { return ch.recv_until(d).has_value(); });
  const auto [set, wait_took] = elapsed([&](fiberio::Deadline d) { return event.wait_until(d); });
  const auto [acquired, acquire_took] =
      elapsed([&](fiberio::Deadline d) { return semaphore.try_acquire_until(d); });
  CHECK_FALSE(received);
  CHECK_FALSE(set);
  CHECK_FALSE(acquired);
  CHECK(recv_took >= 100ms);
  CHECK(recv_took < 1500ms);
  CHECK(wait_took >= 100ms);
  CHECK(wait_took < 1500ms);
  CHECK(acquire_took >= 100ms);
  CHECK(acquire_took < 1500ms);
}

TEST_CASE("a plain thread woken just as its deadline passes gets exactly one outcome") {
  // A release() racing the thread's timeout: the permit is either taken (true) or left for the next
  // acquirer (the waker moves on when the thread has timed out), never lost or doubled.
  fiberio::Semaphore semaphore{0};
  int acquired = 0;
  for (int round = 0; round < 200; ++round) {
    std::thread releaser([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(round % 20 * 50));
      semaphore.release();
    });
    if (semaphore.try_acquire_until(fiberio::Clock::now() + std::chrono::microseconds(500))) ++acquired;
    releaser.join();
  }
  // Every permit not taken by a timed wait is still there.
  int left = 0;
  while (semaphore.try_acquire())
    ++left;
  CHECK(acquired + left == 200);
}

TEST_CASE("wait group waits for all") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  fiberio::WaitGroup wg;
  std::atomic<int> done{0};
  wg.add(20);
  for (int i = 0; i < 20; ++i) {
    rt.spawn([&] {
        fiberio::sleep_for(1ms);
        ++done;
        wg.done();
      }).detach();
  }
  rt.block_on([&] { wg.wait(); });
  CHECK(done == 20);
  CHECK_THROWS_AS(wg.done(), std::logic_error);
}

TEST_CASE("channel send_until/send_for: a refused value comes back, with the reason") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  rt.block_on([] {
    fiberio::Channel<std::unique_ptr<int>> ch{1};  // a move-only value: nothing may copy it away
    REQUIRE(ch.send_for(std::make_unique<int>(1), 1s));
    auto full = ch.send_until(std::make_unique<int>(2), fiberio::Clock::now() + 5ms);
    REQUIRE_FALSE(full);
    CHECK_FALSE(full.error().closed);
    REQUIRE(full.error().value);
    CHECK(*full.error().value == 2);  // handed back intact
    CHECK(ch.size() == 1);

    // Room made while it waits: sent.
    auto reader = fiberio::spawn([&] {
      fiberio::sleep_for(5ms);
      return *ch.recv();
    });
    REQUIRE(ch.send_for(std::make_unique<int>(3), 10s));
    CHECK(*reader.join() == 1);
    CHECK(**ch.recv_for(1s) == 3);
    CHECK_FALSE(ch.recv_for(2ms));  // empty: the duration runs out

    // Closed while it waits (and closed before): refused as closed, the value back.
    REQUIRE(ch.send(std::make_unique<int>(4)));
    auto closer = fiberio::spawn([&] {
      fiberio::sleep_for(5ms);
      ch.close();
    });
    auto closed = ch.send_for(std::make_unique<int>(5), 10s);
    REQUIRE_FALSE(closed);
    CHECK(closed.error().closed);
    CHECK(*closed.error().value == 5);
    closer.join();
    auto after = ch.send_for(std::make_unique<int>(6), 1s);
    REQUIRE_FALSE(after);
    CHECK(after.error().closed);
  });
}

TEST_CASE("oneshot: the value arrives once; each side learns when the other is gone") {
  for (const std::uint32_t threads : {1u, 3u}) {
    fiberio::Runtime rt{fiberio::Config{.threads = threads}};
    rt.block_on([] {
      auto [tx, rx] = fiberio::oneshot<std::unique_ptr<int>>();
      auto producer = fiberio::spawn([tx = std::move(tx)]() mutable {
        fiberio::sleep_for(2ms);
        CHECK(tx.send(std::make_unique<int>(7)));
      });
      auto v = rx.recv();
      REQUIRE(v);
      CHECK(**v == 7);
      CHECK_FALSE(rx.recv());  // received once
      producer.join();

      // The sender goes away without sending: the receiver gets nullopt instead of waiting forever.
      auto [tx2, rx2] = fiberio::oneshot<int>();
      auto dropper = fiberio::spawn([tx2 = std::move(tx2)]() mutable {
        fiberio::sleep_for(2ms);
        auto gone = std::move(tx2);
      });
      CHECK_FALSE(rx2.recv());
      dropper.join();

      // The receiver goes away: the sender learns it, and its value comes back.
      auto [tx3, rx3] = fiberio::oneshot<std::string>();
      auto watcher = fiberio::spawn([&tx3] {
        tx3.wait_receiver_gone();
        return tx3.receiver_gone();
      });
      fiberio::sleep_for(2ms);
      { auto gone = std::move(rx3); }
      CHECK(watcher.join());
      auto refused = tx3.send("nobody reads this");
      REQUIRE_FALSE(refused);
      CHECK(refused.error() == "nobody reads this");

      // As a select branch, with a timeout.
      auto [tx4, rx4] = fiberio::oneshot<int>();
      CHECK(fiberio::select(fiberio::on_recv(rx4), fiberio::on_timeout(5ms)).index() == 1);
      CHECK(tx4.send(9));
      auto got = fiberio::select(fiberio::on_recv(rx4), fiberio::on_timeout(5s));
      REQUIRE(got.index() == 0);
      CHECK(std::get<0>(got) == 9);
    });
  }
}

TEST_CASE("barrier: rounds of N release together, one leader each; a cancelled waiter leaves its round") {
  fiberio::Runtime rt{fiberio::Config{.threads = 3}};
  rt.block_on([] {
    constexpr int kParties = 5, kRounds = 50;
    fiberio::Barrier barrier{kParties};
    std::atomic<int> leaders{0}, in_round{0};
    std::atomic<bool> overtaken{false};
    std::vector<fiberio::JoinHandle<void>> fibers;
    for (int p = 0; p < kParties; ++p) {
      fibers.push_back(fiberio::spawn([&] {
        for (int r = 0; r < kRounds; ++r) {
          ++in_round;
          if (barrier.wait()) ++leaders;
          // Everyone of round r has arrived before anyone passes: nobody can be two rounds ahead.
          if (in_round.load() < (r + 1) * kParties) overtaken = true;
          fiberio::yield();
        }
      }));
    }
    for (auto& f : fibers)
      f.join();
    CHECK(leaders == kRounds);
    CHECK_FALSE(overtaken);

    // One of three waiters is cancelled: the round waits for a third party instead of releasing two.
    fiberio::Barrier three{3};
    std::atomic<int> passed{0};
    auto a = fiberio::spawn([&] {
      three.wait();
      ++passed;
    });
    auto cancelled = fiberio::spawn([&] { three.wait(); });
    fiberio::sleep_for(5ms);
    cancelled.cancel();
    CHECK_THROWS_AS(cancelled.join(), fiberio::Cancelled);
    auto b = fiberio::spawn([&] {
      three.wait();
      ++passed;
    });
    fiberio::sleep_for(5ms);
    CHECK(passed == 0);   // two arrived, not three
    CHECK(three.wait());  // the third: the leader
    a.join();
    b.join();
    CHECK(passed == 2);
    CHECK_THROWS_AS(fiberio::Barrier{0}, std::invalid_argument);
  });
}

TEST_CASE("rw lock: readers share, a writer is alone, a waiting writer is not starved by readers") {
  for (const std::uint32_t threads : {1u, 4u}) {
    fiberio::Runtime rt{fiberio::Config{.threads = threads}};
    rt.block_on([] {
      fiberio::RwLock lock;
      std::atomic<int> readers{0}, writers{0}, max_readers{0};
      std::atomic<bool> broken{false};
      long value = 0;  // written only under the write lock
      std::vector<fiberio::JoinHandle<void>> fibers;
      for (int f = 0; f < 8; ++f) {
        fibers.push_back(fiberio::spawn([&, f] {
          for (int i = 0; i < 300; ++i) {
            if ((i + f) % 4 == 0) {
              std::unique_lock write(lock);
              if (++writers != 1 || readers != 0) broken = true;
              ++value;
              fiberio::yield();  // others run meanwhile, and must stay out
              --writers;
            } else {
              std::shared_lock read(lock);
              const int now = ++readers;
              if (writers != 0) broken = true;
              int seen = max_readers;
              while (now > seen && !max_readers.compare_exchange_weak(seen, now)) {
              }
              fiberio::yield();
              --readers;
            }
          }
        }));
      }
      for (auto& f : fibers)
        f.join();
      CHECK_FALSE(broken);
      CHECK(value == 8 * 300 / 4);
      // Readers share: a second reader gets in while the first holds the lock. (Counting the most readers
      // seen at once in the loop above depends on scheduling: a waiting writer holds new readers back, so
      // on a busy machine it can stay 1.)
      MESSAGE("most readers at once in the loop: " << max_readers.load());
      {
        std::shared_lock first(lock);
        auto second = fiberio::spawn([&] { return lock.try_lock_shared_for(std::chrono::seconds(5)); });
        const bool shared = second.join();
        CHECK(shared);
        if (shared) lock.unlock_shared();
      }

      // Readers behind a waiting writer wait for it.
      fiberio::RwLock fair;
      fair.lock_shared();
      std::atomic<bool> wrote{false}, late_read{false};
      auto writer = fiberio::spawn([&] {
        std::unique_lock write(fair);
        wrote = true;
      });
      fiberio::sleep_for(2ms);
      auto reader = fiberio::spawn([&] {
        std::shared_lock read(fair);
        late_read = wrote.load();  // it came after the writer, so it must see the write
      });
      fiberio::sleep_for(2ms);
      CHECK_FALSE(fair.try_lock_shared());  // a writer waits: no barging in
      fair.unlock_shared();
      writer.join();
      reader.join();
      CHECK(late_read);

      // A writer that gives up lets the readers queued behind it in.
      fiberio::RwLock held;
      held.lock_shared();
      auto impatient = fiberio::spawn([&] { return held.try_lock_for(5ms); });
      fiberio::sleep_for(1ms);
      auto patient_reader = fiberio::spawn([&] {
        held.lock_shared();
        held.unlock_shared();
      });
      CHECK_FALSE(impatient.join());
      patient_reader.join();  // admitted once the writer left, while the first reader still holds it
      held.unlock_shared();
      CHECK(held.try_lock());
      held.unlock();
    });
  }
}

TEST_CASE("rendezvous channel: a send completes only once a receiver has taken its value") {
  for (const std::uint32_t threads : {1u, 3u}) {
    fiberio::Runtime rt{fiberio::Config{.threads = threads}};
    rt.block_on([] {
      fiberio::Channel<int> meet{0};
      CHECK_FALSE(meet.try_send(1));  // nobody receives: a rendezvous send cannot complete
      std::atomic<bool> sent{false};
      auto sender = fiberio::spawn([&] {
        CHECK(meet.send(2));
        sent = true;
      });
      fiberio::sleep_for(5ms);
      CHECK_FALSE(sent);  // still waiting for a receiver
      CHECK(meet.recv() == 2);
      sender.join();
      CHECK(sent);

      // A waiting receiver makes try_send (and a select's send branch) succeed.
      auto receiver = fiberio::spawn([&] { return meet.recv(); });
      while (!meet.try_send(3))
        fiberio::sleep_for(1ms);
      CHECK(receiver.join() == 3);
      auto branch_receiver = fiberio::spawn([&] { return meet.recv(); });
      auto via_select = fiberio::select(fiberio::on_send(meet, 4), fiberio::on_timeout(10s));
      CHECK(via_select.index() == 0);
      CHECK(branch_receiver.join() == 4);
      CHECK(fiberio::select(fiberio::on_send(meet, 5), fiberio::on_timeout(5ms)).index() == 1);
      CHECK(meet.size() == 0);  // the lost branch left nothing queued

      // A sender that gives up takes its value back out of the queue.
      auto late = meet.send_for(6, 5ms);
      REQUIRE_FALSE(late);
      CHECK(late.error().value == 6);
      CHECK_FALSE(late.error().closed);
      CHECK(meet.size() == 0);
      CHECK_FALSE(meet.try_recv());

      // Closed while a sender waits: refused, nothing left for a receiver.
      auto refused = fiberio::spawn([&] { return meet.send_for(7, 10s); });
      fiberio::sleep_for(2ms);
      meet.close();
      auto r = refused.join();
      REQUIRE_FALSE(r);
      CHECK(r.error().closed);
      CHECK(r.error().value == 7);
      CHECK_FALSE(meet.recv());
    });
  }
}

TEST_CASE("rendezvous channel stress: every value taken exactly once, senders and receivers across workers") {
  fiberio::Runtime rt{fiberio::Config{.threads = 4}};
  rt.block_on([] {
    fiberio::Channel<int> meet{0};
    constexpr int kSenders = 4, kPerSender = 500, kReceivers = 3;
    std::atomic<long> sum{0};
    std::atomic<int> count{0};
    std::vector<fiberio::JoinHandle<void>> receivers;
    for (int r = 0; r < kReceivers; ++r) {
      receivers.push_back(fiberio::spawn([&, r] {
        for (;;) {
          std::optional<int> v;
          if (r == 0) {  // one receiver selects with a short timeout: its timeouts must lose nothing
            auto got = fiberio::select(fiberio::on_recv(meet), fiberio::on_timeout(1ms));
            if (got.index() == 1) continue;
            v = std::get<0>(got);
          } else {
            v = meet.recv();
          }
          if (!v) return;
          sum += *v;
          ++count;
        }
      }));
    }
    std::vector<fiberio::JoinHandle<void>> senders;
    for (int s = 0; s < kSenders; ++s) {
      senders.push_back(fiberio::spawn([&, s] {
        for (int i = 1; i <= kPerSender; ++i) {
          if ((i + s) % 4 == 0) {
            // Some senders give up now and then and send again: a value taken back is sent once more.
            while (!meet.send_for(i, std::chrono::microseconds(200))) {
            }
          } else {
            REQUIRE(meet.send(i));
          }
        }
      }));
    }
    for (auto& s : senders)
      s.join();
    meet.close();
    for (auto& r : receivers)
      r.join();
    CHECK(count == kSenders * kPerSender);
    CHECK(sum == static_cast<long>(kSenders) * kPerSender * (kPerSender + 1) / 2);
  });
}
