// tests/net_support.hpp — helpers shared by the net_* tests: byte views, a deterministic data pattern with
// a checksum, loopback listeners, and the runtime configurations the tests loop over.
#pragma once

#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>
#include "backends.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace net_test {

inline std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

inline std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// A reproducible byte stream: byte i of stream `seed` is pattern_byte(seed, i).
inline std::byte pattern_byte(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 32;
  return static_cast<std::byte>(x);
}

inline void fill_pattern(std::span<std::byte> out, std::uint64_t seed, std::uint64_t offset) {
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = pattern_byte(seed, offset + i);
}

// FNV-1a, 64 bit: order-sensitive, good enough to catch lost, duplicated or reordered bytes.
class Checksum {
 public:
  void add(std::span<const std::byte> data) {
    for (std::byte b : data) {
      hash_ ^= static_cast<std::uint64_t>(b);
      hash_ *= 0x100000001B3ull;
    }
    size_ += data.size();
  }
  std::uint64_t value() const { return hash_; }
  std::uint64_t size() const { return size_; }

 private:
  std::uint64_t hash_ = 0xCBF29CE484222325ull;
  std::uint64_t size_ = 0;
};

inline std::uint64_t pattern_checksum(std::uint64_t seed, std::uint64_t total) {
  Checksum sum;
  std::vector<std::byte> chunk(1 << 16);
  for (std::uint64_t off = 0; off < total; off += chunk.size()) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - off));
    fill_pattern(std::span(chunk).first(n), seed, off);
    sum.add(std::span(chunk).first(n));
  }
  return sum.value();
}

// Reads until end of stream, checksumming; fails the test on an error.
inline Checksum drain(fiberio::StreamSocket& s, std::size_t buffer_size = 50'000) {
  Checksum sum;
  std::vector<std::byte> buf(buffer_size);  // odd size: reads straddle the writer's chunks
  for (;;) {
    auto n = s.read_some(buf);
    REQUIRE_MESSAGE(n, n.error().message());
    if (*n == 0) return sum;
    sum.add(std::span(buf).first(*n));
  }
}

// Writes `total` bytes of pattern `seed`, alternating write_all and writev_all.
inline void send_pattern(fiberio::StreamSocket& s, std::uint64_t seed, std::uint64_t total) {
  std::vector<std::byte> chunk(96 * 1024);
  std::uint64_t off = 0;
  bool vectored = false;
  while (off < total) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - off));
    fill_pattern(std::span(chunk).first(n), seed, off);
    if (vectored) {
      // Three uneven pieces, one empty, through sendmsg.
      const std::size_t a = n / 3, b = n / 2;
      const std::span<const std::byte> pieces[] = {std::span(chunk).first(a), std::span<const std::byte>(),
                                                   std::span(chunk).subspan(a, b - a),
                                                   std::span(chunk).subspan(b, n - b)};
      auto w = s.writev_all(pieces);
      REQUIRE_MESSAGE(w, w.error().message());
    } else {
      auto w = s.write_all(std::span(chunk).first(n));
      REQUIRE_MESSAGE(w, w.error().message());
    }
    vectored = !vectored;
    off += n;
  }
}

// An idle loop's echo handler (runtime/idle_loop.hpp): what is there, back, until the socket is drained;
// at the end of stream it shuts its side down and stops.
inline fiberio::Next echo_ready(fiberio::TcpStream& stream) {
  std::byte buf[4096];
  for (;;) {
    auto n = stream.try_read(buf);
    if (!n) {
      return n.error() == std::errc::resource_unavailable_try_again ? fiberio::Next::wait
                                                                    : fiberio::Next::stop;
    }
    if (*n == 0) {
      (void)stream.shutdown_write();
      return fiberio::Next::stop;
    }
    if (!stream.write_all(std::span(buf).first(*n))) return fiberio::Next::stop;
  }
}

inline fiberio::TcpListener listen_loopback(bool v6 = false, fiberio::TcpListenOptions options = {}) {
  auto l = fiberio::TcpListener::bind(
      v6 ? fiberio::SocketAddress::loopback_v6(0) : fiberio::SocketAddress::loopback_v4(0), options);
  REQUIRE_MESSAGE(l, l.error().message());
  return std::move(*l);
}

inline fiberio::SocketAddress address_of(const fiberio::TcpListener& l) {
  auto a = l.local_addr();
  REQUIRE(a);
  return *a;
}

// A port on which nothing listens (bound, then closed: nobody else takes it that fast on loopback).
inline fiberio::SocketAddress closed_port(bool v6 = false) {
  auto l = listen_loopback(v6);
  auto a = address_of(l);
  return a;  // `l` closes here
}

}  // namespace net_test
