#include <fiberio/reactor/detail/poll_backend.hpp>

#include <poll.h>

#include <cerrno>
#include <ctime>

namespace fiberio::detail {

std::error_code PollBackend::add(int fd, std::uint64_t token) {
  std::lock_guard lock(mutex_);
  if (!watches_.emplace(fd, Watch{token, Interest::none}).second)
    return std::make_error_code(std::errc::file_exists);
  return {};
}

bool PollBackend::arm(int fd, std::uint64_t token, Interest interest) {
  std::lock_guard lock(mutex_);
  auto it = watches_.find(fd);
  if (it == watches_.end() || it->second.token != token) return false;
  const Interest before = it->second.armed;
  it->second.armed = before | interest;
  return it->second.armed != before;
}

void PollBackend::remove(int fd) {
  std::lock_guard lock(mutex_);
  watches_.erase(fd);
}

std::size_t PollBackend::wait(std::span<ReadinessEvent> out,
                              std::optional<std::chrono::nanoseconds> timeout) {
  scratch_.clear();
  {
    std::lock_guard lock(mutex_);
    for (const auto& [fd, watch] : watches_) {
      short events = 0;
      if (has(watch.armed, Interest::read)) events |= POLLIN | POLLRDHUP;
      if (has(watch.armed, Interest::write)) events |= POLLOUT;
      if (events != 0) scratch_.push_back(pollfd{fd, events, 0});
    }
  }
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout) {
    ts = timespec{static_cast<time_t>(timeout->count() / 1'000'000'000),
                  static_cast<long>(timeout->count() % 1'000'000'000)};
    tsp = &ts;
  }
  const int n = ::ppoll(scratch_.data(), scratch_.size(), tsp, nullptr);
  if (n <= 0) return 0;

  std::size_t count = 0;
  std::lock_guard lock(mutex_);
  for (const auto& p : scratch_) {
    if (p.revents == 0 || count == out.size()) continue;
    auto it = watches_.find(p.fd);
    if (it == watches_.end()) continue;
    const bool failed = (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
    const bool readable = failed || (p.revents & (POLLIN | POLLRDHUP)) != 0;
    const bool writable = failed || (p.revents & POLLOUT) != 0;
    // One-shot: a reported direction must be armed again before it is reported again.
    auto armed = static_cast<std::uint8_t>(it->second.armed);
    if (readable) armed &= ~static_cast<std::uint8_t>(Interest::read);
    if (writable) armed &= ~static_cast<std::uint8_t>(Interest::write);
    it->second.armed = static_cast<Interest>(armed);
    out[count++] = ReadinessEvent{it->second.token, readable, writable,
                                  readable && (failed || (p.revents & POLLRDHUP) != 0), writable && failed};
  }
  return count;
}

}  // namespace fiberio::detail
