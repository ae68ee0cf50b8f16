#include <fiberio/reactor/async_fd.hpp>

#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/reactor/detail/reactor.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <mutex>
#include <utility>

namespace fiberio {

AsyncFd::AsyncFd(int fd) : fd_(fd) {
  if (fd_ >= 0) {
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  }
}

AsyncFd::AsyncFd(AsyncFd&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      source_(other.source_.exchange(nullptr)),
      reactor_(other.reactor_),
      generation_(other.generation_) {}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    reactor_ = other.reactor_;
    generation_ = other.generation_;
    source_.store(other.source_.exchange(nullptr), std::memory_order_release);
  }
  return *this;
}

int AsyncFd::release() noexcept {
  if (detail::IoSource* source = source_.exchange(nullptr, std::memory_order_acq_rel)) {
    reactor_->deregister(detail::SourceHandle{reactor_, source, generation_});
  }
  return std::exchange(fd_, -1);
}

void AsyncFd::close() noexcept {
  const int fd = release();
  if (fd >= 0) ::close(fd);
}

std::error_code AsyncFd::register_now() {
  while (!source_.load(std::memory_order_acquire)) {
    if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
    detail::Reactor* reactor = detail::Reactor::current();
    if (!reactor || !detail::Fiber::current())
      return std::make_error_code(std::errc::operation_not_permitted);
    // Taken once per fd, on its first wait (off the hot path); striped so workers rarely contend.
    static std::mutex publish_stripes[64];
    std::lock_guard lock(publish_stripes[static_cast<unsigned>(fd_) % 64]);
    if (source_.load(std::memory_order_acquire)) break;
    detail::SourceHandle handle;
    if (auto ec = reactor->register_fd(fd_, handle)) return ec;
    reactor_ = handle.reactor;
    generation_ = handle.generation;
    source_.store(handle.source, std::memory_order_release);
  }
  return {};
}

detail::WakeReason AsyncFd::wait(detail::IoSource* source, Interest direction, std::uint32_t seen,
                                 std::optional<Deadline> deadline) {
  // The registration by value: close() may reset source_ while we are suspended.
  return reactor_->wait_ready(source, generation_, fd_, direction, seen, deadline);
}

std::expected<void, std::error_code> AsyncFd::ready(Interest direction, std::optional<Deadline> deadline) {
  if (!source_.load(std::memory_order_acquire)) {
    if (auto ec = register_now()) return std::unexpected(ec);
  }
  detail::IoSource* source = source_.load(std::memory_order_acquire);
  for (;;) {
    const std::uint32_t seen = source->directions[detail::IoSource::index(direction)].snapshot();
    // "Ready" only means no drain was seen since the last event: ask the kernel, consuming nothing.
    if (detail::IoSource::Direction::ready(seen)) {
      pollfd probe{fd_, static_cast<short>(direction == Interest::read ? POLLIN : POLLOUT), 0};
      if (::poll(&probe, 1, 0) > 0) return {};
    }
    if (const auto why = wait(source, direction, seen, deadline); why != detail::WakeReason::notified) {
      if (why == detail::WakeReason::cancelled) throw Cancelled{};
      return std::unexpected(std::make_error_code(std::errc::timed_out));
    }
    if (!source_.load(std::memory_order_acquire))
      return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));  // closed meanwhile
  }
}

std::optional<AsyncFd::Ready::result_type> AsyncFd::Ready::try_complete() {
  if (!fd_.source_.load(std::memory_order_acquire)) {
    if (auto ec = fd_.register_now()) return std::unexpected(ec);
  }
  detail::IoSource* source = fd_.source_.load(std::memory_order_acquire);
  seen_ = source->directions[detail::IoSource::index(direction_)].snapshot();
  if (detail::IoSource::Direction::ready(seen_)) {  // as ready(): ask the kernel, consuming nothing
    pollfd probe{fd_.fd_, static_cast<short>(direction_ == Interest::read ? POLLIN : POLLOUT), 0};
    if (::poll(&probe, 1, 0) > 0) return result_type{};
  }
  return std::nullopt;
}

bool AsyncFd::Ready::subscribe(detail::Waiter& waiter) {
  detail::IoSource* source = fd_.source_.load(std::memory_order_acquire);
  subscribed_ = detail::SourceHandle{fd_.reactor_, source, fd_.generation_, fd_.fd_};
  if (!source) return waiter.wake();  // closed since the try: the next try reports it
  return fd_.reactor_->subscribe(subscribed_, direction_, seen_, waiter);
}

void AsyncFd::Ready::unsubscribe(detail::Waiter& waiter) noexcept {
  if (subscribed_) subscribed_.reactor->unsubscribe(subscribed_, direction_, waiter);
}

std::expected<void, std::error_code> AsyncFd::readable(Timeout timeout) {
  return ready(Interest::read, timeout);
}

std::expected<void, std::error_code> AsyncFd::writable(Timeout timeout) {
  return ready(Interest::write, timeout);
}

std::expected<std::size_t, std::error_code> AsyncFd::read(std::span<std::byte> buffer, Timeout timeout) {
  auto n = io(
      Interest::read, [&] { return ::read(fd_, buffer.data(), buffer.size()); }, timeout);
  if (!n) return std::unexpected(n.error());
  return static_cast<std::size_t>(*n);
}

std::expected<std::size_t, std::error_code> AsyncFd::write(std::span<const std::byte> buffer,
                                                           Timeout timeout) {
  auto n = io(
      Interest::write, [&] { return ::write(fd_, buffer.data(), buffer.size()); }, timeout);
  if (!n) return std::unexpected(n.error());
  return static_cast<std::size_t>(*n);
}

}  // namespace fiberio
