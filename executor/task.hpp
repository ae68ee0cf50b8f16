// executor/task.hpp — a fiber that runs a callable and keeps its result for a JoinHandle.
// ResultFiber<R> is what a JoinHandle<R> sees; Task<R, F> adds the callable, destroyed as soon as it
// returns so captured resources (sockets, buffers) are released when the fiber ends, not when the
// handle goes. Thread-safety: the result is written by the fiber before it is marked finished and read
// only after finished() is observed (release/acquire on the finished flag).
#pragma once

#include "executor/fiber.hpp"

#include <optional>
#include <type_traits>
#include <utility>

namespace fiberio::detail {

template <class R>
class ResultFiber : public Fiber {
 public:
  using Fiber::Fiber;
  R take_result() {
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 protected:
  struct Empty {};
  std::optional<std::conditional_t<std::is_void_v<R>, Empty, R>> result_;
};

template <class R, class F>
class Task final : public ResultFiber<R> {
 public:
  Task(Scheduler& scheduler, std::string name, F fn)
      : ResultFiber<R>(scheduler, std::move(name)), fn_(std::move(fn)) {}

 private:
  void run() override {
    struct Reset {
      std::optional<F>& fn;
      ~Reset() { fn.reset(); }
    } reset{fn_};
    if constexpr (std::is_void_v<R>) {
      std::invoke(*fn_);
      this->result_.emplace();
    } else {
      this->result_.emplace(std::invoke(*fn_));
    }
  }

  std::optional<F> fn_;
};

}  // namespace fiberio::detail
