// executor/cancelled.hpp — the exception every blocking operation of a cancelled fiber throws.
// Cancellation is delivered once per request: the fiber's next (or current) suspension throws Cancelled,
// later ones behave normally, so destructors that wait while the stack unwinds still work.
#pragma once

#include <exception>

namespace fiberio {

struct Cancelled : std::exception {
  const char* what() const noexcept override { return "fiberio: fiber cancelled"; }
};

}  // namespace fiberio
