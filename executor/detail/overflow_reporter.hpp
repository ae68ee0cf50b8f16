// executor/detail/overflow_reporter.hpp — names the fiber whose stack overflowed into its guard page.
// A SIGSEGV handler (on an alternate signal stack per worker thread) checks whether the faulting address
// lies in the guard page of the fiber running on that thread; if so it writes
//   fiberio: fiber 'NAME' overflowed its N-byte stack; raise Config::stack_size (FIBERIO_STACK_SIZE)
// to stderr, then restores the previous handler so the fault kills the process as it would have.
// Not installed in sanitizer builds (they report overflows themselves).
// Thread-safety: install_overflow_reporter() is idempotent and thread-safe (it reinstalls itself if
// another handler replaced it, keeping that one as the previous); prepare_thread_for_overflow_reports()
// is called by each worker thread for itself.
#pragma once

namespace fiberio::detail {

void install_overflow_reporter();
// Gives the calling thread an alternate signal stack (a handler cannot run on an overflowed stack).
void prepare_thread_for_overflow_reports();

}  // namespace fiberio::detail
