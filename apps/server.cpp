#include "server.hpp"

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/net/blocking_pool.hpp>
#include <fiberio/net/signals.hpp>
#include <fiberio/runtime/idle_loop.hpp>
#include <fiberio/runtime/runtime.hpp>
#include "log.hpp"

#include <signal.h>
#include <string.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>
#include <utility>
#include <variant>
#include <vector>

#ifndef FIBERIO_VERSION
#define FIBERIO_VERSION "unknown"
#endif

namespace fiberio {
namespace detail {

void ConnectionTracker::leave() noexcept {
  // seq_cst with drain(): either drain() sees live_ == 0, or this sees draining_ and wakes it.
  if (live_.fetch_sub(1) == 1 && draining_.load()) idle_.set();
}

bool ConnectionTracker::drain(Deadline deadline) {
  draining_.store(true);
  if (live_.load() == 0) return true;
  return idle_.wait_until(deadline) || live_.load() == 0;
}

}  // namespace detail

namespace {

// Pause after an accept() failure that is not fd exhaustion (accept() rides that out itself), so that a
// persistent error cannot make the acceptor spin.
constexpr auto kAcceptErrorPause = std::chrono::milliseconds(10);

// Where the next connection's fiber runs: the acceptor's own worker (reuseport: connections never cross
// workers), or the workers in turn (single acceptor).
class Placement {
 public:
  Placement(AcceptMode mode, std::uint32_t workers, std::uint32_t own)
      : mode_(mode), workers_(workers), own_(own) {}
  std::uint32_t next() noexcept {
    if (mode_ == AcceptMode::reuseport || workers_ <= 1) return own_;
    return next_++ % workers_;
  }

 private:
  const AcceptMode mode_;
  const std::uint32_t workers_;
  const std::uint32_t own_;
  std::uint32_t next_ = 0;  // used by one acceptor fiber only
};

struct Shared {
  const std::variant<ConnectionHandler, IdleConnectionHandler>& handler;
  detail::ConnectionTracker& tracker;
  LogLimiter accept_errors{};
  LogLimiter handler_errors{};
};

// A connection's stream and its count in the tracker, which it gives back when destroyed: when its fiber
// or idle loop ends, or at once if neither could be started.
class TrackedStream {
 public:
  TrackedStream(TcpStream stream, detail::ConnectionTracker& tracker)
      : stream_(std::move(stream)), tracker_(&tracker) {
    tracker.enter();
  }
  TrackedStream(TrackedStream&& other) noexcept
      : stream_(std::move(other.stream_)), tracker_(std::exchange(other.tracker_, nullptr)) {}
  TrackedStream& operator=(TrackedStream&& other) noexcept {
    if (this != &other) {
      leave();
      stream_ = std::move(other.stream_);
      tracker_ = std::exchange(other.tracker_, nullptr);
    }
    return *this;
  }
  ~TrackedStream() { leave(); }

  TcpStream& stream() noexcept { return stream_; }
  AsyncFd& async_fd() noexcept { return stream_.async_fd(); }  // what an idle loop serves

 private:
  void leave() noexcept {
    stream_.close();  // closed before it stops counting: drain() then means every socket is closed
    if (tracker_) std::exchange(tracker_, nullptr)->leave();
  }

  TcpStream stream_;
  detail::ConnectionTracker* tracker_;
};

// Runs `call` (a handler's); false if it threw. An exception other than Cancelled ends only this
// connection, and is logged.
template <class Call>
bool guarded(Shared& shared, Call&& call) {
  try {
    call();
    return true;
  } catch (const Cancelled&) {
    throw;                             // shutdown: unwind quietly
  } catch (const std::exception& e) {  // e.g. std::bad_alloc: this connection ends, the server goes on
    std::uint64_t held = 0;
    if (shared.handler_errors.allow(held))
      log_event(LogLevel::warn, "connection dropped: ", e.what(), " (+", held, " more)");
    return false;
  }
}

// Starts serving an accepted connection, as the handler's kind says. Throws what spawning throws (the
// connection is then closed and uncounted).
void start_connection(Shared& shared, TcpStream stream, std::uint32_t worker) {
  // Both programs send small messages (an echo, a relayed request) that must not wait for an ACK.
  (void)stream.set_nodelay(true);
  TrackedStream conn(std::move(stream), shared.tracker);
  if (const auto* ready = std::get_if<IdleConnectionHandler>(&shared.handler)) {
    spawn_idle_loop(
        std::move(conn),
        [&shared, ready = *ready](TrackedStream& c) {
          Next next = Next::stop;
          guarded(shared, [&] { next = ready(c.stream()); });
          return next;
        },
        IdleLoopOptions{.spawn = {"connection", worker}})
        .detach();
    return;
  }
  const auto& handler = std::get<ConnectionHandler>(shared.handler);
  spawn([&shared, &handler,
         conn = std::move(conn)]() mutable { guarded(shared, [&] { handler(std::move(conn.stream())); }); },
        SpawnOptions{"connection", worker})
      .detach();
}

void accept_loop(TcpListener& listener, Shared& shared, Placement placement) {
  for (;;) {
    auto conn = listener.accept();  // throws Cancelled when the server stops
    if (!conn) {
      if (conn.error() == std::errc::bad_file_descriptor) return;  // closed
      std::uint64_t held = 0;
      if (shared.accept_errors.allow(held))
        log_event(LogLevel::warn, "accept failed: ", conn.error().message(), " (+", held, " more)");
      sleep_for(kAcceptErrorPause);
      continue;
    }
    try {
      start_connection(shared, std::move(conn->stream), placement.next());
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception& e) {  // no memory for a fiber: drop this connection, keep accepting
      std::uint64_t held = 0;
      if (shared.accept_errors.allow(held))
        log_event(LogLevel::warn, "cannot start a connection: ", e.what(), " (+", held, " more)");
      sleep_for(kAcceptErrorPause);
    }
  }
}

// Joins a cancelled fiber, swallowing the Cancelled it ends with.
void join_cancelled(JoinHandle<void>& handle) {
  while (handle.joinable()) {
    try {
      handle.join();
    } catch (const Cancelled&) {
    } catch (const std::exception& e) {
      log_event(LogLevel::error, "acceptor ended with an error: ", e.what());
    }
  }
}

// The server's main fiber: accept until a signal, then shut down. Returns the exit code.
// SIGUSR1's line: the open connections, then each worker's counters.
void log_stats(const Runtime& runtime, const Shared& shared, const ServerOptions& options) {
  std::ostringstream line;
  line << "stats: " << shared.tracker.live() << " connection(s) open";
  const auto workers = runtime.stats();
  for (std::size_t i = 0; i < workers.size(); ++i) {
    const WorkerStats& w = workers[i];
    line << "; worker " << i << ": " << w.fibers_run << " fiber runs, " << w.io_events << " I/O events, "
         << w.parks << " parks, " << w.steals << " steals (" << w.fibers_stolen << " fibers), "
         << w.fds_registered << " fds, " << w.timers_pending << " timers, " << w.stacks_released
         << " idle stacks released";
  }
  if (options.describe) line << "; " << options.describe();
  log_event(LogLevel::info, line.str());
}

// SIGQUIT's line, then one per live fiber (Runtime::fibers()): what each does, for how long, its stack.
void log_fibers(const Runtime& runtime) {
  const std::vector<FiberInfo> fibers = runtime.fibers();
  log_event(LogLevel::info, "SIGQUIT: ", fibers.size(), " fiber(s); the server goes on");
  for (const FiberInfo& fiber : fibers)
    log_event(LogLevel::info, to_string(fiber));
}

int serve(Runtime& runtime, const AppConfig& config, const ServerOptions& options, Listeners& listeners,
          Shared& shared) {
  auto signals = config.sigquit_dump ? SignalListener::open({SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGQUIT})
                                     : SignalListener::open({SIGINT, SIGTERM, SIGHUP, SIGUSR1});
  if (!signals) {
    log_event(LogLevel::error, "cannot wait for signals: ", signals.error().message());
    return 1;
  }
  const std::uint32_t workers = config.runtime.threads;
  std::vector<JoinHandle<void>> acceptors;
  for (std::uint32_t i = 0; i < listeners.sockets.size(); ++i) {
    const std::uint32_t own = i % workers;
    TcpListener& listener = listeners.sockets[i];
    acceptors.push_back(spawn(
        [&listener, &shared, placement = Placement(listeners.mode, workers, own)] {
          accept_loop(listener, shared, placement);
        },
        SpawnOptions{"acceptor", own}));
  }
  std::optional<JoinHandle<void>> background;
  if (options.background) background = spawn(options.background, SpawnOptions{"background"});
  log_event(LogLevel::info, "version ", FIBERIO_VERSION, ", ", describe_runtime(config.runtime),
            ", accept mode ",
            listeners.mode == AcceptMode::single ? "single" : "reuseport");  // before the ready line
  std::cout << "listening on " << listeners.local.to_string() << std::endl;  // the ready line, flushed

  auto signo = signals->wait();
  while (signo && (*signo == SIGUSR1 || *signo == SIGHUP || *signo == SIGQUIT)) {
    if (*signo == SIGUSR1) {
      log_stats(runtime, shared, options);
    } else if (*signo == SIGQUIT) {
      log_fibers(runtime);
    } else if (!options.reload) {
      log_event(LogLevel::info, "SIGHUP: nothing to reload");
    } else if (!spawn_blocking(options.reload)) {
      log_event(LogLevel::warn, "SIGHUP: the configuration has errors (above); keeping the running one");
    }
    signo = signals->wait();
  }
  const char* why = signo ? ::strsignal(*signo) : "signal wait failed";
  log_event(LogLevel::info, why, ": stopping; ", shared.tracker.live(), " connection(s) open");
  for (auto& a : acceptors)
    a.cancel();
  for (auto& a : acceptors)
    join_cancelled(a);
  if (background) {
    background->cancel();
    join_cancelled(*background);
  }
  listeners.close();
  if (!shared.tracker.drain(Clock::now() + options.grace)) {
    log_event(LogLevel::info, "closing ", shared.tracker.live(), " connection(s) still open after ",
              options.grace.count(), " ms");
  }
  return 0;  // the Runtime's shutdown cancels the connections left; their fibers close their sockets
}

}  // namespace

std::expected<AcceptMode, int> accept_mode_from_env() {
  const char* text = std::getenv("FIBERIO_ACCEPT");
  if (!text) return AcceptMode::single;
  auto mode = parse_accept_mode(text);
  if (!mode) {
    log_line("environment: FIBERIO_ACCEPT=", text, ": ", mode.error());
    return std::unexpected(2);
  }
  return *mode;
}

int run_server(const AppConfig& config, const ServerOptions& options,
               std::variant<ConnectionHandler, IdleConnectionHandler> handler) {
  ::signal(SIGPIPE, SIG_IGN);
  if (!config.sigquit_dump) {
    // SIGQUIT's default action wanted: restored (a shell starts background jobs with SIGQUIT ignored)
    // and unblocked here, before the Runtime's threads inherit this mask.
    ::signal(SIGQUIT, SIG_DFL);
    sigset_t quit;
    ::sigemptyset(&quit);
    ::sigaddset(&quit, SIGQUIT);
    ::pthread_sigmask(SIG_UNBLOCK, &quit, nullptr);
  }
  auto addrs = resolve(config.listen);  // numeric: at once; a name: getaddrinfo on the blocking pool
  if (!addrs) {
    log_event(LogLevel::error, "cannot resolve listen address ", config.listen.to_string(), ": ",
              addrs.error().message());
    return 2;
  }
  auto listeners = bind_listeners(addrs->front(), options.accept_mode, config.runtime.threads);
  if (!listeners) {
    log_event(LogLevel::error, listeners.error());
    return 1;
  }
  // Declared before the Runtime: connection fibers use them until the Runtime's shutdown has unwound them.
  detail::ConnectionTracker tracker;
  Shared shared{handler, tracker};
  try {
    Config tuned = config.runtime;
    tuned.on_stall = [](const StallReport& stall) { log_event(LogLevel::warn, to_string(stall)); };
    Runtime runtime(std::move(tuned));
    return runtime.block_on([&] { return serve(runtime, config, options, *listeners, shared); });
  } catch (const std::exception& e) {
    log_event(LogLevel::error, "cannot run: ", e.what());
    return 1;
  }
}

}  // namespace fiberio
