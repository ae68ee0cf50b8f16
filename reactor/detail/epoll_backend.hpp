// reactor/detail/epoll_backend.hpp — Linux epoll, edge-triggered: each fd is registered once for reads and,
// at its first wait to write (Arming::first_write), once more for writes, so waiting costs no epoll_ctl
// after that; nanosecond timeouts through epoll_pwait2 where the kernel has it. Thread-safety: as Backend
// (epoll itself is thread-safe). Invariant: owns epfd_ for its whole life.
#pragma once

#include <fiberio/reactor/backend.hpp>

namespace fiberio::detail {

class EpollBackend final : public Backend {
 public:
  EpollBackend();  // throws std::system_error
  ~EpollBackend() override;
  std::string_view name() const override { return "epoll"; }
  std::error_code add(int fd, std::uint64_t token) override;
  bool arm(int fd, std::uint64_t token, Interest interest) override;
  Arming arming() const noexcept override { return Arming::first_write; }
  void remove(int fd) override;
  std::size_t wait(std::span<ReadinessEvent> out, std::optional<std::chrono::nanoseconds> timeout) override;

 private:
  int epfd_ = -1;
  bool have_pwait2_ = true;
};

}  // namespace fiberio::detail
