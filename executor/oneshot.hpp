// executor/oneshot.hpp — one value, sent once from one side to the other (tokio's oneshot): the usual way to
// hand a result back to whoever asked for it.
//
//   auto [reply, answer] = fiberio::oneshot<int>();
//   fiberio::spawn([reply = std::move(reply)]() mutable { (void)reply.send(compute()); }).detach();
//   if (auto v = answer.recv()) use(*v);        // nullopt: the sender went away without sending
//
// Each side learns when the other is gone: recv() returns nullopt once the sender was destroyed without
// sending, send() hands the value back once the receiver was destroyed (nobody would read it), and
// receiver_gone()/wait_receiver_gone() let a sender stop work nobody waits for any more. on_recv(receiver)
// makes the receive a branch of fiberio::select (for a deadline: select it with on_timeout()). A value is
// received once; later receives return nullopt.
// Thread-safety: each side is used by one fiber or thread at a time; the two sides from anywhere.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <expected>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace fiberio {

namespace detail {

template <class T>
struct OneshotState {
  std::mutex mutex;
  std::optional<T> value;
  bool sender_gone = false;  // destroyed, or its value sent: nothing more will come
  bool receiver_gone = false;
  WaitList receiver{"oneshot"};        // the receiving fiber (or a select's waiter)
  WaitList sender_waiters{"oneshot"};  // wait_receiver_gone()
};

}  // namespace detail

template <class T>
class OneshotReceiver;

template <class T>
class OneshotSender {
 public:
  OneshotSender(OneshotSender&&) noexcept = default;
  OneshotSender& operator=(OneshotSender&& other) noexcept {
    if (this != &other) {
      leave();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  ~OneshotSender() { leave(); }

  // Sends the value; hands it back if the receiver is gone (or this sender was used up by a send).
  std::expected<void, T> send(T value) {
    if (!state_) return std::unexpected(std::move(value));
    std::lock_guard guard(state_->mutex);
    if (state_->receiver_gone) return std::unexpected(std::move(value));
    state_->value.emplace(std::move(value));
    state_->sender_gone = true;
    state_->receiver.wake_all();
    return {};
  }

  bool receiver_gone() const {
    if (!state_) return true;
    std::lock_guard guard(state_->mutex);
    return state_->receiver_gone;
  }
  // Waits until the receiver is gone (tokio's Sender::closed()). Throws Cancelled.
  void wait_receiver_gone() {
    if (!state_) return;
    std::unique_lock guard(state_->mutex);
    while (!state_->receiver_gone)
      detail::throw_if_cancelled(detail::suspend_on(state_->sender_waiters, guard));
  }

 private:
  template <class U>
  friend std::pair<OneshotSender<U>, OneshotReceiver<U>> oneshot();
  explicit OneshotSender(std::shared_ptr<detail::OneshotState<T>> state) : state_(std::move(state)) {}
  void leave() {
    if (!state_) return;
    std::lock_guard guard(state_->mutex);
    state_->sender_gone = true;
    state_->receiver.wake_all();
  }

  std::shared_ptr<detail::OneshotState<T>> state_;
};

template <class T>
class OneshotReceiver {
 public:
  OneshotReceiver(OneshotReceiver&&) noexcept = default;
  OneshotReceiver& operator=(OneshotReceiver&& other) noexcept {
    if (this != &other) {
      leave();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  ~OneshotReceiver() { leave(); }

  // Waits for the value; nullopt if the sender went away without sending (or it was received already).
  // Throws Cancelled.
  std::optional<T> recv() {
    if (!state_) return std::nullopt;
    std::unique_lock guard(state_->mutex);
    while (!state_->value && !state_->sender_gone)
      detail::throw_if_cancelled(detail::suspend_on(state_->receiver, guard));
    return std::exchange(state_->value, std::nullopt);
  }
  // Never waits: the value if it is there.
  std::optional<T> try_recv() {
    if (!state_) return std::nullopt;
    std::lock_guard guard(state_->mutex);
    return std::exchange(state_->value, std::nullopt);
  }

  // The receive as a select() branch; its result is recv()'s.
  class Recv {
   public:
    using result_type = std::optional<T>;
    explicit Recv(OneshotReceiver& receiver) noexcept : state_(receiver.state_.get()) {}
    std::optional<result_type> try_complete() {
      if (!state_) return result_type{};
      std::lock_guard guard(state_->mutex);
      if (!state_->value && !state_->sender_gone) return std::nullopt;
      return result_type{std::exchange(state_->value, std::nullopt)};
    }
    bool subscribe(detail::Waiter& waiter) {
      std::lock_guard guard(state_->mutex);
      if (!state_->value && !state_->sender_gone) {
        state_->receiver.push_back(waiter);
        return false;
      }
      return waiter.wake();
    }
    void unsubscribe(detail::Waiter& waiter) {
      std::lock_guard guard(state_->mutex);
      state_->receiver.remove(waiter);
    }
    std::optional<Deadline> deadline() const noexcept { return std::nullopt; }

   private:
    detail::OneshotState<T>* state_;  // the receiver's reference keeps it alive for the select
  };

 private:
  template <class U>
  friend std::pair<OneshotSender<U>, OneshotReceiver<U>> oneshot();
  explicit OneshotReceiver(std::shared_ptr<detail::OneshotState<T>> state) : state_(std::move(state)) {}
  void leave() {
    if (!state_) return;
    std::optional<T> unread;  // nobody will read it: destroyed after the lock is let go
    std::lock_guard guard(state_->mutex);
    state_->receiver_gone = true;
    unread = std::exchange(state_->value, std::nullopt);
    state_->sender_waiters.wake_all();
  }

  std::shared_ptr<detail::OneshotState<T>> state_;
};

template <class T>
std::pair<OneshotSender<T>, OneshotReceiver<T>> oneshot() {
  auto state = std::make_shared<detail::OneshotState<T>>();
  return {OneshotSender<T>{state}, OneshotReceiver<T>{state}};
}

template <class T>
typename OneshotReceiver<T>::Recv on_recv(OneshotReceiver<T>& receiver) noexcept {
  return typename OneshotReceiver<T>::Recv{receiver};
}

}  // namespace fiberio
