// executor/channel_handles.hpp — a Channel<T> owned by its two ends, as Rust's mpsc and crossbeam users
// expect: copyable Sender<T> and Receiver<T> handles over one shared channel, each side learning when the
// other is gone.
//
//   auto [tx, rx] = fiberio::channel<int>(16);    // capacity as Channel's; unbounded by default
//   fiberio::spawn([tx] { for (int i = 0; tx.send(i); ++i) {} }).detach();  // until every rx is gone
//   for (int n = 0; n < 3; ++n) use(*rx.recv());  // nullopt once every tx is gone and the queue drained
//   fiberio::select(fiberio::on_receivers_gone(tx), fiberio::on_recv(jobs));  // a job, or nobody reads
//   { auto last = std::move(rx); }  // queued items destroyed now; every send is refused
//
// Owns: the handles share the channel and its queued items; the last handle of either side frees them.
// Every copy counts (MPMC); a moved-from handle counts nothing and may only be destroyed or assigned to.
// When the last Sender goes the channel closes: receivers drain what is queued, then get nullopt (as after
// Channel::close()). When the last Receiver goes the queued items are destroyed at once and every send is
// refused as on a closed channel (send() false; send_until()/send_for() hand the value back with closed =
// true), senders waiting on a full or rendezvous channel included. receivers_gone() tells it without waiting;
// wait_receivers_gone() and its _until/_for forms wait for it (tokio's Sender::closed(); the names are
// oneshot's, executor/oneshot.hpp); on_receivers_gone(tx) makes that wait a select() branch (result
// std::monostate; it consumes nothing). Every other call is Channel's, with its semantics and its select()
// branches: on_send(tx, value), on_recv(rx).
// Thread-safety: any fiber or thread, as Channel. Handles are copied and destroyed on any thread; their calls
// are const, so one handle object may serve several fibers at once, but assigning or destroying it must not
// race with another use of that same object (as for std::shared_ptr).
// Invariants: a side's count only grows by copying a live handle, so it drops to zero exactly once; that
// last exit closes the channel under its lock, so a send racing the last receiver's exit is either queued
// before it (and destroyed with the queue) or refused with its value, never kept after it. When
// wait_receivers_gone() returns, every send is refused; when a send is refused as closed, receivers_gone() is
// true. Where fiberio differs from Rust and tokio: refusals are Channel's (false, or Refused with the value),
// not error types; capacity 0 is a rendezvous channel; and the plain Channel<T> stays, for shared ownership
// (one object that fibers reach by reference, closed explicitly by whoever decides to).
#pragma once

#include <fiberio/executor/channel.hpp>
#include <fiberio/executor/event.hpp>

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <expected>
#include <memory>
#include <optional>
#include <utility>

namespace fiberio {

namespace detail {

template <class T>
struct ChannelCore {
  explicit ChannelCore(std::size_t capacity) : channel(capacity) {}
  Channel<T> channel;
  std::atomic<std::size_t> senders{1};
  std::atomic<std::size_t> receivers{1};
  Event receivers_left;  // set once the last receiver left, after the channel was closed and emptied
};

}  // namespace detail

template <class T>
class Sender;
template <class T>
class Receiver;

template <class T>
std::pair<Sender<T>, Receiver<T>> channel(std::size_t capacity = Channel<T>::unbounded);

template <class T>
class Sender {
 public:
  using Refused = typename Channel<T>::Refused;

  Sender(const Sender& other) noexcept : core_(other.core_) {
    if (core_) core_->senders.fetch_add(1, std::memory_order_relaxed);
  }
  Sender(Sender&&) noexcept = default;        // leaves `other` empty: it counts nothing
  Sender& operator=(Sender other) noexcept {  // copy or move; the old channel's count drops with `other`
    core_.swap(other.core_);
    return *this;
  }
  ~Sender() {
    if (core_ && core_->senders.fetch_sub(1, std::memory_order_acq_rel) == 1) core_->channel.close();
  }

  // Channel's calls: false (or the value handed back, closed = true) once every receiver is gone.
  bool send(T value) const { return channel().send(std::move(value)); }
  std::expected<void, Refused> send_until(T value, Deadline deadline) const {
    return channel().send_until(std::move(value), deadline);
  }
  template <class Rep, class Period>
  std::expected<void, Refused> send_for(T value, std::chrono::duration<Rep, Period> limit) const {
    return channel().send_for(std::move(value), limit);
  }
  bool try_send(T value) const { return channel().try_send(std::move(value)); }

  // True once every receiver is gone (no send can succeed any more).
  bool receivers_gone() const { return channel().is_closed(); }
  // Waits until every receiver is gone. Throws Cancelled.
  void wait_receivers_gone() const { core().receivers_left.wait(); }
  // True once every receiver is gone, false if the deadline passed first. Throws Cancelled.
  bool wait_receivers_gone_until(Deadline deadline) const {
    return core().receivers_left.wait_until(deadline);
  }
  template <class Rep, class Period>
  bool wait_receivers_gone_for(std::chrono::duration<Rep, Period> limit) const {
    return wait_receivers_gone_until(deadline_after(limit));
  }

 private:
  friend std::pair<Sender, Receiver<T>> channel<T>(std::size_t);
  template <class U, class V>
  friend typename Channel<U>::Send on_send(const Sender<U>&, V&&);
  template <class U>
  friend Event::Wait on_receivers_gone(const Sender<U>&) noexcept;

  explicit Sender(std::shared_ptr<detail::ChannelCore<T>> core) noexcept : core_(std::move(core)) {}
  detail::ChannelCore<T>& core() const noexcept {
    assert(core_ && "fiberio::Sender used after it was moved from");
    return *core_;
  }
  Channel<T>& channel() const noexcept { return core().channel; }

  std::shared_ptr<detail::ChannelCore<T>> core_;
};

template <class T>
class Receiver {
 public:
  Receiver(const Receiver& other) noexcept : core_(other.core_) {
    if (core_) core_->receivers.fetch_add(1, std::memory_order_relaxed);
  }
  Receiver(Receiver&&) noexcept = default;        // leaves `other` empty: it counts nothing
  Receiver& operator=(Receiver other) noexcept {  // copy or move; the old channel's count drops with `other`
    core_.swap(other.core_);
    return *this;
  }
  ~Receiver() {
    if (core_ && core_->receivers.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      core_->channel.close_and_drop();  // first: once wait_receivers_gone() returns, every send is refused
      core_->receivers_left.set();
    }
  }

  // Channel's calls: nullopt once every sender is gone and the queue is drained.
  std::optional<T> recv() const { return channel().recv(); }
  std::optional<T> recv_until(Deadline deadline) const { return channel().recv_until(deadline); }
  template <class Rep, class Period>
  std::optional<T> recv_for(std::chrono::duration<Rep, Period> limit) const {
    return channel().recv_for(limit);
  }
  std::optional<T> try_recv() const { return channel().try_recv(); }

 private:
  friend std::pair<Sender<T>, Receiver> channel<T>(std::size_t);
  template <class U>
  friend typename Channel<U>::Recv on_recv(const Receiver<U>&) noexcept;

  explicit Receiver(std::shared_ptr<detail::ChannelCore<T>> core) noexcept : core_(std::move(core)) {}
  Channel<T>& channel() const noexcept {
    assert(core_ && "fiberio::Receiver used after it was moved from");
    return core_->channel;
  }

  std::shared_ptr<detail::ChannelCore<T>> core_;
};

// One sender and one receiver over a new channel of `capacity` (Channel's: 0 is a rendezvous channel).
template <class T>
std::pair<Sender<T>, Receiver<T>> channel(std::size_t capacity) {
  auto core = std::make_shared<detail::ChannelCore<T>>(capacity);
  return {Sender<T>{core}, Receiver<T>{std::move(core)}};
}

// Channel's select() branches, through a handle (which must outlive the select).
template <class T, class U>
typename Channel<T>::Send on_send(const Sender<T>& sender, U&& value) {
  return on_send(sender.channel(), std::forward<U>(value));
}
template <class T>
typename Channel<T>::Recv on_recv(const Receiver<T>& receiver) noexcept {
  return on_recv(receiver.channel());
}
// wait_receivers_gone() as a select() branch: completes once every receiver is gone.
template <class T>
Event::Wait on_receivers_gone(const Sender<T>& sender) noexcept {
  return on_set(sender.core().receivers_left);
}

}  // namespace fiberio
