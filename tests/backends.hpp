// tests/backends.hpp — runs a test body once per built-in backend, so the whole reactor suite covers each.
#pragma once

#include <doctest/doctest.h>

#include <fiberio/runtime/config.hpp>

#include <string>

template <class Body>
void for_each_backend(Body body) {
  for (auto kind : {fiberio::BackendKind::epoll, fiberio::BackendKind::poll}) {
    const std::string name(fiberio::to_string(kind));
    CAPTURE(name);
    body(kind);
  }
}
