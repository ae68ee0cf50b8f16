#include "upstreams.hpp"

#include "log.hpp"

#include <limits>
#include <stdexcept>

namespace fiberio {

UpstreamPool::UpstreamPool(std::vector<HostPort> upstreams) : entries_(upstreams.size()) {
  if (upstreams.empty()) throw std::invalid_argument("fiberio::UpstreamPool: no upstream");
  for (std::size_t i = 0; i < upstreams.size(); ++i)
    entries_[i].address = std::move(upstreams[i]);
}

std::size_t UpstreamPool::pick() noexcept {
  const std::size_t n = entries_.size();
  const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
  const Rep t = now();
  std::size_t best = start % n;
  Rep best_until = std::numeric_limits<Rep>::max();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    const Rep until = entries_[i].down_until.load(std::memory_order_relaxed);
    if (until == 0 || until <= t) return i;
    if (until < best_until) {
      best = i;
      best_until = until;
    }
  }
  return best;  // all down: the one that comes back first
}

bool UpstreamPool::is_down(std::size_t index) const noexcept {
  const Rep until = entries_[index].down_until.load(std::memory_order_relaxed);
  return until != 0 && until > now();
}

void UpstreamPool::succeeded(std::size_t index) {
  Entry& e = entries_[index];
  if (e.down_until.load(std::memory_order_relaxed) == 0) return;         // the common case: no write
  if (e.down_until.exchange(0, std::memory_order_relaxed) == 0) return;  // another fiber logged it
  const std::uint64_t failures = e.failures.exchange(0, std::memory_order_relaxed) + 1;
  log_line("upstream ", e.address.to_string(), " works again (", failures, " failed connection attempt",
           failures == 1 ? "" : "s", " while it was down)");
}

void UpstreamPool::failed(std::size_t index, const std::error_code& why) {
  Entry& e = entries_[index];
  const Rep until =
      now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(kRetryAfter).count();
  if (e.down_until.exchange(until, std::memory_order_relaxed) != 0) {
    e.failures.fetch_add(1, std::memory_order_relaxed);  // still down: already logged
    return;
  }
  if (entries_.size() > 1) {
    log_line("upstream ", e.address.to_string(), ": ", why.message(), "; skipping it for ",
             kRetryAfter.count(), " s");
  } else {
    log_line("upstream ", e.address.to_string(), ": ", why.message(),
             "; clients are closed until it works again (it is retried at each new connection)");
  }
}

}  // namespace fiberio
