// TimerHeap: ordering, cancellation (earliest, stale, during expiry), and bounded memory.
#include <doctest/doctest.h>

#include <fiberio/executor/detail/timer_heap.hpp>

#include <algorithm>
#include <random>
#include <vector>

using fiberio::Clock;
using fiberio::detail::TimerHandle;
using fiberio::detail::TimerHeap;
using std::chrono::milliseconds;

TEST_CASE("timers pop in deadline order, ties in any order") {
  TimerHeap<int> heap;
  const auto t0 = Clock::now();
  std::mt19937 rng(7);
  std::vector<int> offsets(1000);
  for (int i = 0; i < 1000; ++i)
    offsets[i] = static_cast<int>(rng() % 500);
  for (int i = 0; i < 1000; ++i)
    heap.insert(t0 + milliseconds(offsets[i]), offsets[i]);
  CHECK(heap.earliest() == t0 + milliseconds(*std::min_element(offsets.begin(), offsets.end())));
  std::vector<int> popped;
  while (auto v = heap.pop_expired(t0 + milliseconds(1000)))
    popped.push_back(*v);
  std::sort(offsets.begin(), offsets.end());
  CHECK(popped == offsets);
  CHECK(heap.size() == 0);
  CHECK_FALSE(heap.earliest());
}

TEST_CASE("pop_expired leaves timers that are not due") {
  TimerHeap<int> heap;
  const auto t0 = Clock::now();
  heap.insert(t0 + milliseconds(10), 1);
  heap.insert(t0 + milliseconds(20), 2);
  CHECK(heap.pop_expired(t0 + milliseconds(15)) == 1);
  CHECK_FALSE(heap.pop_expired(t0 + milliseconds(15)));
  CHECK(heap.size() == 1);
}

TEST_CASE("cancelling the earliest timer exposes the next one") {
  TimerHeap<int> heap;
  const auto t0 = Clock::now();
  const TimerHandle first = heap.insert(t0 + milliseconds(1), 1);
  heap.insert(t0 + milliseconds(3), 3);
  heap.insert(t0 + milliseconds(2), 2);
  CHECK(heap.cancel(first) == 1);
  CHECK(heap.earliest() == t0 + milliseconds(2));
  CHECK(heap.pop_expired(t0 + milliseconds(5)) == 2);
  CHECK(heap.pop_expired(t0 + milliseconds(5)) == 3);
}

TEST_CASE("a stale handle cancels nothing, even after its slot is reused") {
  TimerHeap<int> heap;
  const auto t0 = Clock::now();
  const TimerHandle old = heap.insert(t0, 1);
  CHECK(heap.pop_expired(t0) == 1);
  CHECK_FALSE(heap.cancel(old));  // already fired
  const TimerHandle reuse = heap.insert(t0 + milliseconds(1), 2);
  CHECK(reuse.slot == old.slot);  // slot reused...
  CHECK_FALSE(heap.cancel(old));  // ...but the old generation does not match
  CHECK(heap.cancel(reuse) == 2);
  CHECK_FALSE(heap.cancel(reuse));
}

TEST_CASE("cancelling other timers while expiring them") {
  TimerHeap<int> heap;
  const auto t0 = Clock::now();
  std::vector<TimerHandle> handles;
  for (int i = 0; i < 100; ++i)
    handles.push_back(heap.insert(t0 + milliseconds(i), i));
  std::vector<int> fired;
  // Each fired timer cancels the next one, as a callback that cancels a sibling would.
  while (auto v = heap.pop_expired(t0 + milliseconds(200))) {
    fired.push_back(*v);
    if (*v + 1 < 100) heap.cancel(handles[*v + 1]);
  }
  REQUIRE(fired.size() == 50);
  for (std::size_t i = 0; i < fired.size(); ++i)
    CHECK(fired[i] == static_cast<int>(2 * i));
}

TEST_CASE("random inserts and cancels keep heap order") {
  TimerHeap<int> heap;
  const auto t0 = Clock::now();
  std::mt19937 rng(42);
  std::vector<std::pair<TimerHandle, int>> live;
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      const int at = static_cast<int>(rng() % 10000);
      live.emplace_back(heap.insert(t0 + milliseconds(at), at), at);
    } else {
      const std::size_t i = rng() % live.size();
      CHECK(heap.cancel(live[i].first) == live[i].second);
      live[i] = live.back();
      live.pop_back();
    }
  }
  int last = -1;
  std::size_t count = 0;
  while (auto v = heap.pop_expired(t0 + milliseconds(10000))) {
    CHECK(*v >= last);
    last = *v;
    ++count;
  }
  CHECK(count == live.size());
}

TEST_CASE("a million set-and-cancel timeouts use the memory of the peak, not of the total") {
  TimerHeap<int> heap;
  const auto t0 = Clock::now();
  std::vector<TimerHandle> window;
  for (int i = 0; i < 1'000'000; ++i) {
    window.push_back(heap.insert(t0 + std::chrono::seconds(30), i));
    if (window.size() == 100) {  // at most 100 live, as a server with 100 requests in flight
      for (auto h : window)
        heap.cancel(h);
      window.clear();
    }
  }
  CHECK(heap.size() == 0);
  CHECK(heap.capacity() <= 100);
}
