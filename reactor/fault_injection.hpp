// reactor/fault_injection.hpp — a backend that wraps another and makes it misbehave the ways the contract
// in backend.hpp allows, seeded and reproducible: spurious readiness (an event for a registered fd that is
// not ready), delayed readiness (a real event held back for a few waits), duplicated events, and waits
// that return early with nothing. Code above a backend must take every one of these in its stride: an
// operation is retried, never trusted to succeed because an event came, and no event may be needed twice.
//
//   fiberio::Config config{.backend_factory = [] {
//     std::error_code ec;
//     return fiberio::make_fault_injecting_backend(fiberio::make_backend(fiberio::BackendKind::epoll, ec),
//                                                  fiberio::FaultPlan{.seed = 42});
//   }};
//
// Faults the kernel adds below the backend (EINTR, short transfers, resets) are not made here.
// Thread-safety: as any backend (add/arm/remove from any thread, wait from the owner); the fault stream is
// drawn in wait() only, so a seed gives the same faults for the same sequence of waits.
#pragma once

#include <fiberio/reactor/backend.hpp>

#include <cstdint>
#include <memory>

namespace fiberio {

struct FaultPlan {
  std::uint64_t seed = 1;
  // Probabilities, each drawn independently:
  double spurious = 0.05;    // per wait: an event for a random registered fd, readable and writable
  double delay = 0.05;       // per real event: held back for one to three waits (never lost)
  double duplicate = 0.05;   // per real event: reported twice
  double empty_wake = 0.02;  // per wait: return at once with nothing, whatever the timeout
};

// `inner` wrapped; nullptr if `inner` is.
std::unique_ptr<Backend> make_fault_injecting_backend(std::unique_ptr<Backend> inner, FaultPlan plan);

}  // namespace fiberio
