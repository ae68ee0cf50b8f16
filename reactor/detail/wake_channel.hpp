// reactor/detail/wake_channel.hpp — lets any thread interrupt a worker blocked in its backend's wait.
// An eventfd (a pipe where eventfd is missing) watched by the backend like any fd. Wakes are coalesced:
// `pending_` turns a burst of notify() calls into one write until the owner drains.
// Thread-safety: notify() from any thread; drain() by the owner only.
// Invariant: if pending_ is true, a write is unread in the fd (or about to be), so the owner's wait returns.
#pragma once

#include <atomic>

namespace fiberio::detail {

class WakeChannel {
 public:
  WakeChannel();  // throws std::system_error
  ~WakeChannel();
  WakeChannel(const WakeChannel&) = delete;
  WakeChannel& operator=(const WakeChannel&) = delete;

  int fd() const noexcept { return read_fd_; }
  void notify() noexcept;
  void drain() noexcept;
  // How many notify() calls reached the kernel (for tests of the coalescing).
  std::uint64_t writes() const noexcept { return writes_.load(std::memory_order_relaxed); }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;  // == read_fd_ for an eventfd
  std::atomic<bool> pending_{false};
  std::atomic<std::uint64_t> writes_{0};
};

}  // namespace fiberio::detail
