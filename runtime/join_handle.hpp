// runtime/join_handle.hpp — the owner's view of a spawned fiber: join it for its result, cancel it,
// or detach it.
//
//   auto handle = fiberio::spawn([] { return 42; });
//   int v = handle.join();   // suspends this fiber (or blocks a plain thread) until the fiber returns
//
// join() returns the value or rethrows the fiber's exception (fiberio::Cancelled if it was cancelled);
// it may be called once. Dropping a handle detaches the fiber (it keeps running), like std::jthread's
// detach rather than its join, since a network server drops most handles.
// on_join(handle) makes the wait for the fiber's end one branch of fiberio::select (executor/select.hpp);
// it completes once the fiber has finished, and the handle's join() then returns at once.
// Thread-safety: one handle is used by one thread or fiber at a time; cancel() may race with anything.
#pragma once

#include <fiberio/runtime/detail/task.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

namespace fiberio {

template <class R>
class JoinHandle {
 public:
  JoinHandle() = default;
  // Adopts one reference on `fiber`.
  explicit JoinHandle(detail::ResultTask<R>* fiber) noexcept : fiber_(fiber) {}
  JoinHandle(JoinHandle&& other) noexcept : fiber_(std::exchange(other.fiber_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      detach();
      fiber_ = std::exchange(other.fiber_, nullptr);
    }
    return *this;
  }
  ~JoinHandle() { detach(); }

  bool joinable() const noexcept { return fiber_ != nullptr; }
  bool is_finished() const noexcept { return fiber_ && fiber_->finished(); }
  const std::string& name() const { return checked().name(); }

  // Waits for the fiber and returns its result, or rethrows its exception. Throws Cancelled if the
  // joining fiber is cancelled while it waits (the joined fiber keeps running; the handle stays valid).
  R join() {
    detail::ResultTask<R>& fiber = checked();
    if (detail::Fiber::current()) {
      fiber.wait_finished();
    } else {
      fiber.wait_finished_blocking();
    }
    detail::ResultTask<R>* owned = std::exchange(fiber_, nullptr);
    struct Release {
      detail::ResultTask<R>* f;
      ~Release() { f->release(); }
    } release{owned};
    if (auto error = owned->take_error()) std::rethrow_exception(error);
    return owned->take_result();
  }

  // Waits at most until `deadline` (fibers only); true if the fiber finished.
  bool wait_until(Deadline deadline) { return checked().wait_finished_until(deadline); }

  // Asks the fiber to stop: its current or next blocking operation throws Cancelled.
  void cancel() noexcept {
    if (fiber_) fiber_->request_cancel();
  }

  // The wait for the fiber's end as a select() branch (on_join()).
  class Finished {
   public:
    using result_type = std::monostate;
    explicit Finished(JoinHandle& handle) : fiber_(&handle.checked()) {}
    std::optional<result_type> try_complete() const {
      if (!fiber_->finished()) return std::nullopt;
      return result_type{};
    }
    bool subscribe(detail::Waiter& waiter) { return fiber_->subscribe_finished(waiter); }
    void unsubscribe(detail::Waiter& waiter) noexcept { fiber_->unsubscribe_finished(waiter); }
    std::optional<Deadline> deadline() const noexcept { return std::nullopt; }

   private:
    detail::ResultTask<R>* fiber_;  // the handle's reference keeps it alive for the select
  };

  // Lets the fiber run on unobserved.
  void detach() noexcept {
    if (fiber_) std::exchange(fiber_, nullptr)->release();
  }

 private:
  detail::ResultTask<R>& checked() const {
    if (!fiber_) throw std::logic_error("fiberio::JoinHandle: no fiber (already joined, detached or empty)");
    return *fiber_;
  }

  detail::ResultTask<R>* fiber_ = nullptr;
};

// Throws std::logic_error for an empty handle, as join() does.
template <class R>
typename JoinHandle<R>::Finished on_join(JoinHandle<R>& handle) {
  return typename JoinHandle<R>::Finished{handle};
}

}  // namespace fiberio
