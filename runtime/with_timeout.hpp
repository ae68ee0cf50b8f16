// runtime/with_timeout.hpp — runs a callable with a time limit.
//
//   auto r = fiberio::with_timeout(100ms, [&] { return stream.read_exact(buf); });
//   if (!r && r.error() == std::errc::timed_out) ...
//
// The callable runs in a child fiber on the same runtime; at the deadline the child is cancelled (its
// blocking call throws Cancelled and it unwinds) and with_timeout returns std::errc::timed_out once the
// child has finished unwinding. A child that finishes in time returns its value; its exceptions other
// than Cancelled propagate. If the calling fiber is cancelled, the child is cancelled too.
// Call it from a fiber. Thread-safety: as spawn().
#pragma once

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/clock.hpp>
#include <fiberio/runtime/runtime.hpp>

#include <chrono>
#include <expected>
#include <system_error>

namespace fiberio {

template <class Rep, class Period, class F>
std::expected<detail::SpawnResult<F>, std::error_code> with_timeout(std::chrono::duration<Rep, Period> limit,
                                                                    F&& fn) {
  using R = detail::SpawnResult<F>;
  const Deadline deadline = deadline_after(limit);
  auto child = fiberio::spawn(std::forward<F>(fn), SpawnOptions{"with_timeout", std::nullopt});
  bool finished;
  try {
    finished = child.wait_until(deadline);
  } catch (const Cancelled&) {
    child.cancel();
    throw;
  }
  if (!finished) child.cancel();
  try {
    if constexpr (std::is_void_v<R>) {
      child.join();
      return {};
    } else {
      return child.join();
    }
  } catch (const Cancelled&) {
    if (finished) throw;  // the child was cancelled by someone else
    return std::unexpected(std::make_error_code(std::errc::timed_out));
  }
}

}  // namespace fiberio
