// apps/buffer_pool.hpp — per-thread free lists of fixed-size I/O buffers, so that a connection holds a
// buffer only while it moves bytes and an idle connection holds none (memory per idle connection is a
// headline figure of the echo server; docs/benchmarks.md).
//
//   fiberio::detail::PooledBuffer buffer;     // empty: no memory
//   buffer.acquire();                         // now kSize bytes, from this thread's free list if it has one
//   ... read into buffer.span(), write it out ...
//   buffer.release();                         // back to the free list of the thread running this fiber
//
// Fibers migrate between workers, so a buffer may be taken on one thread and given back on another; it
// then joins that thread's list (buffers are plain heap blocks: any thread may free them). Each list keeps
// at most kKeepPerThread buffers and frees the rest, so the pool never holds more than
// threads x kKeepPerThread x kSize bytes that nobody uses.
// Thread-safety: a PooledBuffer belongs to one fiber. The thread-local lists are reached only through
// non-inlined functions, so that no thread-local address is cached across a fiber's suspension (after
// which the fiber may run on another thread).
#pragma once

#include <cstddef>
#include <span>

namespace fiberio::detail {

class PooledBuffer {
 public:
  // 16 KiB: one recv() takes what a request/response client sends at once; bigger buffers gain little
  // for request/response traffic and cost memory under load.
  static constexpr std::size_t kSize = 16 * 1024;
  static constexpr std::size_t kKeepPerThread = 64;

  PooledBuffer() = default;
  ~PooledBuffer() { release(); }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;

  // Takes a buffer if none is held. Throws std::bad_alloc.
  void acquire() {
    if (!data_) data_ = take();
  }
  // Gives the buffer back, if one is held.
  void release() noexcept {
    if (data_) give(data_);
    data_ = nullptr;
  }
  bool held() const noexcept { return data_ != nullptr; }
  std::byte* data() const noexcept { return data_; }
  std::span<std::byte> span() const noexcept { return {data_, data_ ? kSize : 0}; }

 private:
  [[gnu::noinline]] static std::byte* take();
  [[gnu::noinline]] static void give(std::byte* buffer) noexcept;

  std::byte* data_ = nullptr;
};

}  // namespace fiberio::detail
