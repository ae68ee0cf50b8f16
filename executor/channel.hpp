// executor/channel.hpp — a multi-producer multi-consumer queue of T between fibers (and threads).
//
//   fiberio::Channel<int> ch{16};         // bounded: send() waits while 16 items are queued
//   fiberio::Channel<int> any;            // unbounded: send() never waits
//   fiberio::Channel<int> meet{0};        // rendezvous: send() waits until a receiver has taken it
//   ch.send(1); ch.close();
//   while (auto v = ch.recv()) use(*v);   // recv() returns nullopt once closed and drained
//
// send() returns false (and drops nothing: the value stays with the caller's copy semantics) when the
// channel is closed; send_until()/send_for() hand the value back when refused (closed, or still full at
// the deadline). Every waiting call takes a deadline or a duration alike (_until, _for). Items are delivered
// in send order, each to exactly one receiver. A woken receiver or sender re-checks under the lock, so a
// wake-up stolen by a barging fiber is never a lost item. on_recv(ch) and on_send(ch, value) make a receive
// or a send one branch of fiberio::select (executor/select.hpp), with recv()'s and send()'s results.
// For a channel owned by its ends (it closes when the last sender goes; senders learn when the last
// receiver went), take Sender and Receiver handles from fiberio::channel<T>() (channel_handles.hpp).
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

  // `capacity` 0 makes a rendezvous channel (Go's unbuffered channel): a send completes only once a
  // receiver has taken its value.
  explicit Channel(std::size_t capacity = unbounded) : capacity_(capacity) {}

  // Waits while full (on a rendezvous channel: until a receiver takes the value). False if the channel is
  // (or becomes) closed first; throws Cancelled.
  bool send(T value) {
    std::unique_lock guard(mutex_);
    if (capacity_ == 0) [[unlikely]]
      return hand_off(std::move(value), std::nullopt, guard).has_value();
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
    bool closed;  // true: the channel is closed; false: the deadline passed while it was full (rendezvous:
                  // before a receiver took the value)
  };
  // send() with a limit: waits while full, at most until `deadline`. Throws Cancelled (the value is then
  // dropped with the exception).
  std::expected<void, Refused> send_until(T value, Deadline deadline) {
    std::unique_lock guard(mutex_);
    if (capacity_ == 0) [[unlikely]]
      return hand_off(std::move(value), deadline, guard);
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

  // Never waits: false if full or closed (on a rendezvous channel: unless a receiver is waiting, which
  // then gets the value).
  bool try_send(T value) {
    std::lock_guard guard(mutex_);
    return try_push_locked(value);
  }

  // Waits while empty and open; nullopt once closed and drained. Throws Cancelled.
  std::optional<T> recv() {
    std::unique_lock guard(mutex_);
    if (capacity_ == 0) [[unlikely]]
      return recv_rendezvous(std::nullopt, guard);
    while (items_.empty() && !closed_)
      detail::throw_if_cancelled(detail::suspend_on(receivers_, guard));
    return take(guard);
  }

  // Like recv(), but also nullopt when the deadline passes first.
  std::optional<T> recv_until(Deadline deadline) {
    std::unique_lock guard(mutex_);
    if (capacity_ == 0) [[unlikely]]
      return recv_rendezvous(deadline, guard);
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
    hand_offs_.wake_all();
  }

  // close() for an owner that knows nobody will receive any more (the last Receiver handle,
  // channel_handles.hpp): it also drops every queued item, destroyed after the lock is let go (an item's
  // destructor may use this channel). Waiting senders are refused as after close(); a rendezvous sender
  // keeps its value.
  void close_and_drop() {
    std::deque<T> dropped;
    std::lock_guard guard(mutex_);
    closed_ = true;
    dropped.swap(items_);
    receivers_.wake_all();
    senders_.wake_all();
    hand_offs_.wake_all();
  }

  // A receive as a select() branch: its result is recv()'s (nullopt once closed and drained).
  class Recv {
   public:
    using result_type = std::optional<T>;
    explicit Recv(Channel& channel) noexcept : channel_(channel) {}
    std::optional<result_type> try_complete() {
      std::unique_lock guard(channel_.mutex_);
      if (auto value = channel_.take(guard)) return result_type{std::move(value)};
      if (channel_.closed_) return result_type{};
      return std::nullopt;
    }
    bool subscribe(detail::Waiter& waiter) {
      std::lock_guard guard(channel_.mutex_);
      if (channel_.items_.empty() && channel_.hand_offs_.empty() && !channel_.closed_) {
        channel_.announce_receiver_locked();
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
  // until the send completes: a send that lost, or found the channel closed, gives it back. On a
  // rendezvous channel it completes when a receiver is waiting, and hands the value to the queue for it
  // (it does not wait for the take, as send() does).
  class Send {
   public:
    using result_type = bool;
    Send(Channel& channel, T value) : channel_(channel), value_(std::move(value)) {}
    std::optional<result_type> try_complete() {
      std::lock_guard guard(channel_.mutex_);
      if (channel_.closed_) return false;
      if (!channel_.try_push_locked(*value_)) return std::nullopt;
      value_.reset();
      return true;
    }
    bool subscribe(detail::Waiter& waiter) {
      std::lock_guard guard(channel_.mutex_);
      // Full; on a rendezvous channel: no receiver waits (a receiver that comes wakes us to try again).
      const bool must_wait = channel_.capacity_ == 0 ? channel_.receivers_.empty()
                                                     : channel_.items_.size() >= channel_.capacity_;
      if (!channel_.closed_ && must_wait) {
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
  // A rendezvous sender waiting for a receiver, on its own stack: a receiver that wins its wait moves the
  // value out (under the lock, before the sender can run again) and marks it taken.
  struct HandOff : detail::Waiter {
    T* value = nullptr;
    bool taken = false;
  };

  // A rendezvous send: waits in hand_offs_ until a receiver takes the value from this frame (Go's
  // unbuffered send). A sender that leaves first (closed, deadline, cancellation) still has it.
  __attribute__((noinline)) std::expected<void, Refused> hand_off(T value, std::optional<Deadline> deadline,
                                                                  std::unique_lock<std::mutex>& guard) {
    for (;;) {
      if (closed_) return std::unexpected(Refused{std::move(value), true});
      HandOff me;
      me.value = &value;
      receivers_.wake_one();
      const auto why = detail::suspend_on(hand_offs_, me, guard, deadline, [] {});
      if (me.taken) return {};  // the taker won the wait, so nothing else did
      detail::throw_if_cancelled(why);
      if (why == detail::WakeReason::timeout) return std::unexpected(Refused{std::move(value), false});
    }
  }

  // Queues `value` (moving from it) if that needs no wait: room in a buffered channel, a waiting receiver
  // for a rendezvous one (which takes it once we let go of the lock).
  bool try_push_locked(T& value) {
    if (closed_) return false;
    if (capacity_ == 0) {
      if (!receivers_.wake_one()) return false;
      items_.push_back(std::move(value));
      return true;
    }
    if (items_.size() >= capacity_) return false;
    items_.push_back(std::move(value));
    receivers_.wake_one();
    return true;
  }

  // A receiver is about to wait on a rendezvous channel: select's send branches waiting for one look again.
  void announce_receiver_locked() {
    if (capacity_ == 0) senders_.wake_all();
  }

  // recv() on a rendezvous channel: a value comes from a waiting sender (or a select's send branch).
  __attribute__((noinline)) std::optional<T> recv_rendezvous(std::optional<Deadline> deadline,
                                                             std::unique_lock<std::mutex>& guard) {
    for (;;) {
      if (auto value = take(guard)) return value;
      if (closed_) return std::nullopt;
      announce_receiver_locked();
      const auto why = detail::suspend_on(receivers_, guard, deadline);
      detail::throw_if_cancelled(why);
      if (why == detail::WakeReason::timeout) return take(guard);
    }
  }

  std::optional<T> take(std::unique_lock<std::mutex>&) {
    if (items_.empty()) [[unlikely]] {
      if (capacity_ == 0) return take_hand_off_locked();
      return std::nullopt;
    }
    std::optional<T> value(std::move(items_.front()));
    items_.pop_front();
    senders_.wake_one();
    // More items and more receivers: pass the baton so a receiver whose wake-up was used by a barging
    // receiver does not leave items waiting.
    if (!items_.empty()) receivers_.wake_one();
    return value;
  }

  // Takes the value of the longest-waiting rendezvous sender that is still waiting.
  std::optional<T> take_hand_off_locked() {
    while (detail::Waiter* front = hand_offs_.front()) {
      auto* sender = static_cast<HandOff*>(front);
      hand_offs_.remove(*sender);
      if (!sender->wake()) continue;  // it timed out or was cancelled: it keeps its value
      sender->taken = true;
      return std::optional<T>(std::move(*sender->value));
    }
    return std::nullopt;
  }

  mutable std::mutex mutex_;
  const std::size_t capacity_;  // 0: rendezvous
  bool closed_ = false;
  std::deque<T> items_;
  detail::WaitList senders_{
      "channel send"};  // senders waiting for room (or, rendezvous: select's send branches)
  detail::WaitList hand_offs_{"channel send"};  // rendezvous senders, each with its value
  detail::WaitList receivers_{"channel receive"};
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
