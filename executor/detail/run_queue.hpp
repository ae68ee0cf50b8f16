// executor/detail/run_queue.hpp — a worker's local run queue: a bounded lock-free ring that its owner pushes
// to and pops from, and that other workers steal half of (tokio's design, not Chase-Lev: it steals a batch in
// one claim, and needs no seq_cst fence on the owner's pop).
//
// Layout: `head_` packs two 32-bit indices, `steal` (the first slot a stealer is still copying) and `real`
// (the next slot to pop). steal == real when no steal is in flight. `tail_` is written by the owner only.
// Thread-safety: push/pop by the owning worker only; steal_into() from any other worker.
// Invariants: tail - steal <= kCapacity (the owner never overwrites a slot a stealer still reads);
// at most one steal is in flight per queue.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace fiberio::detail {

template <class T>
class RunQueue {
 public:
  static constexpr std::uint32_t kCapacity = 256;

  // Owner. False if full (the caller moves work elsewhere).
  bool push(T* item) noexcept {
    const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    const auto [steal, real] = unpack(head_.load(std::memory_order_acquire));
    (void)real;
    if (tail - steal >= kCapacity) return false;
    slots_[tail % kCapacity].store(item, std::memory_order_relaxed);
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Owner: moves up to `n` items from the front into `out`; used to spill half a full queue.
  std::uint32_t pop_batch(T** out, std::uint32_t n) noexcept {
    std::uint32_t taken = 0;
    while (taken < n) {
      T* item = pop();
      if (!item) break;
      out[taken++] = item;
    }
    return taken;
  }

  // Owner.
  T* pop() noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      const auto [steal, real] = unpack(head);
      const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
      if (real == tail) return nullptr;
      const std::uint32_t next_real = real + 1;
      const std::uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
      if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
        return slots_[real % kCapacity].load(std::memory_order_relaxed);
      }
    }
  }

  // Another worker: moves about half of this queue into `dst` (which must be empty, owned by the caller)
  // and returns one of the moved items to run at once; nullptr if nothing was taken.
  T* steal_into(RunQueue& dst) noexcept {
    const std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
    const auto [dst_steal, dst_real] = unpack(dst.head_.load(std::memory_order_acquire));
    (void)dst_real;
    if (dst_tail - dst_steal > kCapacity / 2) return nullptr;  // dst has no room for a batch

    // 1. Claim a range by advancing `real`, leaving `steal` behind to hold it.
    std::uint64_t head = head_.load(std::memory_order_acquire);
    std::uint32_t first, n;
    for (;;) {
      const auto [steal, real] = unpack(head);
      if (steal != real) return nullptr;  // another steal in flight
      const std::uint32_t tail = tail_.load(std::memory_order_acquire);
      n = tail - real;
      n -= n / 2;
      if (n == 0) return nullptr;
      if (n > kCapacity / 2) n = kCapacity / 2;
      if (head_.compare_exchange_weak(head, pack(steal, real + n), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        first = real;
        break;
      }
    }
    // 2. Copy the claimed range.
    for (std::uint32_t i = 0; i < n; ++i) {
      T* item = slots_[(first + i) % kCapacity].load(std::memory_order_relaxed);
      dst.slots_[(dst_tail + i) % kCapacity].store(item, std::memory_order_relaxed);
    }
    // 3. Release the claim: steal catches up with real.
    head = head_.load(std::memory_order_acquire);
    for (;;) {
      const auto [steal, real] = unpack(head);
      (void)steal;
      if (head_.compare_exchange_weak(head, pack(real, real), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        break;
      }
    }
    // 4. Publish all but the last item in dst; return the last to run now.
    T* run_now = dst.slots_[(dst_tail + n - 1) % kCapacity].load(std::memory_order_relaxed);
    if (n > 1) dst.tail_.store(dst_tail + n - 1, std::memory_order_release);
    return run_now;
  }

  // Any thread; a hint only.
  std::uint32_t size() const noexcept {
    const auto [steal, real] = unpack(head_.load(std::memory_order_acquire));
    (void)steal;
    return tail_.load(std::memory_order_acquire) - real;
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  struct Pair {
    std::uint32_t steal, real;
  };
  static Pair unpack(std::uint64_t v) noexcept {
    return {static_cast<std::uint32_t>(v >> 32), static_cast<std::uint32_t>(v)};
  }
  static std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (static_cast<std::uint64_t>(steal) << 32) | real;
  }

  alignas(64) std::atomic<std::uint64_t> head_{0};
  alignas(64) std::atomic<std::uint32_t> tail_{0};
  std::array<std::atomic<T*>, kCapacity> slots_{};
};

}  // namespace fiberio::detail
