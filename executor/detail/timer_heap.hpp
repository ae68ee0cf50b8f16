// executor/detail/timer_heap.hpp — an indexed 4-ary min-heap of deadlines with O(log n) insert and cancel,
// O(1) earliest deadline, and slot reuse so memory is bounded by the peak number of live timers.
//
// Why a 4-ary indexed heap: cancel must be O(log n) without tombstones (a tombstone heap grows without
// bound under the "set a timeout, cancel it almost always" pattern of network servers); a 4-ary heap
// halves the depth of a binary one and keeps the four children of a node in one cache line. A hashed
// timing wheel gives O(1) insert and cancel but coarse precision and a periodic tick; TimerStore (below)
// is the seam where one could replace this class.
//
// Handles carry a generation, so cancelling a timer that already fired or was cancelled is a safe no-op.
// Thread-safety: none; the owner (a worker's TimerQueue) serialises access.
#pragma once

#include <fiberio/executor/clock.hpp>

#include <cassert>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace fiberio::detail {

struct TimerHandle {
  std::uint32_t slot = UINT32_MAX;
  std::uint32_t generation = 0;
  bool valid() const noexcept { return slot != UINT32_MAX; }
};

// What a worker needs from a timer store.
template <class Store, class Payload>
concept TimerStore = requires(Store s, const Store cs, Deadline d, Payload p, TimerHandle h) {
  { s.insert(d, std::move(p)) } -> std::same_as<TimerHandle>;
  { s.cancel(h) } -> std::same_as<std::optional<Payload>>;
  { cs.earliest() } -> std::same_as<std::optional<Deadline>>;
  { s.pop_expired(d) } -> std::same_as<std::optional<Payload>>;
  { cs.size() } -> std::same_as<std::size_t>;
};

template <class Payload>
class TimerHeap {
 public:
  TimerHandle insert(Deadline deadline, Payload payload) {
    std::uint32_t slot;
    if (free_head_ != kNone) {
      slot = free_head_;
      free_head_ = slots_[slot].heap_index;
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.push_back(Slot{});
    }
    Slot& s = slots_[slot];
    s.payload = std::move(payload);
    s.live = true;
    heap_.push_back(Node{deadline, slot});
    s.heap_index = static_cast<std::uint32_t>(heap_.size() - 1);
    sift_up(s.heap_index);
    return TimerHandle{slot, s.generation};
  }

  // Removes the timer and returns its payload; nullopt if it already fired or was cancelled.
  std::optional<Payload> cancel(TimerHandle handle) {
    if (handle.slot >= slots_.size()) return std::nullopt;
    Slot& s = slots_[handle.slot];
    if (!s.live || s.generation != handle.generation) return std::nullopt;
    return remove_at(s.heap_index);
  }

  std::optional<Deadline> earliest() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.front().deadline;
  }

  // Removes and returns the payload of the earliest timer if its deadline is at or before `now`.
  std::optional<Payload> pop_expired(Deadline now) {
    if (heap_.empty() || heap_.front().deadline > now) return std::nullopt;
    return remove_at(0);
  }

  std::size_t size() const { return heap_.size(); }
  // Slots ever allocated: the peak number of live timers (for memory tests).
  std::size_t capacity() const { return slots_.size(); }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  static constexpr std::size_t kArity = 4;

  struct Node {
    Deadline deadline;
    std::uint32_t slot;
  };
  struct Slot {
    std::optional<Payload> payload;
    std::uint32_t heap_index = kNone;  // position in heap_, or the next free slot while free
    std::uint32_t generation = 0;
    bool live = false;
  };

  Payload remove_at(std::uint32_t index) {
    const std::uint32_t slot = heap_[index].slot;
    Slot& s = slots_[slot];
    Payload payload = std::move(*s.payload);
    s.payload.reset();
    s.live = false;
    ++s.generation;
    s.heap_index = free_head_;
    free_head_ = slot;

    const std::uint32_t last = static_cast<std::uint32_t>(heap_.size() - 1);
    if (index != last) {
      heap_[index] = heap_[last];
      slots_[heap_[index].slot].heap_index = index;
      heap_.pop_back();
      if (index > 0 && heap_[index].deadline < heap_[parent(index)].deadline) {
        sift_up(index);
      } else {
        sift_down(index);
      }
    } else {
      heap_.pop_back();
    }
    return payload;
  }

  static std::uint32_t parent(std::uint32_t i) { return (i - 1) / kArity; }

  void place(std::uint32_t index, Node node) {
    heap_[index] = node;
    slots_[node.slot].heap_index = index;
  }

  void sift_up(std::uint32_t index) {
    Node node = heap_[index];
    while (index > 0) {
      const std::uint32_t up = parent(index);
      if (!(node.deadline < heap_[up].deadline)) break;
      place(index, heap_[up]);
      index = up;
    }
    place(index, node);
  }

  void sift_down(std::uint32_t index) {
    Node node = heap_[index];
    const std::size_t n = heap_.size();
    for (;;) {
      const std::size_t first = index * kArity + 1;
      if (first >= n) break;
      std::size_t best = first;
      const std::size_t end = first + kArity < n ? first + kArity : n;
      for (std::size_t c = first + 1; c < end; ++c) {
        if (heap_[c].deadline < heap_[best].deadline) best = c;
      }
      if (!(heap_[best].deadline < node.deadline)) break;
      place(index, heap_[best]);
      index = static_cast<std::uint32_t>(best);
    }
    place(index, node);
  }

  std::vector<Node> heap_;
  std::vector<Slot> slots_;
  std::uint32_t free_head_ = kNone;
};

}  // namespace fiberio::detail
