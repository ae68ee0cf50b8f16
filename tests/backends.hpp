// tests/backends.hpp — runs a test body once per built-in backend, so the whole reactor suite covers each.
// io_uring runs where this build has it and the kernel lets this process use it; where it does not, the
// reason is printed once and that backend is skipped. The probe runs on a thread of its own: the kernel's
// clean-up of a closed ring signals the thread that used it (task work), which makes a blocking call with
// a timeout on that thread fail with EINTR, and the tests' own plain blocking calls stay out of that.
#pragma once

#include <doctest/doctest.h>

#include <fiberio/runtime/config.hpp>

#include <string>
#include <system_error>
#include <thread>
#include <vector>

// The backends this process can use.
inline const std::vector<fiberio::BackendKind>& usable_backends() {
  static const std::vector<fiberio::BackendKind> kinds = [] {
    std::vector<fiberio::BackendKind> out{fiberio::BackendKind::epoll, fiberio::BackendKind::poll};
    std::error_code ec;
    bool usable = false;
    std::thread([&] {
      usable = fiberio::make_backend(fiberio::BackendKind::io_uring, ec) != nullptr;
    }).join();
    if (usable) {
      out.push_back(fiberio::BackendKind::io_uring);
    } else {
      MESSAGE("io_uring skipped: " << fiberio::explain_backend_error(fiberio::BackendKind::io_uring, ec));
    }
    return out;
  }();
  return kinds;
}

template <class Body>
void for_each_backend(Body body) {
  for (auto kind : usable_backends()) {
    const std::string name(fiberio::to_string(kind));
    CAPTURE(name);
    body(kind);
  }
}
