// echo_server — a TCP server with one fiber per connection; every byte comes back.
// Usage: echo_server [HOST:PORT]   (default 127.0.0.1:7000; port 0 picks a free port)
#include <fiberio/fiberio.hpp>

#include <array>
#include <iostream>

// Echoes until the client half-closes, then closes this side too.
void echo(fiberio::TcpStream stream) {
  std::array<std::byte, 8192> buffer;  // fine on a 64 KiB fiber stack; put much bigger ones on the heap
  for (;;) {
    auto n = stream.read_some(buffer);
    if (!n || *n == 0) break;  // an error, or the end of the client's data
    if (!stream.write_all(std::span(buffer).first(*n))) break;
  }
  (void)stream.shutdown_write();
}

// Accepts until an error (or until this fiber is cancelled: accept() then throws fiberio::Cancelled).
void serve(fiberio::TcpListener& listener) {
  for (;;) {
    auto conn = listener.accept();  // out of fds? accept() waits and retries by itself
    if (!conn) {
      std::cerr << "accept: " << conn.error().message() << "\n";
      return;
    }
    fiberio::spawn([stream = std::move(conn->stream)]() mutable { echo(std::move(stream)); }).detach();
  }
}

int main(int argc, char** argv) {
  auto addr = fiberio::SocketAddress::parse(argc > 1 ? argv[1] : "127.0.0.1:7000");
  if (!addr) {
    std::cerr << addr.error() << "\n";  // e.g. "malformed address '127.0.0.1': missing port"
    return 2;
  }
  fiberio::Runtime runtime;
  return runtime.block_on([&] {
    auto listener = fiberio::TcpListener::bind(*addr);
    if (!listener) {
      std::cerr << "cannot listen on " << addr->to_string() << ": " << listener.error().message() << "\n";
      return 1;
    }
    std::cout << "listening on " << listener->local_addr()->to_string() << std::endl;
    serve(*listener);
    return 1;
  });
}
