// graceful_shutdown — an echo server that stops cleanly on SIGINT or SIGTERM.
// Usage: graceful_shutdown [HOST:PORT]    then press Ctrl-C, or: kill -TERM <pid>
#include <fiberio/fiberio.hpp>

#include <signal.h>
#include <string.h>

#include <array>
#include <iostream>

void echo(fiberio::TcpStream stream) {
  std::array<std::byte, 8192> buffer;
  for (;;) {
    auto n = stream.read_some(buffer);
    if (!n || *n == 0) break;
    if (!stream.write_all(std::span(buffer).first(*n))) break;
  }
}

// Serves `listener` until SIGINT or SIGTERM; returns the signal's number (or -1 if none can be awaited).
int serve_until_signal(fiberio::TcpListener& listener) {
  auto signals = fiberio::SignalListener::open({SIGINT, SIGTERM});
  if (!signals) {
    std::cerr << "signals: " << signals.error().message() << "\n";
    return -1;
  }
  auto acceptor = fiberio::spawn([&] {
    while (auto conn = listener.accept()) {
      fiberio::spawn([s = std::move(conn->stream)]() mutable { echo(std::move(s)); }).detach();
    }
  });
  auto signo = signals->wait();  // only this fiber waits; the workers keep serving
  acceptor.cancel();             // the acceptor's accept() throws Cancelled: it stops accepting
  try {
    acceptor.join();
  } catch (const fiberio::Cancelled&) {
  }
  return signo ? *signo : -1;
}

int main(int argc, char** argv) {
  // First, before any thread exists: the Runtime's workers inherit this mask, so the signals reach the
  // SignalListener instead of killing the process.
  if (auto error = fiberio::block_signals({SIGINT, SIGTERM})) {
    std::cerr << "block_signals: " << error.message() << "\n";
    return 1;
  }
  auto addr = fiberio::SocketAddress::parse(argc > 1 ? argv[1] : "127.0.0.1:7000");
  if (!addr) {
    std::cerr << addr.error() << "\n";
    return 2;
  }
  fiberio::Runtime runtime;
  const int signo = runtime.block_on([&] {
    auto listener = fiberio::TcpListener::bind(*addr);
    if (!listener) {
      std::cerr << "cannot listen on " << addr->to_string() << ": " << listener.error().message() << "\n";
      return -1;
    }
    std::cout << "listening on " << listener->local_addr()->to_string() << std::endl;
    return serve_until_signal(*listener);
  });
  if (signo < 0) return 1;
  std::cerr << strsignal(signo) << ": shutting down\n";
  return 0;  // ~Runtime cancels the connections still open and joins the workers
}
