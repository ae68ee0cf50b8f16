// reactor/async_fd.hpp — async-io's Async<T> for fibers: owns a non-blocking fd and lets the calling
// fiber wait until it is readable or writable, with an optional limit (a Timeout: duration or deadline).
// Sockets, pipes, eventfds, timerfds and terminals all go through it.
//
//   fiberio::AsyncFd pipe_end{fd};
//   auto n = pipe_end.read(buffer);             // suspends the fiber, not the thread, until data comes
//   if (!n) log(n.error().message());           // errors are values; 0 means end of file
//
// The fd is registered lazily, on the first wait, with the reactor of the worker running the fiber; it
// stays there if the fiber later runs elsewhere (docs/design.md, "I/O across workers"). Invariant: an
// AsyncFd that has waited must be closed or destroyed before that Runtime is (its reactor goes with it).
// Errors: std::expected<T, std::error_code>; a timeout gives std::errc::timed_out; cancellation throws
// fiberio::Cancelled. Each ready operation counts against the fiber's I/O budget (it yields when spent).
// try_io_some() and registered_source() are what runtime/idle_loop.hpp builds on.
// on_readable(fd) and on_writable(fd) make a wait for readiness one branch of fiberio::select
// (executor/select.hpp); such a branch consumes nothing (read afterwards, as after readable()).
// Thread-safety: one AsyncFd may be read by one fiber and written by another at the same time; several
// fibers waiting in the same direction are all woken by an event and retry. close()/release() while
// other fibers wait on it is allowed from a fiber of the same worker (they wake with EBADF); from another
// thread it is a data race: interrupt with ::shutdown(fd) or cancel the waiting fiber instead.
#pragma once

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/this_fiber.hpp>
#include <fiberio/reactor/backend.hpp>
#include <fiberio/reactor/detail/io_source.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <expected>
#include <optional>
#include <span>
#include <system_error>

namespace fiberio {

class AsyncFd {
 public:
  AsyncFd() = default;
  // Adopts `fd` and makes it non-blocking.
  explicit AsyncFd(int fd);
  ~AsyncFd() { close(); }
  AsyncFd(AsyncFd&& other) noexcept;
  AsyncFd& operator=(AsyncFd&& other) noexcept;
  AsyncFd(const AsyncFd&) = delete;
  AsyncFd& operator=(const AsyncFd&) = delete;

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  // Deregisters and closes; fibers waiting on it wake and see EBADF.
  void close() noexcept;
  // Deregisters and gives the fd back to the caller, still open.
  int release() noexcept;

  std::expected<void, std::error_code> readable(Timeout timeout = {});
  std::expected<void, std::error_code> writable(Timeout timeout = {});

  std::expected<std::size_t, std::error_code> read(std::span<std::byte> buffer, Timeout timeout = {});
  std::expected<std::size_t, std::error_code> write(std::span<const std::byte> buffer, Timeout timeout = {});

  // Runs `op` (a syscall wrapper that returns a negative value and sets errno on failure) until it stops
  // failing with EAGAIN, suspending on `direction` in between. The building block of every net operation.
  // The ready check is one atomic load; parking takes no lock either, unless a second fiber already waits
  // in the same direction (io_source.hpp).
  template <class Op>
  auto io(Interest direction, Op&& op, Timeout timeout = {})
      -> std::expected<decltype(op()), std::error_code> {
    return io_some(direction, std::forward<Op>(op), 0, timeout);
  }

  // io() for a stream operation that asks to move `requested` bytes: one that moved fewer (but some) has
  // drained the direction, which is then marked not ready unless an event came since it was read, so the
  // next call suspends at once instead of spending a syscall to collect EAGAIN. `requested` 0: never.
  // Only for stream sockets and pipes, where a short transfer means drained (not datagrams).
  template <class Op>
  auto io_some(Interest direction, Op&& op, std::size_t requested, Timeout timeout = {})
      -> std::expected<decltype(op()), std::error_code> {
    return transfer<true>(direction, op, requested, timeout);
  }

  // io_some() that never waits for readiness: where io_some() would wait, fails with would_block()
  // (errc::resource_unavailable_try_again; and marks the direction not ready, as that wait would, unless
  // an event came meanwhile). What an idle loop's handler reads with (runtime/idle_loop.hpp).
  // Cancellation is not looked at.
  template <class Op>
  auto try_io_some(Interest direction, Op&& op, std::size_t requested)
      -> std::expected<decltype(op()), std::error_code> {
    return transfer<false>(direction, op, requested, {});
  }
  // The error of a try_io_some() that found the direction not ready: errc::resource_unavailable_try_again,
  // made once. An idle loop's handler meets it on every request; comparing with it compares two words,
  // where comparing with the errc value calls into the category twice.
  static const std::error_code& would_block() noexcept {
    static const std::error_code error = std::make_error_code(std::errc::resource_unavailable_try_again);
    return error;
  }

  // The fd's registration with its reactor (made now if this is its first use), for code built on the
  // reactor's internals: the idle loop waits through it (runtime/detail/idle_task.cpp). Empty if the fd
  // cannot be registered (closed, or not on a worker).
  detail::SourceHandle registered_source() {
    const auto source = registration();
    if (!source) [[unlikely]]
      return {};
    return detail::SourceHandle{reactor_, *source, generation_, fd_};
  }

  // Readiness in one direction as a select() branch: completes when the fd is ready that way (as
  // readable()/writable() return), or with an error (errc::bad_file_descriptor once closed).
  class Ready {
   public:
    using result_type = std::expected<void, std::error_code>;
    Ready(AsyncFd& fd, Interest direction) noexcept : fd_(fd), direction_(direction) {}
    std::optional<result_type> try_complete();
    bool subscribe(detail::Waiter& waiter);
    void unsubscribe(detail::Waiter& waiter) noexcept;
    std::optional<Deadline> deadline() const noexcept { return std::nullopt; }

   private:
    AsyncFd& fd_;
    Interest direction_;
    std::uint32_t seen_ = 0;  // the state the last try saw
    detail::SourceHandle subscribed_;
  };

 private:
  // Registers the fd with the calling worker's reactor (once; off the hot path).
  std::error_code register_now();
  // The fd's registration, made on its first use.
  std::expected<detail::IoSource*, std::error_code> registration() {
    if (detail::IoSource* source = source_.load(std::memory_order_acquire)) [[likely]]
      return source;
    if (auto ec = register_now()) return std::unexpected(ec);
    return source_.load(std::memory_order_acquire);
  }
  std::expected<void, std::error_code> ready(Interest direction, std::optional<Deadline> deadline);
  // io_some() (kWait) and try_io_some() (not): one body, so the hot path is written once and costs
  // what it did before there were two (a helper returning optional<expected> cost ~20 instructions per
  // echo request).
  template <bool kWait, class Op>
  auto transfer(Interest direction, Op& op, std::size_t requested, Timeout timeout)
      -> std::expected<decltype(op()), std::error_code> {
    const auto source = registration();
    if (!source) [[unlikely]]
      return std::unexpected(source.error());
    auto& state = (*source)->directions[detail::IoSource::index(direction)];
    for (;;) {
      const std::uint32_t seen = state.snapshot();
      if (detail::IoSource::Direction::ready(seen)) {
        auto result = op();
        if (result >= 0) {
          if (result > 0 && static_cast<std::size_t>(result) < requested) state.clear_if_drained(seen);
          detail::consume_budget();
          return result;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          return std::unexpected(std::error_code(errno, std::generic_category()));
      }
      if constexpr (!kWait) {
        if (detail::IoSource::Direction::ready(seen))
          state.clear_if_unchanged(seen);  // else nothing to clear
        return std::unexpected(would_block());
      } else {
        if (const auto why = wait(*source, direction, seen, timeout); why != detail::WakeReason::notified)
            [[unlikely]] {
          if (why == detail::WakeReason::cancelled) throw Cancelled{};
          return std::unexpected(std::make_error_code(std::errc::timed_out));
        }
        if (!source_.load(std::memory_order_acquire)) [[unlikely]]
          return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));  // closed meanwhile
      }
    }
  }
  // Suspends until an event newer than the state `seen`, the deadline (timeout) or a cancellation.
  detail::WakeReason wait(detail::IoSource* source, Interest direction, std::uint32_t seen,
                          std::optional<Deadline> deadline);

  int fd_ = -1;
  std::atomic<detail::IoSource*> source_{nullptr};  // null until registered; written before reactor_ is read
  detail::Reactor* reactor_ = nullptr;              // set before source_ is published
  std::uint32_t generation_ = 0;                    // likewise
};

inline AsyncFd::Ready on_readable(AsyncFd& fd) noexcept {
  return AsyncFd::Ready{fd, Interest::read};
}
inline AsyncFd::Ready on_writable(AsyncFd& fd) noexcept {
  return AsyncFd::Ready{fd, Interest::write};
}

}  // namespace fiberio
