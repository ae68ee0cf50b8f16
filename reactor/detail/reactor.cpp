#include <fiberio/reactor/detail/reactor.hpp>

namespace fiberio::detail {
namespace {

thread_local Reactor* t_reactor = nullptr;

}  // namespace

__attribute__((noinline)) Reactor* Reactor::current() noexcept {
  asm volatile("" ::: "memory");  // see FiberThread::current(): a fiber may have moved to another thread
  return t_reactor;
}

Reactor::Binding::Binding(Reactor& reactor) noexcept : outer_(t_reactor) {
  t_reactor = &reactor;
  reactor.owner_ = std::this_thread::get_id();
}

Reactor::Binding::~Binding() {
  t_reactor = outer_;
}

Reactor::Reactor(std::unique_ptr<Backend> backend)
    : backend_(std::move(backend)),
      arming_(backend_->arming()),
      chunks_(new std::atomic<Chunk*>[kMaxChunks]),
      events_(256) {
  for (std::size_t i = 0; i < kMaxChunks; ++i)
    chunks_[i].store(nullptr, std::memory_order_relaxed);
  if (auto ec = backend_->add(wake_.fd(), kWakeToken)) throw std::system_error(ec, "wake channel");
  backend_->arm(wake_.fd(), kWakeToken, Interest::read);
}

Reactor::~Reactor() {
  backend_->remove(wake_.fd());
  for (std::size_t i = 0; i < kMaxChunks; ++i)
    delete chunks_[i].load(std::memory_order_relaxed);
}

inline IoSource* Reactor::slot(std::uint32_t index) noexcept {
  Chunk* chunk = chunks_[index / kChunkSize].load(std::memory_order_acquire);
  return chunk ? &chunk->sources[index % kChunkSize] : nullptr;
}

std::error_code Reactor::register_fd(int fd, SourceHandle& out) {
  std::uint32_t index;
  {
    std::lock_guard lock(slab_mutex_);
    if (!free_slots_.empty()) {
      index = free_slots_.back();
      free_slots_.pop_back();
    } else {
      if (slots_in_use_ == kChunkSize * kMaxChunks)
        return std::make_error_code(std::errc::too_many_files_open);
      index = slots_in_use_++;
      if (index % kChunkSize == 0) {
        auto* chunk = new Chunk;
        for (std::uint32_t i = 0; i < kChunkSize; ++i)
          chunk->sources[i].slot = index + i;
        chunks_[index / kChunkSize].store(chunk, std::memory_order_release);
      }
    }
  }
  IoSource* source = slot(index);
  std::uint32_t generation;
  {
    std::lock_guard lock(source->mutex);
    source->fd = fd;
    source->write_armed.store(false, std::memory_order_relaxed);
    for (auto& d : source->directions)
      d.signal();  // a fresh fd is tried before anyone waits
    generation = source->generation.load(std::memory_order_relaxed);
  }
  const std::uint64_t token = (std::uint64_t{generation} << 32) | index;
  if (auto ec = backend_->add(fd, token)) {
    std::lock_guard lock(slab_mutex_);
    {
      std::lock_guard source_lock(source->mutex);
      source->generation.fetch_add(1, std::memory_order_release);
      source->fd = -1;
    }
    free_slots_.push_back(index);
    return ec;
  }
  registered_.fetch_add(1, std::memory_order_relaxed);
  out = SourceHandle{this, source, generation, fd};
  return {};
}

void Reactor::deregister(const SourceHandle& handle) noexcept {
  IoSource* source = handle.source;
  {
    std::lock_guard lock(source->mutex);
    if (source->generation.load(std::memory_order_relaxed) != handle.generation) return;
    backend_->remove(source->fd);
    source->generation.fetch_add(1, std::memory_order_release);
    source->fd = -1;
    for (auto& d : source->directions) {
      d.signal();
      d.wake_parked();
      d.waiters.wake_all();
    }
  }
  registered_.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard lock(slab_mutex_);
  free_slots_.push_back(source->slot);
}

WakeReason Reactor::wait_queued(const SourceHandle& handle, Interest direction, std::uint32_t seen,
                                std::optional<Deadline> deadline) {
  IoSource* source = handle.source;
  auto& d = source->directions[IoSource::index(direction)];
  std::unique_lock lock(source->mutex);
  if (source->generation.load(std::memory_order_relaxed) != handle.generation) return WakeReason::notified;
  // Queue first, then announce, then look at the epoch again: the same Dekker pair with signal(), which
  // bumps the epoch, then looks at `waiting`. Wakers touch the waiter only under the lock we hold, so its
  // wait can be opened after the check.
  Waiter waiter;
  d.waiters.push_back(waiter);
  d.waiting.fetch_add(1, std::memory_order_seq_cst);
  WakeReason why = WakeReason::notified;  // an event raced in: retry at once
  if (IoSource::Direction::epoch(d.state.load(std::memory_order_seq_cst)) ==
      IoSource::Direction::epoch(seen)) {
    Fiber* self = Fiber::current();
    waiter.fiber = self;
    waiter.ticket = self->prepare_wait();
    if (must_arm(*source, direction)) arm(handle, direction, true);
    lock.unlock();
    why = self->suspend_until(waiter.ticket, deadline);
    lock.lock();
  }
  d.waiters.remove(waiter);
  d.waiting.fetch_sub(1, std::memory_order_relaxed);
  return why;
}

bool Reactor::subscribe(const SourceHandle& handle, Interest direction, std::uint32_t seen, Waiter& waiter) {
  IoSource* source = handle.source;
  auto& d = source->directions[IoSource::index(direction)];
  std::lock_guard lock(source->mutex);
  // Queued and counted first, then the epoch: the Dekker pair with signal(), as in wait_queued().
  d.waiters.push_back(waiter);
  d.waiting.fetch_add(1, std::memory_order_seq_cst);
  if (source->generation.load(std::memory_order_relaxed) != handle.generation ||
      IoSource::Direction::epoch(d.state.load(std::memory_order_seq_cst)) !=
          IoSource::Direction::epoch(seen) ||
      !d.clear_if_unchanged(seen)) {
    d.waiters.remove(waiter);
    return waiter.wake();
  }
  if (must_arm(*source, direction)) arm(handle, direction, true);
  return false;
}

void Reactor::unsubscribe(const SourceHandle& handle, Interest direction, Waiter& waiter) noexcept {
  IoSource* source = handle.source;
  auto& d = source->directions[IoSource::index(direction)];
  std::lock_guard lock(source->mutex);
  d.waiters.remove(waiter);  // a no-op if a waker (or subscribe) already unlinked it
  d.waiting.fetch_sub(1, std::memory_order_relaxed);
}

void Reactor::arm(const SourceHandle& handle, Interest direction, bool source_locked) noexcept {
  const std::uint64_t token = (std::uint64_t{handle.generation} << 32) | handle.source->slot;
  if (arming_ == Arming::first_write) {
    // Once per registration, under the source's lock: a deregistration (and a new registration of the
    // slot) cannot come between the look at the generation and the arm, so a late arm never hands the
    // backend a stale token for a reused fd. Concurrent waiters that find the flag set are published in
    // the same direction already: the event this arm brings wakes them too.
    std::unique_lock lock(handle.source->mutex, std::defer_lock);
    if (!source_locked) lock.lock();
    if (handle.source->generation.load(std::memory_order_relaxed) != handle.generation ||
        handle.source->write_armed.load(std::memory_order_relaxed))
      return;
    handle.source->write_armed.store(true, std::memory_order_relaxed);
    backend_->arm(handle.fd, token, direction);  // takes effect in a wait() already blocked
    return;
  }
  if (backend_->arm(handle.fd, token, direction) && std::this_thread::get_id() != owner_) wake_.notify();
}

void Reactor::dispatch(const ReadinessEvent& event) noexcept {
  IoSource* source = slot(static_cast<std::uint32_t>(event.token));
  if (!source) return;
  const auto generation = static_cast<std::uint32_t>(event.token >> 32);
  // The generation is looked at for each direction: waking the reader may run it at once (the runtime's
  // choice), and it may close the fd and reuse the slot before the writer's turn.
  if (event.readable) signal(*source, generation, source->directions[0], event.read_closed);
  if (event.writable) signal(*source, generation, source->directions[1], event.write_closed);
}

inline void Reactor::signal(IoSource& source, std::uint32_t generation, IoSource::Direction& d,
                            bool closed) noexcept {
  if (source.generation.load(std::memory_order_acquire) != generation) return;  // stale: deregistered
  const bool queued = d.signal(closed);
  d.wake_parked();      // a wake that lands after a deregistration is spurious, and harmless: waiters retry
  if (!queued) return;  // nobody queued behind the parked fiber: no lock
  Waiter* won;
  {
    std::lock_guard lock(source.mutex);
    if (source.generation.load(std::memory_order_relaxed) != generation) return;
    won = d.waiters.win_all();
  }
  // Outside the lock: a vote may run the fiber at once (Worker::try_run_now), and it retakes the lock.
  WaitList::vote_all(won);
}

std::size_t Reactor::poll(std::optional<std::chrono::nanoseconds> timeout) {
  const std::size_t n = backend_->wait(events_, timeout);
  std::size_t dispatched = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (events_[i].token == kWakeToken) {
      wake_.drain();
      if (arming_ == Arming::every_wait) backend_->arm(wake_.fd(), kWakeToken, Interest::read);
      continue;
    }
    dispatch(events_[i]);
    ++dispatched;
  }
  return dispatched;
}

}  // namespace fiberio::detail
