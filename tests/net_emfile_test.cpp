// A listener out of file descriptors (EMFILE) neither spins nor dies: accept() backs off, the connection
// waits in the backlog, and it is accepted once fds are free again. Runs in a forked child with a low
// RLIMIT_NOFILE, on every backend; the parent plays the clients with plain blocking sockets.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>
#include "backends.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int kClients = 2;
constexpr auto kWindow = 500ms;  // how long the child watches its starving acceptor

void say(int fd, const std::string& line) {
  const std::string l = line + "\n";
  (void)!::write(fd, l.data(), l.size());
}

double cpu_ms() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3;
}

// The child: returns "" on success, else what went wrong. Reports "port N", "full", then a summary.
std::string child(fiberio::BackendKind kind, int report) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = 64;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return "setrlimit failed";
  return fiberio::block_on(
      [report]() -> std::string {
        auto listener = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
        if (!listener) return "bind: " + listener.error().message();
        say(report, "port " + std::to_string(listener->local_addr()->port()));
        // The acceptor serves kClients connections, greeting each.
        auto acceptor = fiberio::spawn([&]() -> std::string {
          for (int i = 0; i < kClients; ++i) {
            auto conn = listener->accept(fiberio::Clock::now() + 30s);
            if (!conn) return "accept: " + conn.error().message();
            if (!conn->stream.write_all("hello")) return "write failed";
          }
          return "";
        });
        // Use up every fd.
        std::vector<int> hogs;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
          hogs.push_back(fd);
        if (errno != EMFILE) return std::string("filling fds: ") + std::strerror(errno);
        say(report, "full");
        // Wait for the clients' connection to make accept fail, then watch the acceptor for a while.
        const auto give_up = fiberio::Clock::now() + 20s;
        while (listener->accept_backoffs() == 0 && fiberio::Clock::now() < give_up)
          fiberio::sleep_for(1ms);
        if (listener->accept_backoffs() == 0) return "accept never hit EMFILE";
        const std::uint64_t backoffs_before = listener->accept_backoffs();
        const double cpu_before = cpu_ms();
        fiberio::sleep_for(kWindow);
        const double cpu = cpu_ms() - cpu_before;
        const std::uint64_t backoffs = listener->accept_backoffs() - backoffs_before;
        if (acceptor.is_finished()) return "acceptor gave up while starved";
        // Free the fds: the waiting connections are accepted.
        for (int fd : hogs)
          ::close(fd);
        if (!acceptor.wait_until(fiberio::Clock::now() + 20s)) return "not accepted after fds were freed";
        if (auto err = acceptor.join(); !err.empty()) return err;
        say(report, "window backoffs " + std::to_string(backoffs) + " cpu_ms " +
                        std::to_string(static_cast<int>(cpu)));
        return "";
      },
      fiberio::Config{.backend = kind});
}

// Reads one line from the child, giving up after 30 s (a child that spins never reports).
std::string read_line(int fd) {
  std::string line;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30'000) != 1) return line + "(timed out)";
    char c;
    if (::read(fd, &c, 1) != 1 || c == '\n') return line;
    line += c;
  }
}

}  // namespace

TEST_CASE("emfile: accept backs off without spinning and serves again once fds are free") {
  for_each_backend([](fiberio::BackendKind kind) {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(pipe_fds[0]);
      std::string error;
      try {
        error = child(kind, pipe_fds[1]);
      } catch (const std::exception& e) {
        error = std::string("exception: ") + e.what();
      }
      say(pipe_fds[1], error.empty() ? "ok" : "error " + error);
      ::_exit(error.empty() ? 0 : 1);
    }
    ::close(pipe_fds[1]);
    const std::string port_line = read_line(pipe_fds[0]);
    REQUIRE(port_line.starts_with("port "));
    const int port = std::stoi(port_line.substr(5));
    CHECK(read_line(pipe_fds[0]) == "full");

    // The clients connect (the kernel completes the handshake; the child cannot accept yet).
    std::vector<int> clients;
    for (int i = 0; i < kClients; ++i) {
      const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      REQUIRE(s >= 0);
      const timeval timeout{30, 0};
      ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(port));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      REQUIRE(::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      clients.push_back(s);
    }
    for (int s : clients) {
      char greeting[5] = {};
      std::size_t got = 0;
      while (got < sizeof greeting) {
        const ssize_t n = ::recv(s, greeting + got, sizeof greeting - got, 0);
        if (n < 0 && errno == EINTR) continue;  // a receive with a timeout is not restarted after a signal
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
      CHECK(std::string(greeting, got) == "hello");
      ::close(s);
    }
    const std::string summary = read_line(pipe_fds[0]);
    const std::string verdict = read_line(pipe_fds[0]);
    ::close(pipe_fds[0]);
    if (verdict != "ok") ::kill(pid, SIGKILL);  // it may be stuck
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    MESSAGE(summary);  // e.g. "window backoffs 9 cpu_ms 0"
    CHECK(verdict == "ok");
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    // "backoffs N cpu_ms M" over the window: a spinning acceptor would retry thousands of times and burn
    // the whole window in CPU; backing off 1 ms doubling to 100 ms sleeps about a dozen times.
    unsigned backoffs = 0, cpu = 0;
    REQUIRE(std::sscanf(summary.c_str(), "window backoffs %u cpu_ms %u", &backoffs, &cpu) == 2);
    CHECK(backoffs >= 1);
    CHECK(backoffs <= 40);
    CHECK(cpu < 250);  // of a 500 ms window; generous, this is no speed test
  });
}
