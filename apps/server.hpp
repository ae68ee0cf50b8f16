// apps/server.hpp — what fiberio-echo and fiberio-proxy share once their configuration is loaded: bind,
// print the ready line, accept connections into fibers, and shut down gracefully on SIGINT/SIGTERM.
//
//   int main(int argc, char** argv) {
//     fiberio::set_log_program("fiberio-echo");
//     if (fiberio::block_signals({SIGINT, SIGTERM})) return 1;       // before any thread exists
//     auto config = fiberio::load_app_config(fiberio::AppKind::echo, argc, argv);
//     if (!config) return config.error();
//     return fiberio::run_server(*config, {}, [](fiberio::TcpStream s) { echo_connection(std::move(s)); });
//   }
//
// run_server():
//  1. resolves the listen address (exit 2 if it cannot be resolved), binds it (apps/listeners.hpp; exit 1
//     with the address if it is in use or not bindable), starts the Runtime;
//  2. prints `listening on HOST:PORT` (the real port) on stdout, flushed: the only line on stdout;
//  3. serves each connection with the handler, in a fiber of its own or in an idle loop (by the handler's
//     kind), on the workers in turn (or on the worker whose listener accepted it, in reuseport mode);
//     accept() itself rides out fd exhaustion (EMFILE);
//  4. on SIGINT/SIGTERM: stops accepting and closes the listeners, waits up to `grace` for the open
//     connections to end by themselves, then cancels the rest (their fibers unwind and close their
//     sockets) and returns 0 — well within 2 s;
//  5. on SIGUSR1: logs one line with the open connections, each worker's counters (Runtime::stats()) and
//     what `describe` adds; on SIGHUP: reload(), which applies what can change while serving (the
//     proxy's upstreams, balance and timeouts, for new connections; established ones keep theirs) and
//     keeps the running configuration if the new one is invalid. Neither stops the server. Listen and
//     the [runtime] settings take a restart; there is no log file to reopen (the log is stderr). On
//     SIGQUIT (unless --on-sigquit abort): logs every fiber, one line each (Runtime::fibers()), and goes on.
// The caller must have blocked SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGQUIT (block_signals) before any thread
// was created: the signals are read from a signalfd (net/signals.hpp). SIGPIPE is ignored (writes use
// MSG_NOSIGNAL anyway).
// Thread-safety: call once, from main(). The handler runs on any worker, many at once: it must be
// thread-safe; it owns the stream it is given.
#pragma once

#include <fiberio/executor/event.hpp>
#include <fiberio/net/tcp_stream.hpp>
#include <fiberio/runtime/idle_loop.hpp>
#include "app_config.hpp"
#include "listeners.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <variant>

namespace fiberio {

struct ServerOptions {
  AcceptMode accept_mode = AcceptMode::single;
  std::chrono::milliseconds grace{1000};  // how long open connections may finish after a signal
  // On SIGHUP, on the blocking pool: loads the configuration again, applies what can change while serving
  // and logs what it did (or what is wrong with it); returns whether it was valid. Empty: only logged.
  std::function<bool()> reload{};
  // On SIGUSR1: what to log after the runtime's counters (the proxy's upstreams). May be empty.
  std::function<std::string()> describe{};
  // Runs in a fiber of its own while the server serves (the proxy's health checks), cancelled when it
  // stops. May be empty.
  std::function<void()> background{};
};

// A connection's handler: runs in a fiber of its own for the connection's whole life.
using ConnectionHandler = std::function<void(TcpStream)>;
// Or an idle loop's handler (runtime/idle_loop.hpp): called whenever the connection has bytes to read,
// it holds a stack only while it runs. A plain function, called on every request: no std::function's
// indirection there (its per-connection state lives on the stream and in the kernel).
using IdleConnectionHandler = Next (*)(TcpStream&);

// Returns the process's exit code (0 after a signal, 1 if it cannot listen or start, 2 for an address
// that cannot be resolved).
int run_server(const AppConfig& config, const ServerOptions& options,
               std::variant<ConnectionHandler, IdleConnectionHandler> handler);

// The accept mode for run_server: FIBERIO_ACCEPT=single|reuseport (a tuning knob for benchmarks, not part
// of the command-line contract), else single. A bad value is reported and gives exit code 2.
std::expected<AcceptMode, int> accept_mode_from_env();

namespace detail {

// Counts the connections alive, so that shutdown can wait for them. Thread-safety: any fiber or thread.
// Invariant: enter() is never called after drain() started (the acceptors are stopped first).
class ConnectionTracker {
 public:
  void enter() noexcept { live_.fetch_add(1); }
  void leave() noexcept;
  std::size_t live() const noexcept { return live_.load(); }
  // Waits until no connection is alive or `deadline` passes; true if none is left. Call from a fiber.
  bool drain(Deadline deadline);

 private:
  std::atomic<std::size_t> live_{0};
  std::atomic<bool> draining_{false};  // set by drain(); from then on the last leave() sets idle_
  Event idle_;
};

}  // namespace detail

}  // namespace fiberio
