// idle_echo — an echo server whose connections end when their client stays quiet too long, or all at
// once when the server stops: each connection's fiber waits on its socket, a stop event and a timer at
// once, with fiberio::select.
// Usage: idle_echo [HOST:PORT] [IDLE_MS] [RUN_MS]   (defaults 127.0.0.1:7000, 5000, and no time limit)
#include <fiberio/fiberio.hpp>

#include <array>
#include <chrono>
#include <iostream>
#include <string>

enum class Ended { closed, idle, stopped };

// Echoes until the client closes, stays quiet for `idle`, or `stop` is set.
Ended echo_until_idle(fiberio::TcpStream& stream, fiberio::Event& stop, std::chrono::milliseconds idle) {
  std::array<std::byte, 4096> buffer;
  for (;;) {
    auto woke = fiberio::select(fiberio::on_readable(stream.async_fd()), fiberio::on_set(stop),
                                fiberio::on_timeout(idle));
    if (woke.index() == 1) return Ended::stopped;
    if (woke.index() == 2) return Ended::idle;
    auto n = stream.read_some(buffer);  // readable: returns at once, with bytes, 0 or an error
    if (!n || *n == 0) return Ended::closed;
    if (!stream.write_all(std::span(buffer).first(*n))) return Ended::closed;
  }
}

// Accepts until `stop` is set (a select on the listener, too); every connection runs echo_until_idle and
// says how it ended. Returns once every connection has ended.
void serve(fiberio::TcpListener& listener, fiberio::Event& stop, std::chrono::milliseconds idle) {
  fiberio::WaitGroup connections;
  while (fiberio::select(fiberio::on_readable(listener.async_fd()), fiberio::on_set(stop)).index() == 0) {
    auto conn = listener.accept();
    if (!conn) continue;  // the client left before we accepted it
    connections.add();
    fiberio::spawn([&, stream = std::move(conn->stream)]() mutable {
      const Ended how = echo_until_idle(stream, stop, idle);
      std::cout << (how == Ended::idle ? "idle" : how == Ended::stopped ? "stopped" : "closed") << std::endl;
      connections.done();
    }).detach();
  }
  connections.wait();  // they reference `stop` and `connections`
}

int main(int argc, char** argv) {
  auto addr = fiberio::SocketAddress::parse(argc > 1 ? argv[1] : "127.0.0.1:7000");
  if (!addr) {
    std::cerr << addr.error() << "\n";
    return 2;
  }
  const std::chrono::milliseconds idle{argc > 2 ? std::stol(argv[2]) : 5000};
  const long run_ms = argc > 3 ? std::stol(argv[3]) : -1;
  return fiberio::block_on([&] {
    auto listener = fiberio::TcpListener::bind(*addr);
    if (!listener) {
      std::cerr << "cannot listen on " << addr->to_string() << ": " << listener.error().message() << "\n";
      return 1;
    }
    std::cout << "listening on " << listener->local_addr()->to_string() << std::endl;
    fiberio::Event stop;
    auto server = fiberio::spawn([&] { serve(*listener, stop, idle); });
    if (run_ms >= 0) {  // else: serves until killed
      fiberio::sleep_for(std::chrono::milliseconds(run_ms));
      stop.set();  // the server stops accepting, and every connection still open ends now
    }
    server.join();
    return 0;
  });
}
