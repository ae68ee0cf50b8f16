// executor/detail/stack_pool.hpp — fiber stacks: mmap'd, a guard page below each (a lightweight guard
// on Linux >= 6.13, so a stack is no extra memory mapping; PROT_NONE before that), pooled per thread. Owns
// the stacks it caches. Thread-safety: a StackPool is used by one thread only (each worker has its own,
// reached through StackPool::local()); a stack may be allocated on one thread and returned on another, it
// then joins the returning thread's pool. Invariants: every cached stack has exactly `stack_size` usable
// bytes; the cache never exceeds `max_cached`; trim() frees half of the stacks that stayed unused through
// a whole trim period and gives the touched pages of the rest back to the system (once per stack, so a
// pool that keeps being used pays nothing); the first `clean_` cached stacks hold no touched page.
#pragma once

#include <fiberio/executor/detail/sanitizer.hpp>

#include <boost/context/stack_context.hpp>

#include <cstddef>
#include <vector>

namespace fiberio::detail {

// A stack as Boost.Context gives it (`sp` at the top, `size` bytes below) and as the sanitizers want it.
inline StackBounds to_stack_bounds(const boost::context::stack_context& stack) noexcept {
  return StackBounds{static_cast<char*>(stack.sp) - stack.size, stack.size};
}
inline boost::context::stack_context to_stack_context(StackBounds bounds) noexcept {
  boost::context::stack_context stack{};
  stack.sp = const_cast<char*>(static_cast<const char*>(bounds.bottom)) + bounds.size;
  stack.size = bounds.size;
  return stack;
}

class StackPool {
 public:
  StackPool() = default;
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // This thread's pool.
  static StackPool& local();

  // A stack of at least `size` usable bytes (rounded up to pages). Throws std::bad_alloc.
  boost::context::stack_context allocate(std::size_t size);
  // Returns a stack to this thread's pool (or to the system if the pool is full or sizes differ).
  void deallocate(const boost::context::stack_context& stack) noexcept;

  // Frees half of the stacks that were not needed since the last trim, and drops the pages of the rest
  // (release_pages). Cheap; call it when idle, about once a second.
  void trim() noexcept;
  // Gives the touched pages of all but the `keep` most recently returned stacks back to the system
  // (madvise MADV_DONTNEED: a later use faults in zeroed pages), skipping stacks already given back.
  // For a burst of returned stacks that will not all be needed soon (idle loops' released stacks).
  void release_pages(std::size_t keep) noexcept;

  std::size_t cached() const noexcept { return free_.size(); }
  // Any thread: bytes from the top of `stack` down to its lowest page in memory (mincore), its high-water
  // mark to page granularity; 0 if it is not mapped (any more).
  static std::size_t high_water(StackBounds stack) noexcept;
  // Stacks mapped by all threads and not yet unmapped (for leak tests).
  static std::size_t live_mappings() noexcept;
  // Whether guard pages are the kernel's lightweight ones (MADV_GUARD_INSTALL), known after the first
  // allocation: then stacks do not count against vm.max_map_count one by one.
  static bool light_guards() noexcept;

  static constexpr std::size_t kMaxCached = 256;

 private:
  std::vector<boost::context::stack_context> free_;
  std::size_t low_water_ = 0;  // fewest cached stacks seen since the last trim
  std::size_t clean_ = 0;      // free_[0, clean_) have had their pages released
};

}  // namespace fiberio::detail
