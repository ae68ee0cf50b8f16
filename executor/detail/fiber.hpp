// executor/detail/fiber.hpp — a stackful fiber: its Boost.Context context, its wait protocol and its
// lifetime. The executor's lowest piece; it knows nothing of workers or schedulers.
//
// Lifetime: intrusively reference counted. Whoever runs the fiber holds one reference until it finishes,
// a JoinHandle one, a pending timer one; the fiber is deleted by the last release(), on any thread.
//
// Wait protocol (the defence against lost and double wake-ups; docs/design.md walks through it):
//  1. The fiber opens a wait: prepare_wait() makes `ticket_` odd and sets two resume votes.
//  2. It publishes (this, ticket) to whoever may wake it (an I/O source, a timer, a wait list), under
//     that party's lock, then calls suspend(ticket).
//  3. Any number of parties race wake(ticket, reason); one compare-exchange on `ticket_` picks exactly one
//     winner, stale tickets (from an older wait) always lose. The winner records the reason and votes.
//  4. The thread that switched the fiber out votes once the switch is complete (FiberThread::resume
//     returns, and its caller calls switched_out()). Whoever casts the second vote hands the fiber to
//     schedule(), so a fiber is never queued while still running on its stack.
//  5. An idle wait (mark_idle_wait) may have its stack released while it lasts: release_idle_stack()
//     takes a third vote for the length of the release, so the winner's vote cannot schedule the fiber
//     before its stack is gone; the fiber then starts afresh (take_restart).
// Each wait also names itself for the fiber dump (note_wait; Runtime::fibers()), with relaxed stores.
//
// The seam upwards: schedule() below is declared here and defined by whoever runs fibers (the runtime,
// runtime/detail/scheduler.cpp). It is the only call from this layer to the one above, a direct call.
//
// Thread-safety: wake(), request_cancel(), add_ref()/release() from any thread; everything else only from
// the fiber itself or from the thread currently running it.
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/context.hpp>
#include <fiberio/executor/detail/sanitizer.hpp>

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/stack_context.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace fiberio::detail {

class Fiber;
class FiberThread;
struct Waiter;

enum class WakeReason : std::uint8_t { notified, timeout, cancelled };

// What a running fiber needs of its thread, reached with one thread-local read: which fiber runs, what
// is left of its turn's I/O budget, and what a switch back to the thread needs (its own stack for ASan,
// its TSan context). The FiberThread bound to the thread is a Turn.
struct Turn {
  // Between the switch in and the switch out. Atomic (relaxed, plain moves) only so that the fiber dump
  // may read it from another thread.
  std::atomic<Fiber*> fiber{nullptr};
  std::uint32_t budget_left = 0;  // ready I/O operations left in the running fiber's turn (if one runs)
  StackBounds thread_stack;       // set when the FiberThread is bound
  void* tsan_context = nullptr;   // likewise
  // The thread's clock, coarse: Clock::now() as its loop last read it (a look at the backend, a park),
  // in nanoseconds. Stamped into each fiber it switches in, for the fiber dump's "for how long".
  std::int64_t coarse_now = 0;
};

// The Turn of the FiberThread bound to the calling thread, or nullptr. The slot is read afresh by every
// call, with an instruction the compiler cannot cache or move: a fiber may resume on another thread, and
// an address of a thread_local computed before a switch names the old thread's slot. (An out-of-line
// call did the same for ~30 instructions per echo request more; docs/benchmarks.md.)
inline Turn* current_turn() noexcept {
#if defined(__x86_64__)
  Turn* turn;
  // Initial-exec TLS (the slot lives in the static TLS block, also in the shared library).
  asm volatile(
      "movq fiberio_detail_bound_turn@gottpoff(%%rip), %0\n\t"
      "movq %%fs:(%0), %0"
      : "=r"(turn)
      :
      : "memory");
  return turn;
#else
  Turn* current_turn_slow() noexcept;
  return current_turn_slow();
#endif
}

// consume_budget() when the count reaches 0: the running fiber yields (throws Cancelled if one is
// pending); with no fiber running (the worker's own code) the count just starts over.
void budget_spent();

// Counts one ready I/O operation against the running fiber's turn; yields when the turn's budget is spent
// (a cooperative budget, so an always-ready socket cannot starve the fibers queued behind it).
inline void consume_budget() {
  Turn* turn = current_turn();
  if (turn && --turn->budget_left == 0) [[unlikely]]
    budget_spent();
}

// Defined by the layer that runs fibers: makes `fiber` (whose wait was won and which has switched out)
// runnable again. Called from any thread.
void schedule(Fiber& fiber) noexcept;

class Fiber {
 public:
  // How a fiber left the thread that ran it (FiberThread::resume returns it).
  enum class Exit : std::uint8_t { waiting, yielding, finished };

  explicit Fiber(std::string name);
  virtual ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // --- the wait protocol (see the header comment) ---
  std::uint64_t prepare_wait() noexcept {
    const std::uint64_t ticket = ticket_.load(std::memory_order_relaxed) + 1;
    votes_.store(2, std::memory_order_relaxed);
    ticket_.store(ticket, std::memory_order_seq_cst);
    return ticket;
  }
  // Called by any thread: true if this call won the wait identified by `ticket`.
  bool wake(std::uint64_t ticket, WakeReason why) noexcept {
    if (!win(ticket, why)) return false;
    vote_woken();
    return true;
  }
  // wake() in two steps, for a waker that must stop reading the waiter's record (on the waiter's stack)
  // before the fiber can run again: win() settles the race and records the reason; vote_woken() then casts
  // the winner's vote, which may schedule the fiber. Nothing else may come between the two but the waker's
  // own bookkeeping.
  bool win(std::uint64_t ticket, WakeReason why) noexcept {
    std::uint64_t expected = ticket;
    if (!ticket_.compare_exchange_strong(expected, ticket + 1, std::memory_order_acq_rel,
                                         std::memory_order_relaxed)) {
      return false;
    }
    reason_.store(why, std::memory_order_relaxed);
    return true;
  }
  void vote_woken() noexcept {
    if (votes_.fetch_sub(1, std::memory_order_acq_rel) == 1) schedule(*this);
  }
  // The fiber itself, before suspending: closes a wait it opened but no longer needs (nobody can wake it
  // any more). True if it was still open; false if a waker (a cancellation) won it first, in which case the
  // fiber must suspend(ticket) to let that wake complete.
  bool withdraw_wait(std::uint64_t ticket) noexcept {
    std::uint64_t expected = ticket;
    return ticket_.compare_exchange_strong(expected, ticket + 1, std::memory_order_acq_rel,
                                           std::memory_order_relaxed);
  }
  // Called by the fiber itself: switches out until the wait is won; returns why. Does not throw.
  // Inline, as the switch it makes: the wait path is the runtime's hottest code.
  WakeReason suspend(std::uint64_t ticket) noexcept {
    if (cancel_pending_.load(std::memory_order_seq_cst)) wake(ticket, WakeReason::cancelled);
    switch_out(Exit::waiting);
    return resumed_reason();
  }
  // Why the wait the fiber has just come back from ended. A cancellation is consumed here: the caller
  // throws Cancelled.
  WakeReason resumed_reason() noexcept {
    const WakeReason why = reason_.load(std::memory_order_relaxed);
    if (why == WakeReason::cancelled) [[unlikely]] {
      cancel_pending_.store(false, std::memory_order_relaxed);
      in_exception_.store(true, std::memory_order_release);  // about to throw: its next switch-out says more
    }
    return why;
  }
  // suspend(), with a timer that wins the wait with WakeReason::timeout at `deadline` (none: no timer).
  // The timer is cancelled before it returns, whatever ended the wait, so no timer outlives its wait.
  WakeReason suspend_until(std::uint64_t ticket, std::optional<Deadline> deadline) {
    return deadline ? suspend_with_timer(ticket, *deadline) : suspend(ticket);
  }
  // Switches out with nothing published: the thread running it queues it again behind the others.
  void yield_now() noexcept;
  // The thread that ran the fiber, once it has switched out of a wait: casts the second vote; true if the
  // fiber must now be handed to schedule() (its wait was already won).
  bool switched_out() noexcept { return votes_.fetch_sub(1, std::memory_order_acq_rel) == 1; }

  // --- idle waits: a wait during which the fiber's stack may be taken away (runtime/idle_loop.hpp) ---
  // The fiber, once its wait `ticket` is published only through records that live off its stack, and
  // when its stack holds nothing that must outlive the wait: marks the wait as one during which
  // release_idle_stack() may take the stack.
  void mark_idle_wait(std::uint64_t ticket) noexcept {
    idle_ticket_.store(ticket, std::memory_order_relaxed);
  }
  // The idle wait open now, or 0. A hint for whoever releases stacks: release_idle_stack() checks again.
  std::uint64_t open_idle_wait() const noexcept {
    const std::uint64_t ticket = ticket_.load(std::memory_order_acquire);
    return (ticket & 1) && idle_ticket_.load(std::memory_order_relaxed) == ticket ? ticket : 0;
  }
  // Any thread but one running the fiber: if the fiber is switched out in the idle wait `ticket` and
  // nobody has won that wait yet, gives its stack to the calling thread's StackPool without unwinding the
  // frames on it, and returns true. Its next resume then starts it afresh (on a new stack), and run()
  // sees take_restart() true: the idle wait has ended, resumed_reason() says how. A waker that wins the
  // wait meanwhile waits for the release (an extra resume vote held across it), never for a lock.
  bool release_idle_stack(std::uint64_t ticket) noexcept;
  // run(), first thing: true (once) if the fiber starts again after release_idle_stack().
  bool take_restart() noexcept { return std::exchange(restarted_, false); }

  // --- cancellation ---
  // Any thread: the fiber's current or next suspension throws fiberio::Cancelled (once).
  void request_cancel() noexcept;
  // The fiber: true (and the request consumed) if a cancellation is pending.
  bool take_cancel() noexcept { return cancel_pending_.exchange(false, std::memory_order_acq_rel); }
  // Any thread: whether a cancellation is pending (a stop token for loops that never block).
  bool cancel_requested() const noexcept { return cancel_pending_.load(std::memory_order_acquire); }
  // Any thread: whether the fiber, at its last switch-out, was inside a catch handler or unwinding (or
  // has just been handed a cancellation it is about to throw). Shutdown does not cancel such a fiber
  // again: a wait in a destructor that runs because of the first Cancelled must work.
  bool in_exception() const noexcept { return in_exception_.load(std::memory_order_acquire); }

  // --- completion ---
  bool finished() const noexcept { return finished_.load(std::memory_order_acquire); }
  // Blocks the calling thread (not a fiber) until the fiber has finished.
  void wait_finished_blocking() const noexcept;
  // The calling fiber suspends until this fiber has finished. Throws Cancelled.
  void wait_finished();
  // Likewise, but gives up at `deadline`; true if finished. Throws Cancelled.
  bool wait_finished_until(Deadline deadline);
  // A waiter for this fiber's end, as select() queues one: false if queued (complete() wakes it), true
  // if the fiber had finished and the waiter was woken at once. Throws std::bad_alloc (the first joiner
  // makes the list).
  bool subscribe_finished(Waiter& waiter);
  // Unlinks a waiter subscribe_finished() queued; complete() is done with it when this returns.
  void unsubscribe_finished(Waiter& waiter) noexcept;
  // The flag a caller-driven worker loop watches.
  const std::atomic<bool>& finished_flag() const noexcept { return finished_; }
  // The exception the fiber ended with, if any; taking it marks it observed (else the destructor reports it).
  std::exception_ptr take_error() noexcept {
    error_observed_ = true;
    return error_;
  }
  // For a fiber that will never run (submitted after its runtime stopped): finishes it as cancelled.
  void abandon() noexcept;
  // The thread that ran the fiber to its end: wakes its joiners. Called once, after it switched out.
  void complete() noexcept;

  const std::string& name() const noexcept { return name_; }
  StackBounds stack_bounds() const noexcept { return stack_; }
  // The stack size the fiber was given (Config::stack_size): what a person asked for, while
  // stack_bounds() also counts the rounding up to whole pages.
  std::size_t configured_stack_size() const noexcept { return configured_stack_size_; }

  // The fiber running on this thread, or nullptr on a plain thread or a worker's own stack.
  static Fiber* current() noexcept {
    const Turn* turn = current_turn();
    return turn ? turn->fiber.load(std::memory_order_relaxed) : nullptr;
  }

  // --- what the fiber waits on, for the fiber dump (Runtime::fibers()) ---
  // The fiber, before it opens a wait: names what it waits on (a static string) and the fd, if any. Two
  // plain stores; the wait's start is its turn's (FiberThread::resume stamps each switch in).
  void note_wait(const char* what, int fd = -1) noexcept {
    wait_what_.store(what, std::memory_order_relaxed);
    wait_fd_.store(fd, std::memory_order_relaxed);
  }
  // Any thread (approximate while it runs): the fiber's wait, if one is open.
  struct WaitNote {
    bool waiting = false;
    const char* what = nullptr;  // as note_wait() named it; nullptr if it never did
    int fd = -1;
    // When its last turn began, by its thread's coarse clock (Turn::coarse_now): a waiting fiber has
    // waited since shortly after, a running one has run since.
    std::int64_t since_ns = 0;
  };
  WaitNote wait_note() const noexcept {
    return WaitNote{(ticket_.load(std::memory_order_acquire) & 1) != 0,
                    wait_what_.load(std::memory_order_relaxed), wait_fd_.load(std::memory_order_relaxed),
                    resumed_at_.load(std::memory_order_relaxed)};
  }
  // Any thread: the fiber's stack as it was last given or taken ({nullptr, 0}: none yet, or released).
  StackBounds published_stack() const noexcept {
    return StackBounds{stack_low_.load(std::memory_order_acquire),
                       stack_bytes_.load(std::memory_order_relaxed)};
  }

 protected:
  // Runs the fiber's body; exceptions escape to the caller, which stores them.
  virtual void run() = 0;

 private:
  friend class FiberThread;

  WakeReason suspend_with_timer(std::uint64_t ticket, Deadline deadline);
  void create_context(std::size_t stack_size);
  // The first and last code of the fiber's own context (called from executor/detail/context.cpp).
  friend boost::context::detail::fcontext_t make_context(const boost::context::stack_context&);
  void enter(boost::context::detail::fcontext_t thread) noexcept;
  // Returns the TSan context to switch to; the caller switches, then takes the thread's context.
  void* prepare_leave() noexcept;
  boost::context::detail::fcontext_t take_return_context() noexcept;
  // Back to the thread that resumed it (its Turn is the running thread's), until resumed again.
  __attribute__((always_inline)) void switch_out(Exit how) noexcept {
    exit_ = how;
    const Turn* thread = current_turn();
    start_switch(&asan_fake_stack_, thread->thread_stack);
    tsan_switch_to(thread->tsan_context);
    return_context_ = switch_context(return_context_, nullptr);
    finish_switch(asan_fake_stack_);
  }
  void execute() noexcept;
  // release_idle_stack(), once the fiber is held: the stack goes, the next resume starts afresh.
  void drop_stack() noexcept;

  std::string name_;
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<std::uint64_t> ticket_{0};  // odd while a wait is open
  std::atomic<std::uint32_t> votes_{0};
  std::atomic<std::uint64_t> idle_ticket_{0};    // the last wait mark_idle_wait() marked
  std::atomic<const char*> wait_what_{nullptr};  // note_wait()
  std::atomic<int> wait_fd_{-1};
  std::atomic<std::int64_t> resumed_at_{0};  // Turn::coarse_now at the last switch in (FiberThread::resume)
  std::atomic<std::size_t> stack_bytes_{0};  // published_stack(): stack_ for other threads
  std::atomic<const void*> stack_low_{nullptr};
  bool restarted_ = false;  // the stack was released in an idle wait (set while the fiber is held)
  std::atomic<WakeReason> reason_{WakeReason::notified};
  std::atomic<bool> cancel_pending_{false};
  mutable std::atomic<bool> finished_{false};
  std::exception_ptr error_;
  bool error_observed_ = false;
  Exit exit_ = Exit::waiting;

  // Where this fiber resumes (executor/detail/context.hpp); null before the first run and after the last.
  boost::context::detail::fcontext_t context_ = nullptr;
  // Where the fiber returns to: the thread that resumed it last.
  boost::context::detail::fcontext_t return_context_ = nullptr;
  StackBounds stack_;
  std::size_t configured_stack_size_ = 0;
  void* asan_fake_stack_ = nullptr;
  void* tsan_fiber_ = nullptr;
  // The C++ runtime's per-thread exception state (the Itanium ABI's __cxa_eh_globals: the stack of
  // exceptions being handled and the uncaught count). It belongs to the fiber, not the thread: a fiber
  // that waits inside a catch handler, then resumes on another worker or after another fiber used its
  // own handlers on this thread, must find its own. FiberThread::resume swaps it in and out.
  struct ExceptionState {
    void* caught_exceptions = nullptr;
    unsigned int uncaught_exceptions = 0;
  } exception_state_;
  bool exception_saved_ = false;           // exception_state_ is not empty (the thread that runs the fiber)
  std::atomic<bool> in_exception_{false};  // see in_exception(); written by the fiber and its thread
  // Debug builds: set while a thread runs this fiber, to catch a double resume.
  std::atomic<bool> on_cpu_{false};

  struct JoinWaiters;
  // Fibers waiting in wait_finished(): made by the first joiner (a pointer, since WaitList needs Fiber
  // complete; lazily, since a detached fiber needs none).
  std::atomic<JoinWaiters*> joiners_{nullptr};
  JoinWaiters& joiners();  // throws std::bad_alloc
};

}  // namespace fiberio::detail
