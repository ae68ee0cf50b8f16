// executor/wait_group.hpp — waits for a group of fibers to finish (Go's sync.WaitGroup).
//   WaitGroup wg; wg.add(n); ... each worker fiber calls wg.done(); ... wg.wait();
// Thread-safety: any fiber or thread. Invariant: the count never goes below zero (done() past zero throws
// std::logic_error); waiters are released each time it reaches zero.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <cstddef>
#include <mutex>
#include <stdexcept>

namespace fiberio {

class WaitGroup {
 public:
  void add(std::size_t n = 1) {
    std::lock_guard guard(mutex_);
    count_ += n;
  }

  void done() {
    std::lock_guard guard(mutex_);
    if (count_ == 0) throw std::logic_error("fiberio::WaitGroup::done called more often than add");
    if (--count_ == 0) waiters_.wake_all();
  }

  void wait() {
    std::unique_lock guard(mutex_);
    while (count_ != 0)
      detail::throw_if_cancelled(detail::suspend_on(waiters_, guard));
  }

 private:
  std::mutex mutex_;
  std::size_t count_ = 0;
  detail::WaitList waiters_{"wait group"};
};

}  // namespace fiberio
