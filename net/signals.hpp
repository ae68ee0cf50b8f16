// net/signals.hpp — a fiber waits for a signal (SIGINT, SIGTERM, SIGHUP...) like for any other I/O: the
// basis of graceful shutdown.
//
//   int main() {
//     fiberio::block_signals({SIGINT, SIGTERM});      // FIRST, before any thread (and Runtime) exists
//     fiberio::Runtime rt;
//     rt.block_on([] {
//       auto server = fiberio::spawn(serve);
//       auto signals = fiberio::SignalListener::open({SIGINT, SIGTERM});
//       int signo = *signals->wait();                  // only this fiber waits
//       server.cancel();                                // stop accepting, unwind, exit
//     });
//   }
//
// How: a signalfd(2). It only works if the signals are blocked in EVERY thread of the process; otherwise
// the kernel delivers them the classic way (for SIGINT/SIGTERM: the process dies). A thread inherits the
// mask of the thread that creates it, and Runtime creates its workers itself, so call block_signals() on
// the main thread before creating any Runtime or other thread (the blocking pool's threads block every
// signal on their own). open() checks that its signals are blocked in the calling thread and fails with
// NetErrc::signals_not_blocked otherwise.
// Which signals a listener sees: every process-directed one (kill(pid, ...), Ctrl-C from a terminal, a
// service manager's stop, fiberio::raise_signal()), wherever the listening fiber runs. A thread-directed
// one (raise(), pthread_kill(), tgkill()) stays pending on the thread it was sent to, and a signalfd reads
// only the process's pending signals and its reading thread's own: it reaches the listener only if sent to
// the worker thread that runs the listening fiber at that moment. From fiber code, signal the process
// with raise_signal(), not raise().
// Delivery: each signal occurrence is read by one listener; with several listeners open on one signal,
// one of them gets it. Standard signals do not queue: two SIGHUPs sent before a read arrive as one.
// Errors, deadlines, cancellation: net/error.hpp. Owns the signalfd; invariant: an open listener's signals
// were blocked in the thread that opened it.
// Thread-safety: block_signals() from any thread (it affects that thread only); a listener is used by one
// fiber at a time.
#pragma once

#include <fiberio/net/error.hpp>
#include <fiberio/reactor/async_fd.hpp>

#include <initializer_list>
#include <optional>
#include <span>

namespace fiberio {

// Blocks `signals` in the calling thread (pthread_sigmask); threads created later inherit the mask.
std::error_code block_signals(std::initializer_list<int> signals);

// Sends `signo` to this process (kill(getpid(), signo)), so that a listener on any worker sees it; what
// raise() should be in a program whose fibers move between threads.
std::error_code raise_signal(int signo);

class SignalListener {
 public:
  SignalListener() = default;

  static IoResult<SignalListener> open(std::initializer_list<int> signals);

  // The number of the next signal (e.g. SIGTERM).
  IoResult<int> wait(Timeout timeout = {});

  bool is_open() const noexcept { return fd_.is_open(); }
  void close() noexcept { fd_.close(); }

 private:
  AsyncFd fd_;
};

}  // namespace fiberio
