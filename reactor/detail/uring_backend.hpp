// reactor/detail/uring_backend.hpp — Linux io_uring as a readiness backend: one multishot poll request per
// fd, for both directions, edge-triggered like epoll's EPOLLET, so waiting costs no submission. A turn whose
// completions are already in the ring costs no syscall at all; one that must wait costs one io_uring_enter.
// Needs Linux 5.13 (multishot poll, timeouts passed to io_uring_enter); the constructor checks both and
// throws a system_error whose code explain_backend_error() (reactor/backend.hpp) turns into cause and fix.
// Completion-based operations (recv/send on the ring itself) are not here yet: AsyncFd waits for readiness
// and then makes the syscall, as with epoll.
//
// Thread-safety: as Backend. A mutex guards the submission queue and the table of live registrations; the
// completion queue is read by the owner in wait() only. Submissions are made at once, from the calling
// thread (no SINGLE_ISSUER: add() and remove() come from any thread). Invariants: every live registration
// has a poll request in the kernel, or is re-armed by the owner at the next wait() (a multishot request
// ends when the kernel drops it: completion queue overflow, or the thread that submitted it exited);
// remove() cancels the request before it returns, so the kernel holds no reference to a file the caller
// is about to close.
#pragma once

#include <fiberio/reactor/backend.hpp>

#include <liburing.h>

#include <mutex>
#include <unordered_map>

namespace fiberio::detail {

class UringBackend final : public Backend {
 public:
  UringBackend();  // throws std::system_error (the errno of the step that failed)
  ~UringBackend() override;
  UringBackend(const UringBackend&) = delete;
  UringBackend& operator=(const UringBackend&) = delete;

  std::string_view name() const override { return "io_uring"; }
  std::error_code add(int fd, std::uint64_t token) override;
  bool arm(int, std::uint64_t, Interest) override { return false; }
  Arming arming() const noexcept override { return Arming::never; }
  void remove(int fd) override;
  std::size_t wait(std::span<ReadinessEvent> out, std::optional<std::chrono::nanoseconds> timeout) override;

 private:
  // user_data of the requests that are not polls (poll removals): never a registration's token.
  static constexpr std::uint64_t kInternal = ~std::uint64_t{0} - 1;

  // A free submission slot (submitting what is queued if there is none); null if still none. Under mutex_.
  io_uring_sqe* sqe_locked();
  // Queues a multishot poll of `fd` for `token` and submits it; under mutex_.
  std::error_code submit_poll_locked(int fd, std::uint64_t token);
  // A poll request for `token` ended (no IORING_CQE_F_MORE): poll again if it is still registered.
  void rearm(std::uint64_t token);

  io_uring ring_{};
  std::mutex mutex_;                              // the submission queue and the tables
  std::unordered_map<int, std::uint64_t> by_fd_;  // live registrations: fd -> token
  std::unordered_map<std::uint64_t, int> by_token_;
};

}  // namespace fiberio::detail
