// executor/channel.hpp — a multi-producer multi-consumer queue of T between fibers (and threads).
//
//   fiberio::Channel<int> ch{16};         // bounded: send() waits while 16 items are queued
//   fiberio::Channel<int> any;            // unbounded: send() never waits
//   ch.send(1); ch.close();
//   while (auto v = ch.recv()) use(*v);   // recv() returns nullopt once closed and drained
//
// send() returns false (and drops nothing: the value stays with the caller's copy semantics) when the
// channel is closed; send_until()/send_for() hand the value back when refused (closed, or still full at
// the deadline). Every waiting call takes a deadline or a duration alike (_until, _for). Items are delivered
// in send order, each to exactly one receiver. A woken receiver or sender re-checks under the lock, so a
// wake-up stolen by a barging fiber is never a lost item. on_recv(ch) and on_send(ch, value) make a receive
// or a send one branch of fiberio::select (executor/select.hpp), with recv()'s and send()'s results.
// Thread-safety: any fiber or thread; plain threads block when they must wait.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <expected>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>

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

  // A value send_until()/send_for() did not send, handed back with the reason.
  struct Refused {
    T value;
    bool closed;  // true: the channel is closed; false: the deadline passed while it was full
  };
  // send() with a limit: waits while full, at most until `deadline`. Throws Cancelled (the value is then
  // dropped with the exception).
  std::expected<void, Refused> send_until(T value, Deadline deadline) {
    std::unique_lock guard(mutex_);
    while (!closed_ && items_.size() >= capacity_) {
      const auto why = detail::suspend_on(senders_, guard, deadline);
      detail::throw_if_cancelled(why);
      if (why == detail::WakeReason::timeout && !closed_ && items_.size() >= capacity_)
        return std::unexpected(Refused{std::move(value), false});
    }
    if (closed_) return std::unexpected(Refused{std::move(value), true});
    items_.push_back(std::move(value));
    receivers_.wake_one();
    return {};
  }
  template <class Rep, class Period>
  std::expected<void, Refused> send_for(T value, std::chrono::duration<Rep, Period> limit) {
    return send_until(std::move(value), deadline_after(limit));
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

  template <class Rep, class Period>
  std::optional<T> recv_for(std::chrono::duration<Rep, Period> limit) {
    return recv_until(deadline_after(limit));
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

  // A receive as a select() branch: its result is recv()'s (nullopt once closed and drained).
  class Recv {
   public:
    using result_type = std::optional<T>;
    explicit Recv(Channel& channel) noexcept : channel_(channel) {}
    std::optional<result_type> try_complete() {
      std::unique_lock guard(channel_.mutex_);
      if (channel_.items_.empty() && !channel_.closed_) return std::nullopt;
      return result_type{channel_.take(guard)};
    }
    bool subscribe(detail::Waiter& waiter) {
      std::lock_guard guard(channel_.mutex_);
      if (channel_.items_.empty() && !channel_.closed_) {
        channel_.receivers_.push_back(waiter);
        return false;
      }
      return waiter.wake();
    }
    void unsubscribe(detail::Waiter& waiter) {
      std::lock_guard guard(channel_.mutex_);
      channel_.receivers_.remove(waiter);
    }
    std::optional<Deadline> deadline() const noexcept { return std::nullopt; }

   private:
    Channel& channel_;
  };

  // A send as a select() branch: its result is send()'s (false: closed). The value stays in the branch
  // until the send completes: a send that lost, or found the channel closed, gives it back.
  class Send {
   public:
    using result_type = bool;
    Send(Channel& channel, T value) : channel_(channel), value_(std::move(value)) {}
    std::optional<result_type> try_complete() {
      std::lock_guard guard(channel_.mutex_);
      if (channel_.closed_) return false;
      if (channel_.items_.size() >= channel_.capacity_) return std::nullopt;
      channel_.items_.push_back(std::move(*value_));
      value_.reset();
      channel_.receivers_.wake_one();
      return true;
    }
    bool subscribe(detail::Waiter& waiter) {
      std::lock_guard guard(channel_.mutex_);
      if (!channel_.closed_ && channel_.items_.size() >= channel_.capacity_) {
        channel_.senders_.push_back(waiter);
        return false;
      }
      return waiter.wake();
    }
    void unsubscribe(detail::Waiter& waiter) {
      std::lock_guard guard(channel_.mutex_);
      channel_.senders_.remove(waiter);
    }
    std::optional<Deadline> deadline() const noexcept { return std::nullopt; }
    // The value, if it was not sent.
    std::optional<T> take_value() { return std::exchange(value_, std::nullopt); }

   private:
    Channel& channel_;
    std::optional<T> value_;
  };

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

template <class T>
typename Channel<T>::Recv on_recv(Channel<T>& channel) noexcept {
  return typename Channel<T>::Recv{channel};
}

template <class T, class U>
typename Channel<T>::Send on_send(Channel<T>& channel, U&& value) {
  return typename Channel<T>::Send{channel, T(std::forward<U>(value))};
}

}  // namespace fiberio
