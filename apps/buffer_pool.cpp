#include "buffer_pool.hpp"

#include <cstring>
#include <utility>

namespace fiberio::detail {
namespace {

// A free list threaded through the free buffers themselves (each one's first bytes hold the next).
struct FreeList {
  std::byte* head = nullptr;
  std::size_t size = 0;
  ~FreeList() {
    while (head)
      delete[] std::exchange(head, next(head));
  }
  static std::byte* next(std::byte* buffer) noexcept {
    std::byte* n;
    std::memcpy(&n, buffer, sizeof n);
    return n;
  }
};

// Initial-exec: the programs are executables, and a dynamic TLS lookup would cost more than the list.
thread_local FreeList t_list __attribute__((tls_model("initial-exec")));

}  // namespace

std::byte* PooledBuffer::take() {
  FreeList& list = t_list;
  if (!list.head) return new std::byte[kSize];
  std::byte* b = list.head;
  list.head = FreeList::next(b);
  --list.size;
  return b;
}

void PooledBuffer::give(std::byte* buffer) noexcept {
  FreeList& list = t_list;
  if (list.size == kKeepPerThread) {
    delete[] buffer;
    return;
  }
  std::memcpy(buffer, &list.head, sizeof list.head);
  list.head = buffer;
  ++list.size;
}

}  // namespace fiberio::detail
