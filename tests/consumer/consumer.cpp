// An out-of-tree program that uses an installed fiberio, as a user's project would (pkg-config, CMake's
// find_package, or a meson subproject). It is built with tests/consumer/shadow/ first on the include
// path: a user's own net/error.hpp (and others) there must change nothing.
#include <fiberio/fiberio.hpp>
#include <fiberio/net/tcp_stream.hpp>

#include <cstdio>

int main() {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  fiberio::Channel<int> ch{4};
  auto producer = rt.spawn([&] {
    for (int i = 1; i <= 10; ++i)
      ch.send(i);
    ch.close();
  });
  const int sum = rt.block_on([&] {
    int s = 0;
    while (auto v = ch.recv())
      s += *v;
    return s;
  });
  producer.join();
  const bool error_named = !std::error_code(fiberio::NetErrc::eof).message().empty();
  std::printf("consumer: sum=%d\n", sum);
  return sum == 55 && error_named ? 0 : 1;
}
