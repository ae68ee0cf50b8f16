// runtime/config.hpp — what a Runtime can be tuned with, its defaults, and the environment loader.
// Plain data; no thread-safety concerns. Invariant after validate(): threads >= 1, stack_size >= 16 KiB.
#pragma once

#include <fiberio/reactor/backend.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace fiberio {

// A worker whose fiber ran too long without reaching the scheduler (Config::stall_threshold).
struct StallReport {
  std::uint32_t worker = 0;
  std::string fiber;                    // its name
  std::chrono::milliseconds ran_for{};  // at least this long so far (it may run on)
};
// "worker 1 stalled: fiber 'hog' has run at least 120 ms without reaching the scheduler (...)".
std::string to_string(const StallReport& stall);

struct Config {
  // Worker threads, each with its own reactor and timers. Default: the hardware's concurrency.
  std::uint32_t threads = default_threads();
  // Idle workers steal half of a busy worker's queue; off: fibers stay on the worker that spawned or
  // woke them.
  bool work_stealing = true;
  BackendKind backend = BackendKind::automatic;
  // Plugs in a user-written backend: when set, each worker gets the backend this returns and `backend`
  // is ignored.
  std::function<std::unique_ptr<Backend>()> backend_factory{};
  // Usable bytes per fiber stack. 64 KiB holds typical network code (deep recursion or big arrays on the
  // stack need more) while 10,000 idle connections stay under ~100 MiB of touched memory; sanitizer
  // builds use 4x because instrumented frames are larger.
  std::size_t stack_size = default_stack_size();
  // Fiber runs between two looks at the inbox, timers and the backend while ready fibers keep a worker
  // busy (61, as Go: prime, so it does not beat with periodic producers). Yielded fibers do not wait for
  // it: they run again after the worker's next look, taken as soon as nothing else is queued.
  std::uint32_t event_interval = 61;
  // Ready I/O operations a fiber may do in one turn before it yields (tokio's cooperative budget).
  std::uint32_t io_budget = 128;
  // An idle loop (runtime/idle_loop.hpp) that has waited at its idle point through a whole period of
  // this length gives its stack back (worker 0 looks once per period, so a stack goes after one to two
  // periods of idleness); 0: never. Long enough that a connection between two requests keeps its stack
  // (releasing on every quiet moment costs a stack fault-in per request), short enough that idle ones
  // stop holding memory soon.
  std::chrono::milliseconds idle_stack_release{1000};
  // A fiber that runs this long without reaching the scheduler (it computes, or blocks its thread in a
  // syscall or a lock) stalls every fiber queued behind it on its worker. A watchdog thread samples the
  // workers twice per threshold (the switch path pays nothing) and reports each stall once, through
  // on_stall (default: one line on stderr; it runs on the watchdog's thread and must not throw). 0: no
  // watchdog.
  std::chrono::milliseconds stall_threshold{100};
  std::function<void(const StallReport& stall)> on_stall{};
  // Called on each worker thread the runtime starts, with the worker's index: on_thread_start before it
  // runs any fiber, on_thread_stop after its last (tokio's on_thread_start/stop: name the thread, pin it,
  // set up a thread-local logger). Not called for a thread that drives a runtime itself (fiberio::block_on
  // runs worker 0 on the caller). Must not throw: an exception there ends the process (std::terminate).
  std::function<void(std::uint32_t worker)> on_thread_start{};
  std::function<void(std::uint32_t worker)> on_thread_stop{};

  static std::uint32_t default_threads();
  static std::size_t default_stack_size();

  // Checks ranges; the error names the field and the value.
  std::expected<void, std::string> validate() const;

  // Applies FIBERIO_THREADS, FIBERIO_WORK_STEALING, FIBERIO_BACKEND, FIBERIO_STACK_SIZE on top of `base`;
  // the error names the variable and its value.
  static std::expected<Config, std::string> from_env(Config base);
  static std::expected<Config, std::string> from_env();
};

// Parsers shared by the environment loader and the programs' flags and config files.
std::expected<BackendKind, std::string> parse_backend(std::string_view text);
std::expected<bool, std::string> parse_bool(std::string_view text);  // true/false/1/0/on/off/yes/no
std::expected<std::uint64_t, std::string> parse_unsigned(std::string_view text);

}  // namespace fiberio
