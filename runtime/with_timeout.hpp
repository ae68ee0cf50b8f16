// runtime/with_timeout.hpp — runs a callable with a time limit.
//
//   auto r = fiberio::with_timeout(100ms, [&] { return stream.read_exact(buf); });  // or a deadline
//   if (!r && r.error() == std::errc::timed_out) ...    // r: read_exact's own IoResult<void>
//
// The callable runs in a child fiber on the same runtime. It always gets to run, up to its first wait,
// before a deadline can stop it, so a callable that returns at once returns its value even with a
// deadline that has already passed (a ready result wins, as tokio's timeout polls its future first). At
// the deadline the child is cancelled (its blocking call throws Cancelled and it unwinds) and
// with_timeout returns std::errc::timed_out once the child has finished unwinding. A child that finishes
// in time returns its value (a callable that itself returns std::expected<T, std::error_code>, as every
// net call does, gives that same type: its own errors and the time limit's errc::timed_out in one); its
// exceptions other than Cancelled propagate. If the calling fiber is cancelled, the child is cancelled too
// and with_timeout rethrows Cancelled only once the child has finished: whatever the child captured by
// reference from the caller's frame stays valid for its whole life, whichever way it ends. Call it from a
// fiber. Thread-safety: as spawn().
#pragma once

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/event.hpp>
#include <fiberio/runtime/runtime.hpp>

#include <chrono>
#include <expected>
#include <functional>
#include <system_error>
#include <type_traits>

namespace fiberio {

namespace detail {

// Waits until `child` has finished, even if the calling fiber is cancelled meanwhile (each further
// cancellation is passed on to the child); true if the caller was cancelled while it waited.
template <class R>
bool wait_out(JoinHandle<R>& child) {
  bool cancelled = false;
  for (;;) {
    try {
      while (!child.wait_until(Deadline::max())) {
      }
      return cancelled;
    } catch (const Cancelled&) {
      cancelled = true;
      child.cancel();
    }
  }
}

// with_timeout's result: R itself if it is already an expected of an error_code, else expected<R, ...>.
template <class R>
struct TimeoutResult {
  using type = std::expected<R, std::error_code>;
};
template <class T>
struct TimeoutResult<std::expected<T, std::error_code>> {
  using type = std::expected<T, std::error_code>;
};

}  // namespace detail

// A deadline instead of a duration works alike.
template <class F>
typename detail::TimeoutResult<detail::SpawnResult<F>>::type with_timeout(Deadline deadline, F&& fn) {
  using R = detail::SpawnResult<F>;
  Event started;  // lives until the child has finished: with_timeout never returns before that
  auto child = fiberio::spawn(
      [&started, f = std::decay_t<F>(std::forward<F>(fn))]() mutable -> R {
        started.set();
        return std::invoke(f);
      },
      SpawnOptions{"with_timeout", std::nullopt});
  bool timed_out = false;
  bool caller_cancelled = false;
  try {
    if (!child.wait_until(deadline)) {
      // The child runs at least up to its first wait: a ready result wins. (A child cancelled before it
      // ever ran, as one spawned during shutdown is, never starts: look every millisecond for its end.)
      while (!started.wait_until(Clock::now() + std::chrono::milliseconds(1)) &&
             !child.wait_until(Clock::now())) {
      }
      timed_out = !child.wait_until(Clock::now());
      if (timed_out) child.cancel();
    }
  } catch (const Cancelled&) {
    caller_cancelled = true;
    child.cancel();
  }
  caller_cancelled = detail::wait_out(child) || caller_cancelled;
  if (caller_cancelled) throw Cancelled{};  // the child has finished: nothing it captured dangles
  try {
    if constexpr (std::is_void_v<R>) {
      child.join();
      return {};
    } else {
      return child.join();
    }
  } catch (const Cancelled&) {
    if (!timed_out) throw;  // the child was cancelled by someone else
    return std::unexpected(std::make_error_code(std::errc::timed_out));
  }
}

template <class Rep, class Period, class F>
typename detail::TimeoutResult<detail::SpawnResult<F>>::type with_timeout(
    std::chrono::duration<Rep, Period> limit, F&& fn) {
  return with_timeout(deadline_after(limit), std::forward<F>(fn));
}

}  // namespace fiberio
