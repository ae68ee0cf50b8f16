// runtime/fiber_info.hpp — what Runtime::fibers() returns: every live fiber, what it is doing and since
// when, for a person looking into a program that hangs or crawls (fiberio-echo and fiberio-proxy log it
// on SIGQUIT). Go prints every goroutine on SIGQUIT; tokio users ask for a task dump (tokio#5457).
//
//   for (const fiberio::FiberInfo& f : runtime.fibers()) std::cerr << fiberio::to_string(f) << '\n';
//   // fiber 'connection' on worker 1: waiting 1520 ms on fd 12 read, stack 8 KiB of 64 KiB
//
// Plain data, a snapshot taken while the workers run: a fiber may have moved on by the time it is read.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fiberio {

struct FiberInfo {
  enum class State : std::uint8_t { running, ready, waiting };

  std::string name;
  State state = State::ready;  // ready: queued, or spawned and not started yet
  // What a waiting fiber waits on: "fd 12 read", "fd 12 read, idle loop", "sleep", "mutex", "channel
  // receive", "join", "blocking pool", "select", ...
  std::string waiting_on;
  // How long it has been waiting, from its worker's coarse clock (read about every 1,000 fiber runs and
  // at every park): a few milliseconds either way.
  std::chrono::milliseconds waiting_for{0};
  std::uint32_t worker = 0;  // the worker it runs on, or last ran on
  // The stack's high-water mark: bytes from its top down to the lowest page in memory (page
  // granularity; a pooled stack also counts what its earlier fibers touched). 0: no stack (not started
  // yet, or an idle loop's released one).
  std::size_t stack_high_water = 0;
  std::size_t stack_size = 0;  // usable bytes of that stack
};

// One line, as in the example above.
std::string to_string(const FiberInfo& fiber);

}  // namespace fiberio
