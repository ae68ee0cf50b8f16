// executor/detail/sanitizer.hpp — annotations that let AddressSanitizer, ThreadSanitizer and valgrind follow
// fiber switches. Owns nothing; every function is a no-op in a build without the matching tool.
// Thread-safety: each call describes the calling thread's own switch.
// Invariant: every context switch between a worker's stack and a fiber's stack is bracketed by
// start_switch (before) and finish_switch (after, on the new stack).
#pragma once

#include <cstddef>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define FIBERIO_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(__SANITIZE_THREAD__)
#define FIBERIO_TSAN 1
#include <sanitizer/tsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#define FIBERIO_VALGRIND 1
#include <valgrind/valgrind.h>
#endif

namespace fiberio::detail {

// Whether this build runs under a sanitizer that needs bigger stacks.
inline constexpr bool kSanitized =
#if defined(FIBERIO_ASAN) || defined(FIBERIO_TSAN)
    true;
#else
    false;
#endif

// Bounds of a stack, as AddressSanitizer wants them.
struct StackBounds {
  const void* bottom = nullptr;
  std::size_t size = 0;
};

// Call just before switching to a stack with `target` bounds. `fake_stack` receives ASan's fake-stack
// handle of the stack being left; pass nullptr when the stack being left is about to die.
inline void start_switch(void** fake_stack, StackBounds target) {
#ifdef FIBERIO_ASAN
  __sanitizer_start_switch_fiber(fake_stack, target.bottom, target.size);
#else
  (void)fake_stack;
  (void)target;
#endif
}

// Call first thing after arriving on a stack; `fake_stack` is the handle saved when this stack was left.
inline void finish_switch(void* fake_stack) {
#ifdef FIBERIO_ASAN
  const void* old_bottom = nullptr;
  std::size_t old_size = 0;
  __sanitizer_finish_switch_fiber(fake_stack, &old_bottom, &old_size);
#else
  (void)fake_stack;
#endif
}

// Call before a stack's memory is unmapped: clears the poison its frames left in ASan's shadow. Without it
// the next mapping at those addresses that ASan does not see being made (liburing maps its rings with a
// raw mmap syscall) would read as a stack redzone.
inline void forget_stack(void* low, std::size_t size) {
#if defined(FIBERIO_ASAN)
  __asan_unpoison_memory_region(low, size);
#else
  (void)low;
  (void)size;
#endif
}

#ifdef FIBERIO_TSAN
struct TsanCache {
  std::vector<void*> fibers;
  ~TsanCache() {
    for (void* f : fibers)
      __tsan_destroy_fiber(f);
  }
};
inline std::vector<void*>& tsan_cache() {
  thread_local TsanCache cache;
  return cache.fibers;
}
#endif

// ThreadSanitizer's view of a fiber: an opaque handle per execution context.
inline void* tsan_current() {
#ifdef FIBERIO_TSAN
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}
// TSan fiber contexts are recycled through a per-thread cache: creating and destroying one per fiber
// leaks memory inside ThreadSanitizer (about 240 KB a fiber with GCC 12's runtime), so a run spawning
// 100,000 fibers would need tens of GiB. Reuse hides no race: every switch already synchronises.
inline void* tsan_create() {
#ifdef FIBERIO_TSAN
  auto& cache = tsan_cache();
  if (!cache.empty()) {
    void* fiber = cache.back();
    cache.pop_back();
    return fiber;
  }
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}
inline void tsan_destroy(void* fiber) {
#ifdef FIBERIO_TSAN
  if (!fiber) return;
  auto& cache = tsan_cache();
  if (cache.size() < 4096) {
    cache.push_back(fiber);
  } else {
    __tsan_destroy_fiber(fiber);
  }
#else
  (void)fiber;
#endif
}
inline void tsan_switch_to(void* fiber) {
#ifdef FIBERIO_TSAN
  __tsan_switch_to_fiber(fiber, 0);
#else
  (void)fiber;
#endif
}

// valgrind: a stack it should know about, so callgrind and memcheck do not mistake switches for overflows.
inline unsigned valgrind_register_stack(void* low, void* high) {
#ifdef FIBERIO_VALGRIND
  return VALGRIND_STACK_REGISTER(low, high);
#else
  (void)low;
  (void)high;
  return 0;
#endif
}
inline void valgrind_deregister_stack(unsigned id) {
#ifdef FIBERIO_VALGRIND
  VALGRIND_STACK_DEREGISTER(id);
#else
  (void)id;
#endif
}

}  // namespace fiberio::detail
