// runtime/detail/idle_task.hpp — the task behind fiberio::spawn_idle_loop (runtime/idle_loop.hpp): owns the
// connection, the handler and the idle wait's records, and runs the loop "handler, then wait at the idle
// point" in its fiber.
// Thread-safety: a task's members are touched by its fiber alone (and `wait_.record` by the waker that
// takes it), as any fiber's stack would be. Invariants: the idle wait is the only wait of this fiber
// marked idle (Fiber::mark_idle_wait); when it is, the loop's frames hold nothing (the handler has
// returned, everything lives here), so the stack may go; a run() that starts after its stack went
// closes that wait first.
#pragma once

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/clock.hpp>
#include <fiberio/reactor/async_fd.hpp>
#include <fiberio/reactor/detail/io_source.hpp>
#include <fiberio/runtime/detail/task.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>

namespace fiberio {

// What an idle loop's handler asks for when it returns.
enum class Next : std::uint8_t {
  wait,  // back to the idle point: call me again when there are bytes to read
  stop,  // the loop ends; the connection is destroyed (closed)
};

namespace detail {

template <class Conn, class Handler>
class IdleTask final : public ResultTask<void> {
 public:
  IdleTask(Scheduler& scheduler, std::string name, Conn conn, Handler handler,
           std::optional<std::chrono::nanoseconds> idle_timeout)
      : ResultTask<void>(scheduler, std::move(name)),
        state_(std::in_place, std::move(conn), std::move(handler)),
        idle_timeout_(idle_timeout) {
    idle_loop = true;
  }

 private:
  struct State {
    Conn conn;
    Handler handler;
  };

  void run() override {
    struct Reset {  // the connection is closed as soon as the loop ends, not when the last handle goes
      std::optional<State>& state;
      ~Reset() { state.reset(); }
    } reset{state_};
    // Starting again after the stack went: the idle wait it was in has ended; close it first.
    if (take_restart() && !rested(resumed_reason())) return finish();
    for (;;) {
      if (std::invoke(state_->handler, state_->conn) == Next::stop) return finish();
      std::optional<Deadline> deadline;
      if (idle_timeout_) deadline = deadline_after(*idle_timeout_);
      if (!rested(state_->conn.async_fd().wait_readable_idle(wait_, deadline))) return finish();
    }
  }

  // Closes the idle wait that ended with `why`: true if the handler is to run (bytes came, or the fd's
  // fate), false at the idle timeout; throws Cancelled.
  bool rested(WakeReason why) {
    wait_.end(why);
    if (why == WakeReason::cancelled) throw Cancelled{};
    return why == WakeReason::notified;
  }
  void finish() { this->result_.emplace(); }

  std::optional<State> state_;
  const std::optional<std::chrono::nanoseconds> idle_timeout_;
  IdleWait wait_;
};

}  // namespace detail
}  // namespace fiberio
