// reactor/detail/poll_backend.hpp — portable poll(2) backend, one-shot per armed direction: the reference
// implementation of the Backend contract and the fallback where epoll is missing.
// Thread-safety: a mutex guards the interest table; wait() polls a snapshot of it, so a change made while
// the owner is blocked takes effect after an interrupt (arm() returns true to ask for one).
#pragma once

#include <fiberio/reactor/backend.hpp>

#include <poll.h>

#include <mutex>
#include <unordered_map>
#include <vector>

namespace fiberio::detail {

class PollBackend final : public Backend {
 public:
  std::string_view name() const override { return "poll"; }
  std::error_code add(int fd, std::uint64_t token) override;
  bool arm(int fd, std::uint64_t token, Interest interest) override;
  void remove(int fd) override;
  std::size_t wait(std::span<ReadinessEvent> out, std::optional<std::chrono::nanoseconds> timeout) override;

 private:
  struct Watch {
    std::uint64_t token;
    Interest armed;
  };
  std::mutex mutex_;
  std::unordered_map<int, Watch> watches_;
  std::vector<pollfd> scratch_;  // owner thread only
};

}  // namespace fiberio::detail
