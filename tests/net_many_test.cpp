// Several thousand concurrent TCP connections on 2 workers, with work stealing on and off, on every
// backend: every connection is open at the same time, echoes its own message, and is served.
#include <doctest/doctest.h>

#include "net_support.hpp"

#include <atomic>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

namespace {

// 2,500 connections = 5,000 fds (ulimit -n is 20,000 here); sanitizer builds use fewer, they are slower.
constexpr int kConnections = fiberio::detail::kSanitized ? 1000 : 2500;

}  // namespace

TEST_CASE("many: thousands of concurrent connections on 2 workers, stealing on and off") {
  for_each_backend([](fiberio::BackendKind kind) {
    for (const bool stealing : {true, false}) {
      CAPTURE(stealing);
      fiberio::Runtime rt{fiberio::Config{.threads = 2, .work_stealing = stealing, .backend = kind}};
      const int served = rt.block_on([] {
        auto listener = listen_loopback(false, {.backlog = 4096});
        const auto addr = address_of(listener);
        std::atomic<int> connected{0};
        std::atomic<int> handled{0};
        fiberio::Event all_connected;

        // Server: one fiber per connection echoes one message, then waits for the client to close.
        auto server = fiberio::spawn([&] {
          std::vector<fiberio::JoinHandle<void>> sessions;
          for (int i = 0; i < kConnections; ++i) {
            auto conn = listener.accept(fiberio::Clock::now() + 60s);
            REQUIRE_MESSAGE(conn, conn.error().message());
            // Sessions alternate between the workers: with stealing off, nothing else would spread them.
            sessions.push_back(fiberio::spawn(
                [s = std::move(conn->stream), &handled]() mutable {
                  std::array<std::byte, 64> buf;
                  auto n = s.read_some(buf);
                  if (!n || *n == 0) return;
                  if (!s.write_all(std::span(buf).first(*n))) return;
                  auto eof = s.read_some(buf);  // the client closes once everyone is connected
                  if (eof && *eof == 0) handled.fetch_add(1);
                },
                {.worker = static_cast<std::uint32_t>(i % 2)}));
          }
          for (auto& h : sessions)
            h.join();
        });

        std::vector<fiberio::JoinHandle<bool>> clients;
        clients.reserve(kConnections);
        for (int i = 0; i < kConnections; ++i) {
          clients.push_back(fiberio::spawn(
              [&, i] {
                auto s = fiberio::TcpStream::connect(addr, 60s);
                if (!s) return false;
                const std::string message = "client " + std::to_string(i);
                if (!s->write_all(message)) return false;
                std::vector<std::byte> reply(message.size());
                if (!s->read_exact(reply, fiberio::Clock::now() + 60s) || text(reply) != message)
                  return false;
                // Hold the connection until every client is connected: they are all open at once.
                if (connected.fetch_add(1) + 1 == kConnections) all_connected.set();
                if (!all_connected.wait_until(fiberio::Clock::now() + 60s)) return false;
                return true;
              },
              {.worker = static_cast<std::uint32_t>(i % 2)}));
        }
        int ok = 0;
        for (auto& c : clients)
          ok += c.join() ? 1 : 0;
        server.join();
        CHECK(ok == kConnections);
        return handled.load();
      });
      CHECK(served == kConnections);
      // Both workers took part.
      int busy_workers = 0;
      for (const auto& w : rt.stats())
        busy_workers += w.fibers_run > 0 ? 1 : 0;
      CHECK(busy_workers == 2);
    }
  });
}
