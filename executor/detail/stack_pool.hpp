// executor/detail/stack_pool.hpp — fiber stacks: mmap'd, a guard page below each (a lightweight guard
// on Linux >= 6.13, so a stack is no extra memory mapping; PROT_NONE before that), pooled per thread. Owns
// the stacks it caches. Thread-safety: a StackPool is used by one thread only (each worker has its own,
// reached through StackPool::local()); a stack may be allocated on one thread and returned on another, it
// then joins the returning thread's pool. Invariants: every cached stack has exactly `stack_size` usable
// bytes; the cache never exceeds `max_cached`; trim() frees the stacks that stayed unused through a whole
// trim period.
#pragma once

#include <boost/context/stack_context.hpp>

#include <cstddef>
#include <vector>

namespace fiberio::detail {

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

  // Frees half of the stacks that were not needed since the last trim. Cheap; call it when idle.
  void trim() noexcept;

  std::size_t cached() const noexcept { return free_.size(); }
  // Stacks mapped by all threads and not yet unmapped (for leak tests).
  static std::size_t live_mappings() noexcept;
  // Whether guard pages are the kernel's lightweight ones (MADV_GUARD_INSTALL), known after the first
  // allocation: then stacks do not count against vm.max_map_count one by one.
  static bool light_guards() noexcept;

  static constexpr std::size_t kMaxCached = 256;

 private:
  std::vector<boost::context::stack_context> free_;
  std::size_t low_water_ = 0;  // fewest cached stacks seen since the last trim
};

}  // namespace fiberio::detail
