// executor/detail/context.hpp — the only two places that touch Boost.Context: creating a fiber's context and
// switching to one. They live in their own translation unit, built without ThreadSanitizer
// instrumentation, so that TSan's shadow call stacks stay balanced: an instrumented frame entered on one
// fiber's stack and left on another's (the switch itself, a fiber's first entry and last exit) would
// make them drift until TSan aborts.
// Thread-safety: a context is resumed by one thread at a time (the scheduler's invariant).
#pragma once

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>

namespace fiberio::detail {

class Fiber;

// A context on `stack` whose entry calls fiber.enter(), then switches back to the worker that resumed it
// last, never to come back.
boost::context::fiber make_context(Fiber& fiber, const boost::context::stack_context& stack,
                                   std::size_t stack_size);

// Switches to `target`; returns the context that later switched back here.
boost::context::fiber switch_context(boost::context::fiber&& target) noexcept;

}  // namespace fiberio::detail
