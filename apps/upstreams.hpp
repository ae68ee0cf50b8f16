// apps/upstreams.hpp — the proxy's upstream servers: round-robin or least-connections choice, and skipping
// the ones that just failed.
//
//   fiberio::UpstreamPool pool(config.upstreams, Balance::least_connections);
//   auto i = pool.pick();                         // skipping those marked down; counts a connection on i
//   ... relay ...; if (ok) pool.succeeded(i); else pool.failed(i, error);
//   pool.release(i);                              // the connection ended
//
// Balance: round_robin takes the upstreams in turn; least_connections the one with the fewest open
// connections (ties in turn), which keeps long-lived connections from piling up on one upstream.
// A failure (a connection attempt refused, unreachable, timed out or whose name does not resolve, or an
// upstream that accepted and did not answer in time) marks its upstream down for a pause that doubles
// with each failure in a row, from kFirstPause (2 s) to kMaxPause (30 s): pick() skips it while another
// upstream is up, and tries it again once the pause is over (a success ends the outage). If all are down,
// pick() still returns the one whose pause ends first, so that a lone upstream is retried at every
// connection, and a recovered one is found again. Logging: one line when an upstream goes down (with its
// address and the reason), nothing for further failures while it stays down, one line when it works again
// (with the number of failures in between): an outage is logged once, not once per client. Thread-safety:
// pick/succeeded/failed may be called from any fiber or thread at once (atomics only).
#pragma once

#include <fiberio/net/address.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace fiberio {

class UpstreamPool {
 public:
  // After the n-th failure in a row an upstream is skipped for kFirstPause * 2^(n-1), at most kMaxPause.
  static constexpr std::chrono::seconds kFirstPause{2};
  static constexpr std::chrono::seconds kMaxPause{30};
  static std::chrono::seconds pause_after(std::uint64_t failures) noexcept;  // failures >= 1

  enum class Balance : std::uint8_t { round_robin, least_connections };

  explicit UpstreamPool(std::vector<HostPort> upstreams,
                        Balance balance = Balance::round_robin);  // at least one

  std::size_t size() const noexcept { return entries_.size(); }
  const HostPort& address(std::size_t index) const noexcept { return entries_[index].address; }

  // The index of the upstream for the next connection, counted as open on it until release(index).
  std::size_t pick() noexcept;
  void release(std::size_t index) noexcept;
  std::uint32_t open_connections(std::size_t index) const noexcept {
    return entries_[index].open.load(std::memory_order_relaxed);
  }
  void succeeded(std::size_t index);
  void failed(std::size_t index, const std::error_code& why);
  bool is_down(std::size_t index) const noexcept;
  // One line for the logs: "upstreams (round-robin): 127.0.0.1:7000 up, 3 open; 127.0.0.1:7002 down ...".
  std::string describe() const;

 private:
  using Rep = std::chrono::steady_clock::rep;
  struct Entry {
    HostPort address;
    std::atomic<Rep> down_until{0};          // steady_clock ticks; 0: up
    std::atomic<std::uint64_t> failures{0};  // failures in a row (0: up)
    std::atomic<std::uint32_t> open{0};      // connections picked and not yet released
  };
  std::size_t choose() noexcept;
  static Rep now() noexcept { return std::chrono::steady_clock::now().time_since_epoch().count(); }

  std::vector<Entry> entries_;  // fixed after construction
  const Balance balance_;
  std::atomic<std::size_t> next_{0};  // round-robin cursor
};

}  // namespace fiberio
