// The guide's examples (docs/examples/*.cpp) compiled into this test and run briefly, so docs/guide.md
// cannot rot. Each example is included in its own namespace with its main() renamed; the headers they use
// are included first, here, so that the examples' own #includes are no-ops inside the namespaces.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {
// The graceful-shutdown example needs SIGINT/SIGTERM blocked before any thread exists: do it before main.
const bool kBlocked = [] { return !fiberio::block_signals({SIGINT, SIGTERM}); }();
}  // namespace

#define main echo_server_main
namespace example_echo_server {
#include "../docs/examples/echo_server.cpp"
}
#undef main
#define main client_main
namespace example_client {
#include "../docs/examples/client.cpp"
}
#undef main
#define main timeout_main
namespace example_timeout {
#include "../docs/examples/timeout.cpp"
}
#undef main
#define main idle_echo_main
namespace example_idle_echo {
#include "../docs/examples/idle_echo.cpp"
}
#undef main
#define main heartbeat_main
namespace example_heartbeat {
#include "../docs/examples/heartbeat.cpp"
}
#undef main
#define main job_pool_main
namespace example_job_pool {
#include "../docs/examples/job_pool.cpp"
}
#undef main
#define main first_match_main
namespace example_first_match {
#include "../docs/examples/first_match.cpp"
}
#undef main
#define main stackless_echo_main
namespace example_stackless_echo {
#include "../docs/examples/stackless_echo.cpp"
}
#undef main
#define main graceful_shutdown_main
namespace example_graceful_shutdown {
#include "../docs/examples/graceful_shutdown.cpp"
}
#undef main

namespace {

// Runs an example's main with these arguments.
template <class Main>
int run_main(Main main_fn, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  return main_fn(static_cast<int>(args.size()), argv.data());
}

}  // namespace

TEST_CASE("examples: echo_server serves, client talks to it (by name, through resolve)") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  auto listener = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
  REQUIRE(listener);
  const auto port = listener->local_addr()->port();
  auto server = rt.spawn([&] { example_echo_server::serve(*listener); });
  const auto reply = rt.block_on([&] {
    return example_client::request({"localhost", port}, "hello, guide");
  });
  REQUIRE_MESSAGE(reply, reply.error().message());
  CHECK(*reply == "hello, guide");
  // The client program itself, arguments and all.
  CHECK(run_main(example_client::client_main, {"client", "127.0.0.1:" + std::to_string(port), "hi"}) == 0);
  CHECK(run_main(example_client::client_main, {"client", "127.0.0.1"}) == 2);  // malformed: no port
  CHECK(run_main(example_echo_server::echo_server_main, {"echo_server", "127.0.0.1:99999"}) == 2);
  server.cancel();
  CHECK_THROWS_AS(server.join(), fiberio::Cancelled);
}

TEST_CASE("examples: stackless_echo serves through idle loops that give their stacks back") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .idle_stack_release = 5ms}};
  auto listener = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
  REQUIRE(listener);
  const auto port = listener->local_addr()->port();
  auto server = rt.spawn([&] { example_stackless_echo::serve(*listener); });
  for (int round = 0; round < 2; ++round) {
    const auto reply = rt.block_on([&] {
      return example_client::request({"localhost", port}, "hello, idle");
    });
    REQUIRE_MESSAGE(reply, reply.error().message());
    CHECK(*reply == "hello, idle");
  }
  CHECK(run_main(example_stackless_echo::stackless_echo_main, {"stackless_echo", "127.0.0.1"}) == 2);
  server.cancel();
  CHECK_THROWS_AS(server.join(), fiberio::Cancelled);
}

TEST_CASE("examples: timeout gets a pong from the echo server and times out against a silent one") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  auto echo = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
  auto silent = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));  // never accepts
  REQUIRE(echo);
  REQUIRE(silent);
  auto server = rt.spawn([&] { example_echo_server::serve(*echo); });
  rt.block_on([&] {
    CHECK_FALSE(example_timeout::ping(*echo->local_addr()));
    CHECK(example_timeout::ping(*silent->local_addr()) == std::errc::timed_out);
  });
  CHECK(run_main(example_timeout::timeout_main, {"timeout", echo->local_addr()->to_string()}) == 0);
  CHECK(run_main(example_timeout::timeout_main, {"timeout", silent->local_addr()->to_string()}) == 0);
  server.cancel();
  CHECK_THROWS_AS(server.join(), fiberio::Cancelled);
}

TEST_CASE("examples: idle_echo ends a quiet connection, then every connection at stop") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  auto listener = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
  REQUIRE(listener);
  fiberio::Event stop;
  auto server = rt.spawn([&] { example_idle_echo::serve(*listener, stop, 200ms); });
  rt.block_on([&] {
    std::array<std::byte, 8> buffer;
    // Echoed, then closed by the server once the client has been quiet for 200 ms.
    auto quiet = fiberio::TcpStream::connect(*listener->local_addr());
    REQUIRE(quiet);
    REQUIRE(quiet->write_all("hi"));
    auto n = quiet->read_some(buffer, fiberio::Clock::now() + 5s);
    REQUIRE(n);
    CHECK(*n == 2);
    const auto before = fiberio::Clock::now();
    auto end = quiet->read_some(buffer, fiberio::Clock::now() + 5s);
    REQUIRE(end);
    CHECK(*end == 0);
    CHECK(fiberio::Clock::now() - before >= 100ms);  // not long before the idle limit
  });
  // A connection that talks every 10 ms stays open until the server stops.
  auto busy = rt.block_on([&] { return fiberio::TcpStream::connect(*listener->local_addr()); });
  REQUIRE(busy);
  rt.block_on([&] {
    std::array<std::byte, 8> buffer;
    for (int i = 0; i < 3; ++i) {
      fiberio::sleep_for(10ms);
      REQUIRE(busy->write_all("x"));
      auto n = busy->read_some(buffer, fiberio::Clock::now() + 5s);
      REQUIRE(n);
      CHECK(*n == 1);
    }
    stop.set();
    auto end = busy->read_some(buffer, fiberio::Clock::now() + 5s);
    REQUIRE(end);
    CHECK(*end == 0);
  });
  server.join();  // serve returns once every connection has ended
  CHECK(run_main(example_idle_echo::idle_echo_main, {"idle_echo", "127.0.0.1:0", "20", "30"}) == 0);
  CHECK(run_main(example_idle_echo::idle_echo_main, {"idle_echo", "127.0.0.1"}) == 2);
}

TEST_CASE("examples: heartbeat beats on schedule against the echo server until its session ends") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  auto listener = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
  REQUIRE(listener);
  auto server = rt.spawn([&] { example_echo_server::serve(*listener); });
  const auto start = fiberio::Clock::now();
  auto beats =
      rt.block_on([&] { return example_heartbeat::heartbeat(*listener->local_addr(), 10ms, 100ms); });
  REQUIRE_MESSAGE(beats, beats.error().message());
  CHECK(fiberio::Clock::now() - start >= 100ms);  // the session's timer, not an early end
  CHECK(beats->sent >= 1);
  CHECK(beats->sent <= 10);   // the first beat one period in: at most one per period of the session
  CHECK(beats->echoed >= 1);  // the echoes of all but the last few beats came back in time
  CHECK(beats->echoed <= beats->sent);
  const auto port = std::to_string(listener->local_addr()->port());
  CHECK(run_main(example_heartbeat::heartbeat_main, {"heartbeat", "127.0.0.1:" + port, "5", "30"}) == 0);
  CHECK(run_main(example_heartbeat::heartbeat_main, {"heartbeat", "127.0.0.1"}) == 2);
  server.cancel();
  CHECK_THROWS_AS(server.join(), fiberio::Cancelled);
}

TEST_CASE("examples: job_pool answers every job through its oneshot, with the table as it was") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  // Jobs 1..9 see factor 2, jobs 10..20 factor 3 (each job is answered before the next is sent).
  CHECK(rt.block_on([] { return example_job_pool::run_pool(4, 20); }) == 2 * 45 + 3 * 165);
  CHECK(rt.block_on([] { return example_job_pool::run_pool(1, 1); }) == 2);
  CHECK(run_main(example_job_pool::job_pool_main, {"job_pool", "3", "8"}) == 0);
  CHECK(run_main(example_job_pool::job_pool_main, {"job_pool", "0"}) == 2);
}

TEST_CASE("examples: first_match stops its searchers once the reader has dropped its receiver") {
  for (const std::uint32_t threads : {1u, 3u}) {
    fiberio::Runtime rt{fiberio::Config{.threads = threads}};
    // One searcher sends 1, 2, 3... in order: the first multiple is the target itself.
    auto one = rt.block_on([] { return example_first_match::first_multiple(1, 1000); });
    CHECK(one.found == 1000);
    CHECK(one.made >= 1000);
    auto many = rt.block_on([] { return example_first_match::first_multiple(4, 997); });
    CHECK(many.found > 0);
    CHECK(many.found % 997 == 0);
    // Every searcher returned (join came back), so each send after the drop was refused.
    CHECK(many.made >= many.found / 4);
  }
  CHECK(run_main(example_first_match::first_match_main, {"first_match", "2", "50"}) == 0);
  CHECK(run_main(example_first_match::first_match_main, {"first_match", "0"}) == 2);
}

TEST_CASE("examples: graceful_shutdown serves until SIGTERM, then exits 0") {
  REQUIRE(kBlocked);
  // The function: serve, check the echo, signal, and it returns the signal.
  {
    fiberio::Runtime rt{fiberio::Config{.threads = 2}};
    auto listener = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
    REQUIRE(listener);
    auto served = rt.spawn([&] { return example_graceful_shutdown::serve_until_signal(*listener); });
    const auto reply = rt.block_on([&] {
      return example_client::request({"127.0.0.1", listener->local_addr()->port()}, "still there?");
    });
    REQUIRE(reply);
    CHECK(*reply == "still there?");
    REQUIRE(::kill(::getpid(), SIGTERM) == 0);
    CHECK(served.join() == SIGTERM);
  }
  // The program: a signal sent before its listener opens stays pending (blocked), so it is not lost.
  int status = -1;
  std::thread program([&] {
    status =
        run_main(example_graceful_shutdown::graceful_shutdown_main, {"graceful_shutdown", "127.0.0.1:0"});
  });
  std::this_thread::sleep_for(50ms);
  REQUIRE(::kill(::getpid(), SIGINT) == 0);
  program.join();
  CHECK(status == 0);
}
