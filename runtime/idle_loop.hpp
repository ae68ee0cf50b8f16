// runtime/idle_loop.hpp — connection handlers written as sequential code that hold a stack only while
// they have work: an idle connection costs no stack and no read buffer.
//
//   fiberio::spawn_idle_loop(std::move(stream), [](fiberio::TcpStream& s) {
//     std::byte buf[4096];
//     for (;;) {
//       auto n = s.try_read(buf);                                 // never waits
//       if (!n) return n.error() == std::errc::resource_unavailable_try_again ? fiberio::Next::wait
//                                                                             : fiberio::Next::stop;
//       if (*n == 0 || !s.write_all({buf, *n})) return fiberio::Next::stop;  // may wait: keeps its stack
//     }
//   });
//
// The handler is called once at the start, then each time the connection has bytes to read (or its peer
// closed or failed), until it returns Next::stop, the idle timeout passes or the fiber is cancelled;
// then the connection object is destroyed. Between two calls the fiber waits at its idle point, where
// its stack holds nothing: the handler has returned, and the connection, the handler (its captures are
// the per-connection state) and the wait's records live in the task. Once it has waited there through a
// whole Config::idle_stack_release period, worker 0 takes its stack back, without unwinding anything;
// when bytes come, the next call runs on a pooled stack. Inside a call anything goes: a wait there (a
// write to a slow peer, a lock, a sleep) keeps the stack until the handler returns.
// The handler reads with calls that do not wait (StreamSocket::try_read, AsyncFd::try_io_some) and
// returns Next::wait when they say resource_unavailable_try_again. Returning Next::wait with bytes still
// readable is harmless: the idle point finds the fd ready and calls it again at once.
// Cancellation (JoinHandle::cancel, shutdown) reaches a loop at its idle point with or without a stack;
// it ends with Cancelled, as any fiber. Work stealing, pinning and every backend work as for spawn().
// Thread-safety: spawn_idle_loop() from any fiber; the handler runs in one fiber, one call at a time.
#pragma once

#include <fiberio/reactor/async_fd.hpp>
#include <fiberio/runtime/detail/idle_task.hpp>
#include <fiberio/runtime/runtime.hpp>

#include <chrono>
#include <concepts>
#include <optional>
#include <type_traits>
#include <utility>

namespace fiberio {

struct IdleLoopOptions {
  SpawnOptions spawn{.name = "idle loop"};
  // The loop ends (as if the handler returned Next::stop) when the connection stays idle this long.
  std::optional<std::chrono::nanoseconds> idle_timeout{};
};

// What an idle loop can serve: anything that owns an AsyncFd (TcpStream, UnixStream, or a struct of
// yours around one, holding the per-connection state).
template <class Conn>
concept IdleConnection = std::movable<Conn> && requires(Conn& conn) {
  { conn.async_fd() } -> std::same_as<AsyncFd&>;
};

// Spawns an idle loop serving `conn` with `handler` (called as handler(conn), returning Next) on the
// runtime of the calling fiber. Throws std::logic_error outside a fiber, std::bad_alloc.
template <IdleConnection Conn, class Handler>
requires std::is_invocable_r_v<Next, Handler&, Conn&> JoinHandle<void> spawn_idle_loop(
    Conn conn, Handler handler, IdleLoopOptions options = {}) {
  detail::Scheduler& scheduler = detail::current_scheduler();
  auto* task = new detail::IdleTask<Conn, Handler>(scheduler, std::move(options.spawn.name), std::move(conn),
                                                   std::move(handler), options.idle_timeout);
  return detail::start<void>(scheduler, task, options.spawn);
}

}  // namespace fiberio
