// executor/detail/context.hpp — the only two places that touch Boost.Context: creating a fiber's context and
// switching to one. They use its bare fcontext layer (jump_fcontext, make_fcontext, ontop_fcontext), the
// machinery under boost::context::fiber without that wrapper's moves and checks on every switch. They
// live in their own translation unit, built without ThreadSanitizer instrumentation, so that TSan's
// shadow call stacks stay balanced: an instrumented frame entered on one fiber's stack and left on
// another's (the switch itself, a fiber's first entry and last exit) would make them drift until TSan
// aborts.
// Thread-safety: a context is resumed by one thread at a time (the scheduler's invariant).
// Invariant: a context is resumed at most once (each switch returns the next one to resume).
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/stack_context.hpp>

namespace fiberio::detail {

class Fiber;

// A suspended execution: where to resume it. Null when there is none.
using Context = boost::context::detail::fcontext_t;

// A context on `stack` whose first resume runs the Fiber handed to that switch (Fiber::enter()), and
// which then switches back to the worker that resumed it last, never to come back; the stack goes back
// to that thread's StackPool from the worker's side of the switch, once nothing runs on it any more.
Context make_context(const boost::context::stack_context& stack);

// The switch as a call into context.cpp, which is uninstrumented in a ThreadSanitizer build (see above).
// Always defined, so that code built with TSan links against a library built without it.
Context switch_context_uninstrumented(Context target, Fiber* fiber) noexcept;

// Switches to `target` (the first switch into a context made by make_context() hands it `fiber`);
// returns the context that later switched back here, or null if that was the fiber's last exit. Inline,
// one call less on every switch, except in code built with TSan.
inline Context switch_context(Context target, Fiber* fiber) noexcept {
#if defined(__SANITIZE_THREAD__)
  return switch_context_uninstrumented(target, fiber);
#else
  return boost::context::detail::jump_fcontext(target, fiber).fctx;
#endif
}

}  // namespace fiberio::detail
