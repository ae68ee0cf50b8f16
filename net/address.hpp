// net/address.hpp — socket addresses (IPv4, IPv6, Unix) as values: parse, format, compare; and resolve(),
// which turns a host name into addresses without stalling a worker.
//
//   auto a = fiberio::SocketAddress::parse("127.0.0.1:80");      // also "[::1]:8080", "unix:/run/x.sock"
//   if (!a) die(a.error());                                       // "malformed address '...': missing port"
//   auto hp = fiberio::HostPort::parse("localhost:6379");          // a name: resolve it
//   auto addrs = fiberio::resolve(hp->host, hp->port);             // getaddrinfo on the blocking pool
//
// SocketAddress owns a sockaddr_storage and its length; it never refers to anything else. Formatting:
// "1.2.3.4:80", "[::1]:80" ("[fe80::1%2]:80" with a scope), "/path" or "@name" (abstract) for Unix,
// "(unnamed)" for an unbound Unix socket, "(none)" for an empty address. parse(to_string()) round-trips for
// IP addresses. Ports are 0..65535; a missing port, junk after it or a larger value is an error.
// Thread-safety: a value type; resolve() may be called from any fiber or thread.
// Invariant: size() <= capacity() and every byte of the storage past size() is zero, so == compares bytes.
#pragma once

#include <fiberio/net/error.hpp>

#include <sys/socket.h>

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace fiberio {

class SocketAddress {
 public:
  enum class Family : std::uint8_t { none, ipv4, ipv6, unix_domain };

  SocketAddress() noexcept;  // Family::none
  // Copies `len` bytes of `addr` (as returned by accept, getsockname, recvfrom...).
  SocketAddress(const sockaddr* addr, socklen_t len) noexcept;

  // Numeric addresses only: "a.b.c.d:port", "[v6]:port", "[v6%scope]:port", "unix:/path", "unix:@abstract".
  // The error message quotes `text` and says what is wrong. For "name:port" use HostPort and resolve().
  static std::expected<SocketAddress, std::string> parse(std::string_view text);

  static SocketAddress loopback_v4(std::uint16_t port) noexcept;  // 127.0.0.1
  static SocketAddress loopback_v6(std::uint16_t port) noexcept;  // ::1
  static SocketAddress any_v4(std::uint16_t port) noexcept;       // 0.0.0.0
  static SocketAddress any_v6(std::uint16_t port) noexcept;       // ::
  // A Unix socket path (at most 107 bytes) or an abstract name (Linux; no file, leading NUL implied).
  static std::expected<SocketAddress, std::string> unix_path(std::string_view path);
  static std::expected<SocketAddress, std::string> unix_abstract(std::string_view name);
  // The address of a Unix socket with no name (an unbound client): to_string() gives "(unnamed)".
  static SocketAddress unix_unnamed() noexcept;

  Family family() const noexcept;
  bool is_ip() const noexcept { return family() == Family::ipv4 || family() == Family::ipv6; }
  bool is_unix() const noexcept { return family() == Family::unix_domain; }
  // IP only (0 otherwise).
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  SocketAddress with_port(std::uint16_t port) const noexcept {
    SocketAddress copy = *this;
    copy.set_port(port);
    return copy;
  }
  // The host part: "127.0.0.1", "::1" (no brackets), the Unix path or "@name".
  std::string host() const;
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  // For calls that fill an address in: the full capacity; then resize to what the kernel wrote.
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  void resize(socklen_t len) noexcept { len_ = len > capacity() ? capacity() : len; }
  // The sockaddr's address family (AF_INET...), AF_UNSPEC when empty.
  int os_family() const noexcept { return len_ == 0 ? AF_UNSPEC : storage_.ss_family; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_ = 0;
};

// "host:port" where host may be a name; "[v6]:port" for IPv6 literals. The error quotes the input.
struct HostPort {
  std::string host;  // without brackets
  std::uint16_t port = 0;

  static std::expected<HostPort, std::string> parse(std::string_view text);
  std::string to_string() const;  // brackets IPv6 literals again
};

// Resolves `host` (a name or a numeric address) to addresses with `port`, in getaddrinfo's preferred
// order, without duplicates. Numeric hosts are answered at once; names are looked up by getaddrinfo on
// the blocking pool (never on a worker thread). Errors: resolver_category() codes (EAI_NONAME...).
// Throws Cancelled if the calling fiber is cancelled while the lookup runs (the lookup finishes alone).
IoResult<std::vector<SocketAddress>> resolve(std::string_view host, std::uint16_t port);
inline IoResult<std::vector<SocketAddress>> resolve(const HostPort& hp) {
  return resolve(hp.host, hp.port);
}

}  // namespace fiberio
