#include "buffer_pool.hpp"

#include <vector>

namespace fiberio::detail {
namespace {

struct FreeList {
  std::vector<std::byte*> buffers;
  ~FreeList() {
    for (std::byte* b : buffers)
      delete[] b;
  }
};

FreeList& local_list() {
  thread_local FreeList list;
  return list;
}

}  // namespace

std::byte* PooledBuffer::take() {
  FreeList& list = local_list();
  if (list.buffers.empty()) return new std::byte[kSize];
  std::byte* b = list.buffers.back();
  list.buffers.pop_back();
  return b;
}

void PooledBuffer::give(std::byte* buffer) noexcept {
  FreeList& list = local_list();
  if (list.buffers.size() < kKeepPerThread) {
    try {
      list.buffers.push_back(buffer);
      return;
    } catch (...) {  // no memory to grow the list: free the buffer instead
    }
  }
  delete[] buffer;
}

}  // namespace fiberio::detail
