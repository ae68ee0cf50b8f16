// The lock-free local run queue: FIFO for its owner, steal-half for thieves, and under a stress of one
// owner against several thieves every item is taken exactly once.
#include <doctest/doctest.h>

#include <fiberio/executor/detail/run_queue.hpp>

#include <atomic>
#include <thread>
#include <vector>

using fiberio::detail::RunQueue;

namespace {
struct Item {
  int id;
};
}  // namespace

TEST_CASE("owner push/pop is FIFO and bounded") {
  RunQueue<Item> q;
  std::vector<Item> items(RunQueue<Item>::kCapacity + 1);
  for (std::size_t i = 0; i < RunQueue<Item>::kCapacity; ++i) {
    items[i].id = static_cast<int>(i);
    CHECK(q.push(&items[i]));
  }
  CHECK_FALSE(q.push(&items.back()));  // full
  for (std::size_t i = 0; i < RunQueue<Item>::kCapacity; ++i)
    CHECK(q.pop()->id == static_cast<int>(i));
  CHECK(q.pop() == nullptr);
  CHECK(q.empty());
}

TEST_CASE("a steal takes about half and returns one to run") {
  RunQueue<Item> victim, thief;
  std::vector<Item> items(10);
  for (auto& it : items)
    victim.push(&it);
  Item* run_now = victim.steal_into(thief);
  REQUIRE(run_now != nullptr);
  CHECK(thief.size() == 4);  // 5 stolen: one returned, four queued
  CHECK(victim.size() == 5);

  // A thief whose own queue is more than half full has no room for a batch: it takes nothing.
  RunQueue<Item> busy;
  std::vector<Item> filler(RunQueue<Item>::kCapacity / 2 + 1);
  for (auto& it : filler)
    busy.push(&it);
  CHECK(victim.steal_into(busy) == nullptr);
  CHECK(victim.size() == 5);
}

TEST_CASE("stress: one owner pushing and popping, three thieves stealing; each item taken exactly once") {
  constexpr int kItems = 200'000;
  std::vector<Item> items(kItems);
  std::vector<std::atomic<int>> taken(kItems);
  for (int i = 0; i < kItems; ++i)
    items[i].id = i;
  RunQueue<Item> owner_queue;
  std::atomic<bool> done{false};

  auto take = [&](Item* it) { taken[it->id].fetch_add(1, std::memory_order_relaxed); };

  std::vector<std::thread> thieves;
  for (int t = 0; t < 3; ++t) {
    thieves.emplace_back([&] {
      RunQueue<Item> mine;
      while (!done.load(std::memory_order_acquire)) {
        if (Item* it = owner_queue.steal_into(mine)) {
          take(it);
          while (Item* more = mine.pop())
            take(more);
        }
      }
    });
  }
  int next = 0;
  while (next < kItems) {
    for (int burst = 0; burst < 64 && next < kItems; ++burst) {
      if (!owner_queue.push(&items[next])) break;
      ++next;
    }
    if (Item* it = owner_queue.pop()) take(it);
  }
  while (Item* it = owner_queue.pop())
    take(it);
  done.store(true, std::memory_order_release);
  for (auto& t : thieves)
    t.join();
  while (Item* it = owner_queue.pop())
    take(it);
  for (int i = 0; i < kItems; ++i)
    REQUIRE(taken[i].load() == 1);
}
