#include "reactor/async_fd.hpp"

#include "reactor/reactor.hpp"
#include "runtime/worker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <utility>

namespace fiberio {

AsyncFd::AsyncFd(int fd) : fd_(fd) {
  if (fd_ >= 0) {
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  }
}

AsyncFd::AsyncFd(AsyncFd&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), source_(std::exchange(other.source_, {})) {}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    source_ = std::exchange(other.source_, {});
  }
  return *this;
}

int AsyncFd::release() noexcept {
  if (source_) source_.reactor->deregister(source_);
  source_ = {};
  return std::exchange(fd_, -1);
}

void AsyncFd::close() noexcept {
  const int fd = release();
  if (fd >= 0) ::close(fd);
}

std::error_code AsyncFd::ensure_registered() {
  if (source_) return {};
  if (fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
  detail::Worker* worker = detail::Worker::current();
  if (!worker || !worker->running()) return std::make_error_code(std::errc::operation_not_permitted);
  return worker->reactor().register_fd(fd_, source_);
}

AsyncFd::Snapshot AsyncFd::readiness(Interest direction) noexcept {
  const auto r = source_.reactor->readiness(source_, direction);
  return Snapshot{r.epoch, r.ready};
}

std::error_code AsyncFd::wait(Interest direction, std::uint32_t epoch, std::optional<Deadline> deadline) {
  const detail::SourceHandle source = source_;  // close() may reset source_ while we are parked
  switch (source.reactor->wait_ready(source, direction, epoch, deadline)) {
    case detail::WakeReason::notified: return {};
    case detail::WakeReason::timeout: return std::make_error_code(std::errc::timed_out);
    case detail::WakeReason::cancelled: throw Cancelled{};
  }
  return {};
}

std::expected<void, std::error_code> AsyncFd::ready(Interest direction, std::optional<Deadline> deadline) {
  if (auto ec = ensure_registered()) return std::unexpected(ec);
  for (;;) {
    const auto snapshot = readiness(direction);
    // "Ready" only means no EAGAIN was seen since the last event: ask the kernel, consuming nothing.
    if (snapshot.ready) {
      pollfd probe{fd_, static_cast<short>(direction == Interest::read ? POLLIN : POLLOUT), 0};
      if (::poll(&probe, 1, 0) > 0) return {};
    }
    if (auto ec = wait(direction, snapshot.epoch, deadline)) return std::unexpected(ec);
    if (!source_) return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));  // closed meanwhile
  }
}

std::expected<void, std::error_code> AsyncFd::readable(std::optional<Deadline> deadline) {
  return ready(Interest::read, deadline);
}

std::expected<void, std::error_code> AsyncFd::writable(std::optional<Deadline> deadline) {
  return ready(Interest::write, deadline);
}

std::expected<std::size_t, std::error_code> AsyncFd::read(std::span<std::byte> buffer,
                                                          std::optional<Deadline> deadline) {
  auto n = io(Interest::read, [&] { return ::read(fd_, buffer.data(), buffer.size()); }, deadline);
  if (!n) return std::unexpected(n.error());
  return static_cast<std::size_t>(*n);
}

std::expected<std::size_t, std::error_code> AsyncFd::write(std::span<const std::byte> buffer,
                                                           std::optional<Deadline> deadline) {
  auto n = io(Interest::write, [&] { return ::write(fd_, buffer.data(), buffer.size()); }, deadline);
  if (!n) return std::unexpected(n.error());
  return static_cast<std::size_t>(*n);
}

}  // namespace fiberio
