// runtime/detail/idle_task.hpp — the task behind fiberio::spawn_idle_loop (runtime/idle_loop.hpp): owns the
// connection, the handler and the idle wait's records, and runs the loop "handler, then wait at the idle
// point" in its fiber.
// The loop itself is IdleLoopTask::serve() (runtime/detail/idle_task.cpp), one copy for every kind of
// connection: there the reactor's wait is inlined into the loop, so a request costs no call frame for it;
// the handler is reached through one virtual call (step()).
// Thread-safety: a task's members are touched by its fiber alone (and `wait_.record` by the waker that
// takes it), as any fiber's stack would be. Invariants: the idle wait is the only wait of this fiber
// marked idle (Fiber::mark_idle_wait); when it is, the loop's frames hold nothing (the handler has
// returned, everything lives here), so the stack may go; a run() that starts after its stack went
// closes that wait first.
#pragma once

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

// The loop, whatever the connection and the handler are.
class IdleLoopTask : public ResultTask<void> {
 public:
  IdleLoopTask(Scheduler& scheduler, std::string name, std::optional<std::chrono::nanoseconds> idle_timeout)
      : ResultTask<void>(scheduler, std::move(name)), idle_timeout_(idle_timeout) {
    idle_loop = true;
  }

 protected:
  // Calls step() and waits at the idle point for `fd` to be readable, until step() returns Next::stop or
  // the idle timeout passes (then finishes the task), or a cancellation (throws Cancelled). Starting
  // again after the stack went, it first closes the idle wait it was in.
  void serve(AsyncFd& fd);

 private:
  // One call of the handler.
  virtual Next step() = 0;
  // Closes the idle wait that ended with `why`: true if the handler is to run (bytes came, or the fd's
  // fate), false at the idle timeout; throws Cancelled.
  bool rested(WakeReason why);
  void finish();

  const std::optional<std::chrono::nanoseconds> idle_timeout_;
  IdleWait wait_;
};

template <class Conn, class Handler>
class IdleTask final : public IdleLoopTask {
 public:
  IdleTask(Scheduler& scheduler, std::string name, Conn conn, Handler handler,
           std::optional<std::chrono::nanoseconds> idle_timeout)
      : IdleLoopTask(scheduler, std::move(name), idle_timeout),
        state_(std::in_place, std::move(conn), std::move(handler)) {}

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
    serve(state_->conn.async_fd());
  }
  Next step() override { return std::invoke(state_->handler, state_->conn); }

  std::optional<State> state_;
};

}  // namespace detail
}  // namespace fiberio
