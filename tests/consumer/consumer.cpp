// An out-of-tree program that uses an installed fiberio through pkg-config, as a user's project would.
#include <fiberio.hpp>

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
  std::printf("consumer: sum=%d\n", sum);
  return sum == 55 ? 0 : 1;
}
