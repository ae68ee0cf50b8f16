// executor/select.hpp — waits on several waits at once and completes exactly one of them: Go's select,
// tokio's select!.
//
//   auto got = fiberio::select(fiberio::on_recv(requests), fiberio::on_recv(control),
//                              fiberio::on_timeout(5s));
//   switch (got.index()) {
//     case 0: handle(std::get<0>(got)); break;  // recv()'s result: the item, or nullopt once closed
//     case 1: ...
//     case 2: idle(); break;                     // 5 s without either
//   }
//
// A branch is a wait that can be tried without waiting: a channel receive or send (channel.hpp), an
// event (event.hpp), a deadline or a duration (below), a Timer's firing (timer.hpp), an Interval's next
// tick (interval.hpp), an fd readable or writable (reactor/async_fd.hpp), a fiber's end
// (runtime/join_handle.hpp). select() returns a std::variant whose index names the branch
// that completed and whose alternative is that branch's result. Promises:
//  - exactly one branch completes; every other one leaves nothing behind: no message taken, no value
//    sent (a send branch keeps its value: take it back with take_value()), no waiter queued, no timer;
//  - a branch that is ready when select() is called completes without waiting; when several are ready
//    the choice is fair (the first branch looked at turns with each call, as Go picks at random), and
//    after a wait the branch that woke the fiber is looked at first;
//  - cancellation of the calling fiber while it waits throws fiberio::Cancelled and completes nothing.
// Without a deadline or duration branch, select() waits until a branch completes or the fiber is
// cancelled. Call it from a fiber (std::logic_error otherwise): a plain thread has no wait ticket that
// several waits can share.
//
// A branch type B provides: `result_type`; `std::optional<result_type> try_complete()`, which completes
// it now or returns nullopt without effect; `bool subscribe(detail::Waiter&)`, which queues the waiter
// where the wait's wakers look, or wakes it at once (and returns true) if the wait became ready since the
// last try;
// `void unsubscribe(detail::Waiter&)`, which unlinks it again (any thread's wakers are done with it when
// this returns); `std::optional<Deadline> deadline() const`, set only for a branch that completes at a
// time (a deadline, a Timer, an Interval), asked again each time select() is about to wait.
// Thread-safety: as the waits it is given (each is used under its own lock).
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/wait_list.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace fiberio {

// A deadline as a branch: completes once the clock has reached it.
class DeadlineBranch {
 public:
  using result_type = std::monostate;
  explicit DeadlineBranch(Deadline at) noexcept : at_(at) {}
  std::optional<result_type> try_complete() const {
    if (Clock::now() < at_) return std::nullopt;
    return result_type{};
  }
  bool subscribe(detail::Waiter&) const noexcept { return false; }  // the select's own timer wakes it
  void unsubscribe(detail::Waiter&) const noexcept {}
  std::optional<Deadline> deadline() const noexcept { return at_; }

 private:
  Deadline at_;
};

inline DeadlineBranch on_deadline(Deadline at) noexcept {
  return DeadlineBranch{at};
}
// A duration counts from the call of on_timeout(), not from select()'s.
template <class Rep, class Period>
DeadlineBranch on_timeout(std::chrono::duration<Rep, Period> limit) {
  return DeadlineBranch{deadline_after(limit)};
}

namespace detail {

template <class B>
concept SelectBranch = requires(B& branch, const B& view, Waiter& waiter) {
  typename B::result_type;
  { branch.try_complete() } -> std::same_as<std::optional<typename B::result_type>>;
  { branch.subscribe(waiter) } -> std::same_as<bool>;
  branch.unsubscribe(waiter);
  { view.deadline() } -> std::same_as<std::optional<Deadline>>;
};

// Calls f.template operator()<I>() for the runtime index i (< N); returns its bool.
template <std::size_t N, class F>
bool with_index(std::size_t i, F&& f) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return ((i == I && f.template operator()<I>()) || ...);
  }
  (std::make_index_sequence<N>{});
}

// Where the fair rotation starts on this thread: a counter, since fairness needs no randomness.
inline std::size_t next_select_start() noexcept {
  thread_local std::uint32_t counter = 0;
  return counter++;
}

}  // namespace detail

template <class... Branches>
requires(detail::SelectBranch<std::remove_cvref_t<Branches>>&&...)
    std::variant<typename std::remove_cvref_t<Branches>::result_type...> select(Branches&&... branches) {
  static_assert(sizeof...(Branches) > 0, "fiberio::select needs at least one branch");
  constexpr std::size_t n = sizeof...(Branches);
  using Result = std::variant<typename std::remove_cvref_t<Branches>::result_type...>;
  detail::Fiber* self = detail::Fiber::current();
  if (!self) throw std::logic_error("fiberio::select: call it from a fiber");

  auto all = std::forward_as_tuple(branches...);
  std::optional<Result> out;
  auto try_one = [&](std::size_t i) {
    return detail::with_index<n>(i, [&]<std::size_t I>() {
      auto done = std::get<I>(all).try_complete();
      if (done) out.emplace(std::in_place_index<I>, std::move(*done));
      return done.has_value();
    });
  };

  std::size_t first = detail::next_select_start() % n;  // the first branch looked at
  for (;;) {
    for (std::size_t k = 0; k < n; ++k)
      if (try_one((first + k) % n)) return std::move(*out);

    // The earliest deadline, asked afresh each round: a timer reset meanwhile wakes us to look again.
    std::optional<Deadline> deadline;
    std::apply(
        [&](const auto&... b) {
          for (auto d : {b.deadline()...})
            if (d && (!deadline || *d < *deadline)) deadline = d;
        },
        all);
    // None is ready: one wait ticket, published to every branch. A branch that became ready since its try
    // wins it at once, and the branches after it need not be subscribed.
    std::array<detail::Waiter, n> waiters;
    self->note_wait("select");
    const std::uint64_t ticket = self->prepare_wait();
    std::size_t subscribed = 0;
    auto unsubscribe_all = [&] {
      // Every waiter unlinked before anything else: a losing branch keeps no waiter, and the waiters (on
      // this stack) are out of every waker's reach when the loop comes round.
      for (std::size_t i = 0; i < subscribed; ++i) {
        detail::with_index<n>(i, [&]<std::size_t I>() {
          std::get<I>(all).unsubscribe(waiters[I]);
          return true;
        });
      }
    };
    detail::WakeReason why;
    try {
      bool ready = false;
      while (subscribed < n && !ready) {
        detail::Waiter& w = waiters[subscribed];
        w.fiber = self;
        w.ticket = ticket;
        ready =
            detail::with_index<n>(subscribed, [&]<std::size_t I>() { return std::get<I>(all).subscribe(w); });
        ++subscribed;
      }
      why = self->suspend_until(ticket, deadline);
    } catch (...) {  // a subscription or the timer could not allocate: leave as if never waited
      unsubscribe_all();
      if (!self->withdraw_wait(ticket)) self->suspend(ticket);  // a waker won meanwhile: let it complete
      throw;
    }
    unsubscribe_all();
    detail::throw_if_cancelled(why);
    // The branch that woke us is looked at first (its wake-up is meant for a waiter that completes it);
    // after a timeout, the deadline branch is found in the usual turn.
    for (std::size_t i = 0; i < subscribed; ++i)
      if (waiters[i].woke) first = i;
  }
}

}  // namespace fiberio
