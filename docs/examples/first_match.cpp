// first_match — searcher fibers send candidates through a channel until the reader has what it wants. The
// reader then drops its Receiver: every searcher's next send is refused, so they stop by themselves and no
// fiber is left computing for nobody. The channel's Sender and Receiver handles own it from both ends.
// Usage: first_match [SEARCHERS] [TARGET]   (defaults 4 and 1000; prints the first multiple of TARGET seen)
#include <fiberio/fiberio.hpp>

#include <iostream>
#include <string>
#include <vector>

struct Search {
  long found = 0;  // the first candidate that was a multiple of the target
  long made = 0;   // candidates the searchers sent, all told
};

Search first_multiple(int searchers, long target) {
  auto [tx, rx] = fiberio::channel<long>(8);
  std::vector<fiberio::JoinHandle<long>> pool;
  for (int k = 1; k <= searchers; ++k) {
    pool.push_back(fiberio::spawn([tx, k, searchers] {  // each searcher holds a copy of the sender
      long made = 0;
      for (long n = k; tx.send(n); n += searchers)  // false once every receiver is gone
        ++made;
      return made;
    }));
  }
  { auto mine = std::move(tx); }  // only the searchers send now: once they all stop, recv() ends

  Search result;
  while (auto n = rx.recv()) {
    if (*n % target == 0) {
      result.found = *n;
      break;
    }
  }
  { auto gone = std::move(rx); }  // the last receiver: queued candidates are dropped, sends refused
  for (auto& searcher : pool)
    result.made += searcher.join();
  return result;
}

int main(int argc, char** argv) {
  const int searchers = argc > 1 ? std::stoi(argv[1]) : 4;
  const long target = argc > 2 ? std::stol(argv[2]) : 1000;
  if (searchers < 1 || target < 1) {
    std::cerr << "first_match: SEARCHERS and TARGET must be at least 1\n";
    return 2;
  }
  fiberio::Runtime runtime;
  const Search s = runtime.block_on([&] { return first_multiple(searchers, target); });
  std::cout << s.found << " (after " << s.made << " candidates)\n";
  return 0;
}
