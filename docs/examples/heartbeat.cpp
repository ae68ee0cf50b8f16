// heartbeat — a client that sends a heartbeat line on a fixed schedule and counts the echoes that come
// back, for a limited session: an Interval, a Timer and a socket in one select.
// Usage: heartbeat HOST:PORT [PERIOD_MS] [SESSION_MS]   (defaults 1000 and 5000; run it against echo_server)
#include <fiberio/fiberio.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

struct Beats {
  int sent = 0;
  int echoed = 0;
};

// Sends "beat\n" every `period` until `session` has passed; counts the lines echoed back meanwhile.
fiberio::IoResult<Beats> heartbeat(const fiberio::SocketAddress& server, std::chrono::milliseconds period,
                                   std::chrono::milliseconds session) {
  auto stream = fiberio::TcpStream::connect(server, 1s);
  if (!stream) return std::unexpected(stream.error());
  fiberio::Interval every{period,
                          fiberio::MissedTick::skip};  // a busy moment drops beats, never bunches them
  fiberio::Timer end{session};
  Beats beats;
  std::array<std::byte, 256> buffer;
  for (;;) {
    auto woke = fiberio::select(fiberio::on_tick(every), fiberio::on_readable(stream->async_fd()),
                                fiberio::on_fire(end));
    if (woke.index() == 2) return beats;  // the session is over
    if (woke.index() == 0) {
      if (auto sent = stream->write_all("beat\n"); !sent) return std::unexpected(sent.error());
      ++beats.sent;
      continue;
    }
    auto n = stream->read_some(buffer);
    if (!n) return std::unexpected(n.error());
    if (*n == 0) return beats;  // the server closed
    beats.echoed += static_cast<int>(std::count(buffer.begin(), buffer.begin() + *n, std::byte{'\n'}));
  }
}

int main(int argc, char** argv) {
  auto server = fiberio::SocketAddress::parse(argc > 1 ? argv[1] : "127.0.0.1:7000");
  if (!server) {
    std::cerr << server.error() << "\n";
    return 2;
  }
  const std::chrono::milliseconds period{argc > 2 ? std::stol(argv[2]) : 1000};
  const std::chrono::milliseconds session{argc > 3 ? std::stol(argv[3]) : 5000};
  return fiberio::block_on([&] {
    auto beats = heartbeat(*server, period, session);
    if (!beats) {
      std::cout << "failed: " << beats.error().message() << "\n";
      return 1;
    }
    std::cout << beats->sent << " beats sent, " << beats->echoed << " echoed\n";
    return 0;
  });
}
