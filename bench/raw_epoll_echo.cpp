// raw_epoll_echo — the floor fiberio-echo is measured against: an echo server written directly on epoll,
// one thread, level-triggered, no runtime at all. docs/benchmarks.md ("Echo server") compares syscalls per
// request and throughput of the two under bench/echo_load.
//
//   raw_epoll_echo [IPV4:PORT]        (default 127.0.0.1:0) prints "listening on 127.0.0.1:PORT", flushed
//
// Per readable event: one recv() and one send() of what it read; no read until EAGAIN (level-triggered
// epoll reports the socket again if more is left), so a request/response exchange costs recv + send plus
// a share of epoll_wait. A send that does not take everything keeps the rest, waits for EPOLLOUT and stops
// reading that socket meanwhile (backpressure). End of stream: shutdown the write side and close.
// Stop it with SIGTERM/SIGINT (default action). IPv4 only; a benchmark floor, not a server to deploy.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

namespace {

struct Pending {
  std::string bytes;  // not yet sent; non-empty only while waiting for EPOLLOUT
};

int die(const char* what) {
  std::perror(what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string text = argc > 1 ? argv[1] : "127.0.0.1:0";
  const auto colon = text.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, text.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "raw_epoll_echo: expected IPV4:PORT, got '%s'\n", text.c_str());
    return 2;
  }
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(text.c_str() + colon + 1)));

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return die("bind");
  if (::listen(listener, 1024) != 0) return die("listen");
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
  std::printf("listening on %s:%u\n", host, ntohs(addr.sin_port));
  std::fflush(stdout);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  std::unordered_map<int, Pending> pending;
  static char buffer[16 * 1024];
  epoll_event events[256];

  auto close_conn = [&](int fd) {
    pending.erase(fd);
    ::close(fd);  // also removes it from the epoll set
  };
  auto watch = [&](int fd, std::uint32_t what) {
    epoll_event e{};
    e.events = what;
    e.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
  };

  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;  // EAGAIN, or EMFILE: level-triggered, so it comes back
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        }
        continue;
      }
      if (events[i].events & EPOLLOUT) {
        std::string& rest = pending[fd].bytes;
        const ssize_t w = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
          close_conn(fd);
          continue;
        }
        if (w > 0) rest.erase(0, static_cast<std::size_t>(w));
        if (rest.empty()) watch(fd, EPOLLIN);
        continue;
      }
      const ssize_t r = ::recv(fd, buffer, sizeof buffer, 0);
      if (r == 0 || (r < 0 && errno != EAGAIN)) {
        if (r == 0) ::shutdown(fd, SHUT_WR);
        close_conn(fd);
        continue;
      }
      if (r < 0) continue;
      const ssize_t w = ::send(fd, buffer, static_cast<std::size_t>(r), MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) {
        close_conn(fd);
        continue;
      }
      const std::size_t sent = w < 0 ? 0 : static_cast<std::size_t>(w);
      if (sent < static_cast<std::size_t>(r)) {
        pending[fd].bytes.assign(buffer + sent, static_cast<std::size_t>(r) - sent);
        watch(fd, EPOLLOUT);
      }
    }
  }
}
