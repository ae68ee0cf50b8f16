// reactor/detail/reactor.hpp — one worker's reactor: a Backend, a WakeChannel, and the slab of IoSources
// registered with it. It turns backend events into fiber wake-ups.
//
// Thread-safety: poll() only on the owning worker's thread; register_fd/deregister/wait_ready from any
// thread (a fiber that migrated keeps using the reactor its fd was registered with); notify() from any.
// Invariants: slab memory is never freed before the reactor, so a stale event or handle finds a slot whose
// generation no longer matches and is ignored; tokens are (generation << 32 | slot).
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/fiber_thread.hpp>
#include <fiberio/executor/detail/timer_queue.hpp>
#include <fiberio/reactor/backend.hpp>
#include <fiberio/reactor/detail/io_source.hpp>
#include <fiberio/reactor/detail/wake_channel.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace fiberio::detail {

class Reactor {
 public:
  explicit Reactor(std::unique_ptr<Backend> backend);  // throws std::system_error
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // The reactor of the worker running on this thread (where a first wait registers an fd), or nullptr.
  // The reactor knows no workers: the runtime binds its worker's reactor for the loop's life, as
  // async-io's thread-local reactor.
  static Reactor* current() noexcept;
  class Binding {
   public:
    explicit Binding(Reactor& reactor) noexcept;
    ~Binding();
    Binding(const Binding&) = delete;
    Binding& operator=(const Binding&) = delete;

   private:
    Reactor* outer_;
  };

  // Starts watching a non-blocking fd.
  std::error_code register_fd(int fd, SourceHandle& out);
  // Stops watching; waiters are woken (their retry sees the fd's fate). Does not close the fd.
  void deregister(const SourceHandle& handle) noexcept;

  // Suspends the calling fiber until an event in `direction` of `source` (registered here as `fd`, with
  // `generation`) newer than the state `seen` (a Direction::snapshot()), the deadline, or cancellation;
  // clears the ready bit first if no event came since `seen`. Returns at once if one already came.
  WakeReason wait_ready(IoSource* source, std::uint32_t generation, int fd, Interest direction,
                        std::uint32_t seen, std::optional<Deadline> deadline);

  // wait_ready() for readability, for an idle loop (runtime/idle_loop.hpp): the parked record and the
  // deadline's timer live in `wait`, off the fiber's stack, and the wait is marked idle once published
  // (Fiber::mark_idle_wait), so that the fiber's stack may be released while it lasts. The caller ends
  // the wait with wait.end(why), also when the fiber starts again after its stack was released.
  WakeReason wait_idle(IoSource* source, std::uint32_t generation, int fd, std::uint32_t seen, IdleWait& wait,
                       std::optional<Deadline> deadline);

  // select()'s wait on an fd (AsyncFd::Ready): queues `waiter` in `direction` behind any parked fiber,
  // clearing the ready bit if no event came since `seen`; if one came, or the registration is gone, wakes
  // the waiter instead and returns true. unsubscribe() unlinks it again (always called after subscribe).
  bool subscribe(const SourceHandle& handle, Interest direction, std::uint32_t seen, Waiter& waiter);
  void unsubscribe(const SourceHandle& handle, Interest direction, Waiter& waiter) noexcept;

  // Owner thread: waits for events up to `timeout` and wakes the fibers they concern. Returns the number of
  // fd events dispatched (wake-channel events not counted).
  std::size_t poll(std::optional<std::chrono::nanoseconds> timeout);

  // Any thread: interrupts a poll() in progress or the next one.
  void notify() noexcept { wake_.notify(); }
  const WakeChannel& wake_channel() const noexcept { return wake_; }

  std::size_t registered() const noexcept { return registered_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint64_t kWakeToken = ~std::uint64_t{0};
  static constexpr std::size_t kChunkSize = 256;
  static constexpr std::size_t kMaxChunks = 4096;
  struct Chunk {
    std::array<IoSource, kChunkSize> sources;
  };

  IoSource* slot(std::uint32_t index) noexcept;
  // The lock-free park behind wait_ready() and wait_idle(): clears the ready bit against `seen`, opens a
  // wait of record.fiber (the caller), publishes `record` and calls sleep(direction, ticket) to suspend;
  // the rare paths (an event raced in, another fiber parked there) return without calling it.
  template <class Sleep>
  WakeReason park(IoSource* source, std::uint32_t generation, int fd, Interest direction, std::uint32_t seen,
                  ParkedFiber& record, std::optional<Deadline> deadline, Sleep&& sleep);
  // wait_ready() for a fiber that finds another already parked in that direction: queues under the lock.
  WakeReason wait_queued(const SourceHandle& handle, Interest direction, std::uint32_t seen,
                         std::optional<Deadline> deadline);
  void dispatch(const ReadinessEvent& event) noexcept;
  // One direction of an event: a new epoch, then the waiters woken (unless the registration is stale).
  void signal(IoSource& source, std::uint32_t generation, IoSource::Direction& d, bool closed) noexcept;
  // Whether a wait in `direction` on `source` must call arm() (after the waiter is published): before
  // every wait for a one-shot backend, before the first wait to write for one that watches writability
  // only once asked (Arming).
  bool must_arm(const IoSource& source, Interest direction) const noexcept {
    return arming_ == Arming::every_wait || (arming_ == Arming::first_write && direction == Interest::write &&
                                             !source.write_armed.load(std::memory_order_relaxed));
  }
  // Asks the backend for an event in `direction` (after the waiter is published). `source_locked`: the
  // caller holds the source's mutex.
  void arm(const SourceHandle& handle, Interest direction, bool source_locked = false) noexcept;

  std::unique_ptr<Backend> backend_;
  const Arming arming_;  // backend_->arming(), asked once
  WakeChannel wake_;
  std::thread::id owner_;

  std::mutex slab_mutex_;                          // guards growth and the free list
  std::unique_ptr<std::atomic<Chunk*>[]> chunks_;  // kMaxChunks entries
  std::uint32_t slots_in_use_ = 0;                 // slots ever handed out
  std::vector<std::uint32_t> free_slots_;
  std::atomic<std::size_t> registered_{0};
  std::vector<ReadinessEvent> events_;  // owner thread only
};

// Inline: AsyncFd::wait() is this function, so a fiber goes from its failed syscall to the switch in one
// call frame. The rare paths (a second waiter, a one-shot backend's arm) are calls.
template <class Sleep>
inline WakeReason Reactor::park(IoSource* source, std::uint32_t generation, int fd, Interest direction,
                                std::uint32_t seen, ParkedFiber& record, std::optional<Deadline> deadline,
                                Sleep&& sleep) {
  auto& d = source->directions[IoSource::index(direction)];
  // A `seen` that was not ready needs no clear: the look at the epoch after publishing (below) catches
  // any event since, and then the retry is the same. (The usual case: a short transfer cleared it.)
  if (source->generation.load(std::memory_order_acquire) != generation ||
      (IoSource::Direction::ready(seen) && !d.clear_if_unchanged(seen)))
    return WakeReason::notified;  // closed meanwhile, or an event came since `seen`: retry
  Fiber* self = record.fiber;
  record.ticket = self->prepare_wait();
  if (!d.try_park(record)) [[unlikely]] {
    // Another fiber is parked here: queue behind it. Only a cancellation can have won this unpublished
    // wait meanwhile, and then suspend() lets that wake complete and reports it.
    if (!self->withdraw_wait(record.ticket)) return self->suspend(record.ticket);
    return wait_queued(SourceHandle{this, source, generation, fd}, direction, seen, deadline);
  }
  // Parked first, then the epoch again: a Dekker pair with signal() + wake_parked() (io_source.hpp).
  if (IoSource::Direction::epoch(d.state.load(std::memory_order_seq_cst)) !=
      IoSource::Direction::epoch(seen)) {
    // An event raced in: take the record back and retry, unless a waker already has it.
    if (d.unpark(record) && self->withdraw_wait(record.ticket)) return WakeReason::notified;
    return self->suspend(record.ticket);  // the wait is won (or being won): let that wake complete
  }
  // Arming after parking: an event that comes before the arm still finds us parked. (A one-shot backend
  // arms on every wait, so that branch is not unlikely there; epoll arms once per fd, if ever.)
  if (must_arm(*source, direction)) [[unlikely]]
    arm(SourceHandle{this, source, generation, fd}, direction);
  return sleep(d, record.ticket);
}

inline WakeReason Reactor::wait_ready(IoSource* source, std::uint32_t generation, int fd, Interest direction,
                                      std::uint32_t seen, std::optional<Deadline> deadline) {
  ParkedFiber record{Fiber::current(), 0};  // AsyncFd waits only from fibers
  record.fiber->note_wait(direction == Interest::write ? "write" : "read", fd);
  return park(source, generation, fd, direction, seen, record, deadline,
              [&](IoSource::Direction& d, std::uint64_t ticket) {
                const WakeReason why = record.fiber->suspend_until(ticket, deadline);
                // Notified: a waker took the record and let go of the slot before its vote let us run. A
                // timeout or cancellation may have left the record there.
                if (why != WakeReason::notified) d.unpark(record);
                return why;
              });
}

inline WakeReason Reactor::wait_idle(IoSource* source, std::uint32_t generation, int fd, std::uint32_t seen,
                                     IdleWait& wait, std::optional<Deadline> deadline) {
  wait.record.fiber = Fiber::current();
  wait.record.fiber->note_wait("read, idle loop", fd);
  return park(source, generation, fd, Interest::read, seen, wait.record, deadline,
              [&](IoSource::Direction& d, std::uint64_t ticket) {
                Fiber* self = wait.record.fiber;
                wait.parked_in = &d;
                if (deadline) {
                  TimerQueue& timers = FiberThread::current()->timers();
                  try {
                    wait.timer = timers.insert(*deadline, *self, ticket);
                  } catch (...) {  // no memory for the timer: leave as the epoch race does
                    wait.parked_in = nullptr;
                    if (d.unpark(wait.record) && self->withdraw_wait(ticket)) throw;
                    return self->suspend(ticket);
                  }
                  wait.timers = &timers;
                }
                self->mark_idle_wait(ticket);
                return self->suspend(ticket);
              });
}

}  // namespace fiberio::detail
