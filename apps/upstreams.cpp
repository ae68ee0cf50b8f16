#include "upstreams.hpp"

#include "log.hpp"

#include <limits>
#include <stdexcept>

namespace fiberio {

UpstreamPool::UpstreamPool(std::vector<HostPort> upstreams, Balance balance)
    : entries_(upstreams.size()), balance_(balance) {
  if (upstreams.empty()) throw std::invalid_argument("fiberio::UpstreamPool: no upstream");
  for (std::size_t i = 0; i < upstreams.size(); ++i)
    entries_[i].address = std::move(upstreams[i]);
}

std::size_t UpstreamPool::pick() noexcept {
  const std::size_t i = choose();
  entries_[i].open.fetch_add(1, std::memory_order_relaxed);
  return i;
}

void UpstreamPool::release(std::size_t index) noexcept {
  entries_[index].open.fetch_sub(1, std::memory_order_relaxed);
}

std::size_t UpstreamPool::choose() noexcept {
  const std::size_t n = entries_.size();
  const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
  const Rep t = now();
  std::size_t best = start % n;
  Rep best_until = std::numeric_limits<Rep>::max();
  std::size_t least = n;  // least_connections: the up one with the fewest open, first in turn on ties
  std::uint32_t least_open = std::numeric_limits<std::uint32_t>::max();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    const Rep until = entries_[i].down_until.load(std::memory_order_relaxed);
    if (until == 0 || until <= t) {
      if (balance_ == Balance::round_robin) return i;
      const std::uint32_t open = entries_[i].open.load(std::memory_order_relaxed);
      if (open < least_open) {
        least = i;
        least_open = open;
      }
    } else if (until < best_until) {
      best = i;
      best_until = until;
    }
  }
  return least < n ? least : best;  // all down: the one that comes back first
}

std::string UpstreamPool::describe() const {
  std::string out =
      balance_ == Balance::round_robin ? "upstreams (round-robin): " : "upstreams (least-connections): ";
  const Rep t = now();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    const Rep until = e.down_until.load(std::memory_order_relaxed);
    out.append(i == 0 ? "" : "; ").append(e.address.to_string());
    if (until != 0 && until > t) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::duration(until - t));
      out.append(" down (")
          .append(std::to_string(e.failures.load(std::memory_order_relaxed)))
          .append(" failures in a row, retried in ")
          .append(std::to_string(left.count()))
          .append(" ms)");
    } else {
      out.append(" up");
    }
    out.append(", ").append(std::to_string(e.open.load(std::memory_order_relaxed))).append(" open");
  }
  return out;
}

bool UpstreamPool::is_down(std::size_t index) const noexcept {
  const Rep until = entries_[index].down_until.load(std::memory_order_relaxed);
  return until != 0 && until > now();
}

void UpstreamPool::succeeded(std::size_t index) {
  Entry& e = entries_[index];
  if (e.failures.load(std::memory_order_relaxed) == 0) return;  // the common case: no write
  const std::uint64_t failures = e.failures.exchange(0, std::memory_order_relaxed);
  if (failures == 0) return;  // another fiber logged it
  e.down_until.store(0, std::memory_order_relaxed);
  log_event(LogLevel::info, "upstream ", e.address.to_string(), " works again (", failures, " failure",
            failures == 1 ? "" : "s", " in a row before)");
}

std::chrono::seconds UpstreamPool::pause_after(std::uint64_t failures) noexcept {
  const std::uint64_t doublings = failures > 16 ? 16 : failures - 1;
  const auto pause = kFirstPause * (std::int64_t{1} << doublings);
  return pause < kMaxPause ? pause : kMaxPause;
}

void UpstreamPool::failed(std::size_t index, const std::error_code& why) {
  Entry& e = entries_[index];
  const std::uint64_t failures = e.failures.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto pause = pause_after(failures);
  e.down_until.store(now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(pause).count(),
                     std::memory_order_relaxed);
  if (failures != 1) return;  // still down: the outage is logged once
  if (entries_.size() > 1) {
    log_event(LogLevel::warn, "upstream ", e.address.to_string(), ": ", why.message(), "; skipping it for ",
              pause.count(), " s (each further failure doubles the pause, up to ", kMaxPause.count(), " s)");
  } else {
    log_event(LogLevel::warn, "upstream ", e.address.to_string(), ": ", why.message(),
              "; clients are closed until it works again (it is retried at each new connection)");
  }
}

}  // namespace fiberio
