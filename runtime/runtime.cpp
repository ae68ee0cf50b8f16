#include "runtime/runtime.hpp"

#include "runtime/worker.hpp"

#include <stdexcept>

namespace fiberio {

Runtime::Runtime(Config config) : scheduler_(std::make_unique<detail::Scheduler>(std::move(config), false)) {}

Runtime::~Runtime() {
  shutdown();
}

void Runtime::shutdown() {
  if (detail::Worker* here = detail::Worker::current(); here && &here->scheduler() == scheduler_.get()) {
    throw std::logic_error("fiberio::Runtime::shutdown called from one of its own fibers");
  }
  scheduler_->shutdown();
}

namespace detail {

Scheduler& current_scheduler() {
  Worker* worker = Worker::current();
  if (!worker) throw std::logic_error("fiberio::spawn called outside a fiber: use Runtime::spawn");
  return worker->scheduler();
}

}  // namespace detail
}  // namespace fiberio
