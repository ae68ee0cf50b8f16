// executor/channel.hpp — a multi-producer multi-consumer queue of T between fibers (and threads).
//
//   fiberio::Channel<int> ch{16};         // bounded: send() waits while 16 items are queued
//   fiberio::Channel<int> any;            // unbounded: send() never waits
//   ch.send(1); ch.close();
//   while (auto v = ch.recv()) use(*v);   // recv() returns nullopt once closed and drained
//
// send() returns false (and drops nothing: the value stays with the caller's copy semantics) when the
// channel is closed. Items are delivered in send order, each to exactly one receiver. A woken receiver
// or sender re-checks under the lock, so a wake-up stolen by a barging fiber is never a lost item.
// Thread-safety: any fiber or thread; plain threads block when they must wait.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <cstddef>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>

namespace fiberio {

template <class T>
class Channel {
 public:
  static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

  explicit Channel(std::size_t capacity = unbounded) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Waits while full. False if the channel is (or becomes) closed; throws Cancelled.
  bool send(T value) {
    std::unique_lock guard(mutex_);
    while (!closed_ && items_.size() >= capacity_)
      detail::throw_if_cancelled(detail::suspend_on(senders_, guard));
    if (closed_) return false;
    items_.push_back(std::move(value));
    receivers_.wake_one();
    return true;
  }

  // Never waits: false if full or closed.
  bool try_send(T value) {
    std::lock_guard guard(mutex_);
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(value));
    receivers_.wake_one();
    return true;
  }

  // Waits while empty and open; nullopt once closed and drained. Throws Cancelled.
  std::optional<T> recv() {
    std::unique_lock guard(mutex_);
    while (items_.empty() && !closed_)
      detail::throw_if_cancelled(detail::suspend_on(receivers_, guard));
    return take(guard);
  }

  // Like recv(), but also nullopt when the deadline passes first.
  std::optional<T> recv_until(Deadline deadline) {
    std::unique_lock guard(mutex_);
    while (items_.empty() && !closed_) {
      const auto why = detail::suspend_on(receivers_, guard, deadline);
      detail::throw_if_cancelled(why);
      if (why == detail::WakeReason::timeout) break;
    }
    return take(guard);
  }

  std::optional<T> try_recv() {
    std::unique_lock guard(mutex_);
    return take(guard);
  }

  // Wakes everyone: pending receivers drain what is left, then get nullopt; senders get false.
  void close() {
    std::lock_guard guard(mutex_);
    closed_ = true;
    receivers_.wake_all();
    senders_.wake_all();
  }

  bool is_closed() const {
    std::lock_guard guard(mutex_);
    return closed_;
  }
  std::size_t size() const {
    std::lock_guard guard(mutex_);
    return items_.size();
  }

 private:
  std::optional<T> take(std::unique_lock<std::mutex>&) {
    if (items_.empty()) return std::nullopt;
    std::optional<T> value(std::move(items_.front()));
    items_.pop_front();
    senders_.wake_one();
    // More items and more receivers: pass the baton so a receiver whose wake-up was used by a barging
    // receiver does not leave items waiting.
    if (!items_.empty()) receivers_.wake_one();
    return value;
  }

  mutable std::mutex mutex_;
  const std::size_t capacity_;
  bool closed_ = false;
  std::deque<T> items_;
  detail::WaitList senders_;
  detail::WaitList receivers_;
};

}  // namespace fiberio
