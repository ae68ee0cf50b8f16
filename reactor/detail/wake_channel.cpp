#include <fiberio/reactor/detail/wake_channel.hpp>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace fiberio::detail {

WakeChannel::WakeChannel() {
  read_fd_ = write_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (read_fd_ >= 0) return;
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "wake channel");
  read_fd_ = fds[0];
  write_fd_ = fds[1];
}

WakeChannel::~WakeChannel() {
  if (write_fd_ != read_fd_) ::close(write_fd_);
  ::close(read_fd_);
}

void WakeChannel::notify() noexcept {
  if (pending_.exchange(true, std::memory_order_acq_rel)) return;
  writes_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  // A full pipe or a saturated eventfd already means "wake up": the result can be ignored.
  [[maybe_unused]] auto n = ::write(write_fd_, &one, write_fd_ == read_fd_ ? sizeof one : 1);
}

// Read first, clear after: clearing first let a notify() between the two write a value the read then
// swallowed, leaving `pending_` set over an empty fd, and every later notify() skipped its write (a lost
// wake-up, found by tests/net_core_repro_test.cpp). A notify() that lands after the read and before the
// clear is coalesced away, which is fine: the owner is awake and looks at its queues after draining.
void WakeChannel::drain() noexcept {
  std::uint64_t buffer[8];
  while (::read(read_fd_, buffer, sizeof buffer) > 0 && write_fd_ != read_fd_) {
  }
  pending_.store(false, std::memory_order_release);
}

}  // namespace fiberio::detail
