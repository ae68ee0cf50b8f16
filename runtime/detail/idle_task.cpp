#include <fiberio/runtime/detail/idle_task.hpp>

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/reactor/detail/reactor.hpp>

namespace fiberio::detail {

void IdleLoopTask::serve(AsyncFd& fd) {
  if (take_restart() && !rested(resumed_reason())) return finish();
  for (;;) {
    if (step() == Next::stop) return finish();
    std::optional<Deadline> deadline;
    if (idle_timeout_) deadline = deadline_after(*idle_timeout_);
    // The idle point. An fd that cannot be registered (closed) or looks readable: the handler at once
    // (its next operation reports the fd's fate, or reads).
    WakeReason why = WakeReason::notified;
    if (const SourceHandle source = fd.registered_source()) [[likely]] {
      const std::uint32_t seen = source.source->directions[IoSource::index(Interest::read)].snapshot();
      if (!IoSource::Direction::ready(seen))
        why = source.reactor->wait_idle(source.source, source.generation, source.fd, seen, wait_, deadline);
    }
    if (!rested(why)) return finish();
  }
}

void IdleLoopTask::finish() {
  result_.emplace();
}

bool IdleLoopTask::rested(WakeReason why) {
  wait_.end(why);
  if (why == WakeReason::cancelled) throw Cancelled{};
  return why == WakeReason::notified;
}

}  // namespace fiberio::detail
