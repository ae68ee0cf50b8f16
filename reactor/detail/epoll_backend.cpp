#include <fiberio/reactor/detail/epoll_backend.hpp>

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace fiberio::detail {

EpollBackend::EpollBackend() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

EpollBackend::~EpollBackend() {
  ::close(epfd_);
}

// Edge-triggered. Writability joins the interest set at the first arm() for it: a socket that is only
// ever written without blocking (the usual request-response server) then gets events for reads alone.
std::error_code EpollBackend::add(int fd, std::uint64_t token) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = token;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return {errno, std::generic_category()};
  return {};
}

// EPOLL_CTL_MOD re-evaluates the fd: if it is writable by now, an event is queued at once, so a waiter
// that parked before this call cannot miss the edge. Takes effect in a wait() already blocked.
bool EpollBackend::arm(int fd, std::uint64_t token, Interest interest) {
  if (!has(interest, Interest::write)) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = token;
  // Fails only for an fd no longer registered (deregistering it wakes its waiters).
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
  return false;
}

void EpollBackend::remove(int fd) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

std::size_t EpollBackend::wait(std::span<ReadinessEvent> out,
                               std::optional<std::chrono::nanoseconds> timeout) {
  constexpr int kBatch = 256;
  epoll_event events[kBatch];
  const int max = static_cast<int>(out.size() < kBatch ? out.size() : kBatch);
  int n;
  if (have_pwait2_ && timeout && timeout->count() > 0) {
    timespec ts{static_cast<time_t>(timeout->count() / 1'000'000'000),
                static_cast<long>(timeout->count() % 1'000'000'000)};
    n = static_cast<int>(::syscall(SYS_epoll_pwait2, epfd_, events, max, &ts, nullptr, 0));
    if (n < 0 && errno == ENOSYS) {
      have_pwait2_ = false;
      return wait(out, timeout);
    }
  } else {
    int ms = -1;
    if (timeout) ms = static_cast<int>((timeout->count() + 999'999) / 1'000'000);  // round up: never early
    n = ::epoll_wait(epfd_, events, max, ms);
  }
  if (n <= 0) return 0;  // EINTR or timeout
  for (int i = 0; i < n; ++i) {
    const auto flags = events[i].events;
    ReadinessEvent& e = out[i];
    e.token = events[i].data.u64;
    if ((flags & ~(EPOLLIN | EPOLLOUT)) == 0) [[likely]] {  // the usual event: no hang-up, no error
      e.readable = (flags & EPOLLIN) != 0;
      e.writable = (flags & EPOLLOUT) != 0;
      e.read_closed = e.write_closed = false;
      continue;
    }
    const bool failed = (flags & (EPOLLERR | EPOLLHUP)) != 0;
    const bool read_closed = failed || (flags & EPOLLRDHUP) != 0;
    e.readable = read_closed || (flags & EPOLLIN) != 0;
    e.writable = failed || (flags & EPOLLOUT) != 0;
    e.read_closed = read_closed;
    e.write_closed = failed;
  }
  return static_cast<std::size_t>(n);
}

}  // namespace fiberio::detail
