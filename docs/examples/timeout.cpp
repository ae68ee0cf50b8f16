// timeout — limits on single operations, and a time limit on a whole exchange.
// Usage: timeout HOST:PORT   (asks the server to echo "ping"; a server that stays silent times out)
#include <fiberio/fiberio.hpp>

#include <array>
#include <iostream>

using namespace std::chrono_literals;

// One limit per step: connect within 1 s, an answer within 500 ms.
std::error_code ping(const fiberio::SocketAddress& server) {
  auto stream = fiberio::TcpStream::connect(server, 1s);
  if (!stream) return stream.error();
  if (auto sent = stream->write_all("ping"); !sent) return sent.error();
  std::array<std::byte, 4> pong;
  if (auto got = stream->read_exact(pong, 500ms); !got) return got.error();
  return {};
}

int main(int argc, char** argv) {
  auto server = fiberio::SocketAddress::parse(argc > 1 ? argv[1] : "127.0.0.1:7000");
  if (!server) {
    std::cerr << server.error() << "\n";
    return 2;
  }
  return fiberio::block_on([&] {
    if (auto error = ping(*server); error == std::errc::timed_out) {
      std::cout << "no answer in time\n";
    } else if (error) {
      std::cout << "failed: " << error.message() << "\n";
    } else {
      std::cout << "pong\n";
    }
    // A limit on a whole exchange, made of calls without deadlines of their own: the work runs in a
    // child fiber, cancelled at the limit (its blocking call throws Cancelled and it unwinds).
    auto echoed = fiberio::with_timeout(1s, [&]() -> fiberio::IoResult<std::string> {
      auto stream = fiberio::TcpStream::connect(*server);
      if (!stream) return std::unexpected(stream.error());
      if (auto sent = stream->write_all("ping"); !sent) return std::unexpected(sent.error());
      (void)stream->shutdown_write();
      std::string all;
      std::array<std::byte, 64> buffer;
      for (;;) {
        auto n = stream->read_some(buffer);
        if (!n) return std::unexpected(n.error());
        if (*n == 0) return all;
        all.append(reinterpret_cast<const char*>(buffer.data()), *n);
      }
    });
    if (!echoed) {
      std::cout << "exchange: " << echoed.error().message() << "\n";  // the limit (timed_out) or a failure
    } else {
      std::cout << "exchange: " << *echoed << "\n";
    }
    return 0;
  });
}
