#include <fiberio/reactor/detail/uring_backend.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace fiberio::detail {

namespace {

constexpr unsigned kPollMask = POLLIN | POLLOUT | POLLRDHUP;

// Completions the ring holds: one per event per fd, so far more than submissions.
constexpr unsigned kSubmissionEntries = 256;
constexpr unsigned kCompletionEntries = 8192;

[[noreturn]] void fail(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

UringBackend::UringBackend() {
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = kCompletionEntries;
  if (const int rc = io_uring_queue_init_params(kSubmissionEntries, &ring_, &params); rc < 0)
    fail(-rc, "io_uring_setup");
  // Timeouts passed to io_uring_enter (5.11) keep wait() from needing a timeout request of its own.
  if (!(params.features & IORING_FEAT_EXT_ARG)) {
    io_uring_queue_exit(&ring_);
    fail(ENOTSUP, "io_uring without IORING_FEAT_EXT_ARG");
  }
  // Multishot poll (5.13): an older kernel refuses the flag with EINVAL. Try it on an eventfd.
  const int probe = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
  if (probe < 0) {
    const int err = errno;
    io_uring_queue_exit(&ring_);
    fail(err, "eventfd");
  }
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_poll_multishot(sqe, probe, POLLIN);
  io_uring_sqe_set_data64(sqe, kInternal);
  io_uring_submit(&ring_);
  io_uring_cqe* cqe = nullptr;
  const int rc = io_uring_wait_cqe(&ring_, &cqe);
  const bool multishot = rc == 0 && cqe->res >= 0 && (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (rc == 0) io_uring_cqe_seen(&ring_, cqe);
  if (multishot) {
    sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_poll_remove(sqe, kInternal);
    io_uring_sqe_set_data64(sqe, kInternal);
    io_uring_submit(&ring_);
    // The removal's completion and the poll's last one are skipped by wait() (kInternal).
  }
  ::close(probe);
  if (!multishot) {
    io_uring_queue_exit(&ring_);
    fail(ENOTSUP, "io_uring without multishot poll");
  }
}

UringBackend::~UringBackend() {
  io_uring_queue_exit(&ring_);
}

io_uring_sqe* UringBackend::sqe_locked() {
  if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
  io_uring_submit(&ring_);  // full (every call submits at once, so it should never be): make room
  return io_uring_get_sqe(&ring_);
}

std::error_code UringBackend::submit_poll_locked(int fd, std::uint64_t token) {
  io_uring_sqe* sqe = sqe_locked();
  if (!sqe) return std::make_error_code(std::errc::resource_unavailable_try_again);
  io_uring_prep_poll_multishot(sqe, fd, kPollMask);
  io_uring_sqe_set_data64(sqe, token);
  if (const int rc = io_uring_submit(&ring_); rc < 0) return {-rc, std::generic_category()};
  return {};
}

std::error_code UringBackend::add(int fd, std::uint64_t token) {
  std::lock_guard lock(mutex_);
  if (by_fd_.contains(fd)) return std::make_error_code(std::errc::file_exists);  // as EPOLL_CTL_ADD
  if (auto ec = submit_poll_locked(fd, token)) return ec;
  by_fd_.emplace(fd, token);
  by_token_.emplace(token, fd);
  return {};
}

void UringBackend::remove(int fd) {
  std::lock_guard lock(mutex_);
  const auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return;
  const std::uint64_t token = it->second;
  by_token_.erase(token);
  by_fd_.erase(it);
  io_uring_sqe* sqe = sqe_locked();
  if (!sqe) return;
  // Handled during the submit itself: once this returns, the kernel has let go of the file.
  io_uring_prep_poll_remove(sqe, token);
  io_uring_sqe_set_data64(sqe, kInternal);
  io_uring_submit(&ring_);
}

void UringBackend::rearm(std::uint64_t token) {
  std::lock_guard lock(mutex_);
  const auto it = by_token_.find(token);
  if (it == by_token_.end()) return;  // removed: this was its cancellation
  (void)submit_poll_locked(it->second, token);
}

std::size_t UringBackend::wait(std::span<ReadinessEvent> out,
                               std::optional<std::chrono::nanoseconds> timeout) {
  io_uring_cqe* cqe = nullptr;
  // Completions already there cost no syscall; otherwise one io_uring_enter waits for the first.
  if (io_uring_peek_cqe(&ring_, &cqe) != 0) {
    if (timeout && timeout->count() <= 0) return 0;
    int rc;
    if (timeout) {
      __kernel_timespec ts{timeout->count() / 1'000'000'000, timeout->count() % 1'000'000'000};
      rc = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
    } else {
      rc = io_uring_wait_cqe(&ring_, &cqe);
    }
    if (rc != 0) return 0;  // -ETIME, -EINTR
  }
  std::size_t n = 0;
  unsigned head;
  unsigned seen = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (n == out.size()) break;
    ++seen;
    const std::uint64_t token = io_uring_cqe_get_data64(cqe);
    if (token == kInternal) continue;
    const int res = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) rearm(token);
    if (res == -ECANCELED && !(cqe->flags & IORING_CQE_F_MORE)) {
      // Removed (skipped by rearm), or cancelled by the kernel (its submitter exited) and re-armed: report
      // nothing; a re-armed poll reports the fd's state afresh.
      continue;
    }
    ReadinessEvent& e = out[n++];
    e.token = token;
    if (res < 0) {  // the request failed: a spurious event in both directions, so waiters try again
      e.readable = e.writable = true;
      e.read_closed = e.write_closed = false;
      continue;
    }
    const auto flags = static_cast<unsigned>(res);
    const bool failed = (flags & (POLLERR | POLLHUP)) != 0;
    const bool read_closed = failed || (flags & POLLRDHUP) != 0;
    e.readable = read_closed || (flags & POLLIN) != 0;
    e.writable = failed || (flags & POLLOUT) != 0;
    e.read_closed = read_closed;
    e.write_closed = failed;
  }
  io_uring_cq_advance(&ring_, seen);
  return n;
}

}  // namespace fiberio::detail
