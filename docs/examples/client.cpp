// client — resolves HOST:PORT, sends a message, half-closes, prints the whole reply.
// Usage: client HOST:PORT [MESSAGE]     e.g. client localhost:7000 hello
#include <fiberio/fiberio.hpp>

#include <array>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

// Sends `message`, says "that's all" (half-close), and reads the reply until the server closes.
fiberio::IoResult<std::string> request(const fiberio::HostPort& server, std::string_view message) {
  auto addrs = fiberio::resolve(server);  // getaddrinfo runs on the blocking pool, not on this worker
  if (!addrs) return std::unexpected(addrs.error());
  auto stream = fiberio::TcpStream::connect(*addrs, 3s);  // tries each address
  if (!stream) return std::unexpected(stream.error());
  if (auto sent = stream->write_all(message); !sent) return std::unexpected(sent.error());
  if (auto done = stream->shutdown_write(); !done) return std::unexpected(done.error());
  std::string reply;
  std::array<std::byte, 4096> buffer;
  for (;;) {
    auto n = stream->read_some(buffer, 5s);
    if (!n) return std::unexpected(n.error());  // errc::timed_out, errc::connection_reset...
    if (*n == 0) return reply;                  // end of stream: the reply is complete
    reply.append(reinterpret_cast<const char*>(buffer.data()), *n);
  }
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: client HOST:PORT [MESSAGE]\n";
    return 2;
  }
  auto server = fiberio::HostPort::parse(argv[1]);
  if (!server) {
    std::cerr << server.error() << "\n";
    return 2;
  }
  const std::string message = argc > 2 ? argv[2] : "hello";
  return fiberio::block_on([&] {
    auto reply = request(*server, message);
    if (!reply) {
      std::cerr << server->to_string() << ": " << reply.error().message() << "\n";
      return 1;
    }
    std::cout << *reply << std::endl;
    return 0;
  });
}
