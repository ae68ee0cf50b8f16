#include <fiberio/runtime/runtime.hpp>

#include <fiberio/runtime/detail/scheduler.hpp>
#include <fiberio/runtime/detail/worker.hpp>

#include <stdexcept>

namespace fiberio {

Runtime::Runtime(Config config)
    : scheduler_(std::make_unique<detail::Scheduler>(std::move(config), /*caller_driven=*/false)) {}

Runtime::Runtime(Config config, CallerDriven)
    : scheduler_(std::make_unique<detail::Scheduler>(std::move(config), /*caller_driven=*/true)) {}

Runtime::~Runtime() {
  shutdown();
}

namespace {

void refuse_own_fiber(const detail::Scheduler& scheduler) {
  if (detail::Worker* here = detail::Worker::current(); here && &here->scheduler() == &scheduler) {
    throw std::logic_error("fiberio::Runtime::shutdown called from one of its own fibers");
  }
}

}  // namespace

void Runtime::shutdown() {
  refuse_own_fiber(*scheduler_);
  scheduler_->shutdown();
}

bool Runtime::shutdown(Deadline deadline) {
  refuse_own_fiber(*scheduler_);
  return scheduler_->shutdown(deadline);
}

const Config& Runtime::config() const noexcept {
  return scheduler_->config();
}

std::vector<WorkerStats> Runtime::stats() const {
  return scheduler_->stats();
}

std::vector<FiberInfo> Runtime::fibers() const {
  return scheduler_->fibers();
}

std::size_t Runtime::live_fibers() const noexcept {
  return scheduler_->live_fibers();
}

void Runtime::drive(const std::atomic<bool>& done) {
  scheduler_->drive(done);
}

namespace detail {

void submit(Scheduler& scheduler, Task* task, std::optional<std::uint32_t> worker) {
  scheduler.submit(task, worker);
}

Scheduler& current_scheduler() {
  Worker* worker = Worker::current();
  if (!worker) throw std::logic_error("fiberio::spawn called outside a fiber: use Runtime::spawn");
  return worker->scheduler();
}

}  // namespace detail
}  // namespace fiberio
