#include <fiberio/executor/detail/stack_pool.hpp>

#include <fiberio/executor/detail/sanitizer.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>

namespace fiberio::detail {
namespace {

std::atomic<std::size_t> g_live_mappings{0};

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// Linux 6.13's lightweight guard pages (MADV_GUARD_INSTALL; glibc 2.36 does not name it yet): the page
// faults like PROT_NONE but the mapping is not split, so a stack costs no extra memory mapping, and
// neighbouring stacks merge into one (vm.max_map_count, 65,530 by default, then no longer caps the
// number of fibers near 32,700). Older kernels refuse it with EINVAL: a PROT_NONE page then, which splits
// the mapping in two.
constexpr int kMadvGuardInstall = 102;
std::atomic<bool> g_guard_madvise{true};

bool install_guard(void* base) {
  if (g_guard_madvise.load(std::memory_order_relaxed)) {
    if (::madvise(base, page_size(), kMadvGuardInstall) == 0) return true;
    if (errno != EINVAL) return false;
    g_guard_madvise.store(false, std::memory_order_relaxed);  // this kernel lacks it: never ask again
  }
  return ::mprotect(base, page_size(), PROT_NONE) == 0;
}

// Layout of a mapping, low to high: guard page, usable stack, a 64-byte header holding valgrind's id for
// the stack. Boost.Context sees `sp` just below the header and `size` bytes of stack below that.
constexpr std::size_t kHeader = 64;

struct Mapping {
  static boost::context::stack_context create(std::size_t usable) {
    const std::size_t total = usable + page_size();
    void* base = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    if (!install_guard(base)) {
      ::munmap(base, total);
      throw std::bad_alloc();
    }
    g_live_mappings.fetch_add(1, std::memory_order_relaxed);
    char* low = static_cast<char*>(base) + page_size();
    char* top = static_cast<char*>(base) + total;
    boost::context::stack_context stack;
    stack.sp = top - kHeader;
    stack.size = usable - kHeader;
    *header(stack) = valgrind_register_stack(low, top);
    return stack;
  }

  static void destroy(const boost::context::stack_context& stack) noexcept {
    valgrind_deregister_stack(*header(stack));
    const std::size_t total = stack.size + kHeader + page_size();
    char* base = static_cast<char*>(stack.sp) + kHeader - total;
    forget_stack(base + page_size(), total - page_size());  // the guard page was never poisoned
    ::munmap(base, total);
    g_live_mappings.fetch_sub(1, std::memory_order_relaxed);
  }

  // Gives every page of the stack back (the next touch faults in a zeroed page), keeping the header.
  static void release_pages(const boost::context::stack_context& stack) noexcept {
    const unsigned id = *header(stack);
    char* low = static_cast<char*>(stack.sp) - stack.size;
    (void)::madvise(low, stack.size + kHeader, MADV_DONTNEED);  // advice: a failure only costs memory
    if (id != 0) *header(stack) = id;  // under valgrind only: it touches the top page again
  }

  static unsigned* header(const boost::context::stack_context& stack) {
    return static_cast<unsigned*>(stack.sp);
  }
};

}  // namespace

StackPool::~StackPool() {
  for (auto& stack : free_)
    Mapping::destroy(stack);
}

bool StackPool::light_guards() noexcept {
  return g_guard_madvise.load(std::memory_order_relaxed);
}

StackPool& StackPool::local() {
  thread_local StackPool pool;
  return pool;
}

boost::context::stack_context StackPool::allocate(std::size_t size) {
  const std::size_t usable = (size + kHeader + page_size() - 1) / page_size() * page_size();
  if (!free_.empty() && free_.back().size == usable - kHeader) {
    auto stack = free_.back();
    free_.pop_back();
    low_water_ = std::min(low_water_, free_.size());
    clean_ = std::min(clean_, free_.size());
    return stack;
  }
  return Mapping::create(usable);
}

void StackPool::deallocate(const boost::context::stack_context& stack) noexcept {
  if (free_.size() >= kMaxCached || (!free_.empty() && free_.back().size != stack.size)) {
    Mapping::destroy(stack);
    return;
  }
  free_.push_back(stack);
}

void StackPool::trim() noexcept {
  const std::size_t unused = low_water_ / 2 + (low_water_ % 2);
  for (std::size_t i = 0; i < unused && !free_.empty(); ++i) {
    Mapping::destroy(free_.back());
    free_.pop_back();
  }
  clean_ = std::min(clean_, free_.size());
  // The stacks below the low-water mark were not used all period: their pages go too.
  release_pages(free_.size() - std::min(low_water_, free_.size()));
  low_water_ = free_.size();
}

void StackPool::release_pages(std::size_t keep) noexcept {
  const std::size_t end = free_.size() - std::min(keep, free_.size());
  for (std::size_t i = clean_; i < end; ++i)
    Mapping::release_pages(free_[i]);
  clean_ = std::max(clean_, end);
}

std::size_t StackPool::high_water(StackBounds stack) noexcept {
  const std::size_t page = page_size();
  const auto low = reinterpret_cast<std::uintptr_t>(stack.bottom) / page * page;
  const std::size_t pages =
      (reinterpret_cast<std::uintptr_t>(stack.bottom) + stack.size - low + page - 1) / page;
  std::vector<unsigned char> resident(pages);
  if (::mincore(reinterpret_cast<void*>(low), pages * page, resident.data()) != 0) return 0;
  for (std::size_t i = 0; i < pages; ++i) {
    if (resident[i] & 1) return std::min(stack.size, (pages - i) * page);
  }
  return 0;
}

std::size_t StackPool::live_mappings() noexcept {
  return g_live_mappings.load(std::memory_order_relaxed);
}

}  // namespace fiberio::detail
