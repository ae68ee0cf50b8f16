// reactor/detail/epoll_backend.hpp — Linux epoll, edge-triggered: each fd is registered once for both
// directions, so waiting costs no epoll_ctl; nanosecond timeouts through epoll_pwait2 where the kernel has
// it. Thread-safety: as Backend (epoll itself is thread-safe). Invariant: owns epfd_ for its whole life.
#pragma once

#include <fiberio/reactor/backend.hpp>

namespace fiberio::detail {

class EpollBackend final : public Backend {
 public:
  EpollBackend();  // throws std::system_error
  ~EpollBackend() override;
  std::string_view name() const override { return "epoll"; }
  std::error_code add(int fd, std::uint64_t token) override;
  bool arm(int, std::uint64_t, Interest) override { return false; }
  bool needs_arm() const noexcept override { return false; }
  void remove(int fd) override;
  std::size_t wait(std::span<ReadinessEvent> out, std::optional<std::chrono::nanoseconds> timeout) override;

 private:
  int epfd_ = -1;
  bool have_pwait2_ = true;
};

}  // namespace fiberio::detail
