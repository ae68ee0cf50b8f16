#include <fiberio/net/address.hpp>

#include <fiberio/net/blocking_pool.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <memory>

namespace fiberio {
namespace {

constexpr std::size_t kSunPathOffset = offsetof(sockaddr_un, sun_path);
constexpr std::size_t kSunPathMax = sizeof(sockaddr_un::sun_path) - 1;  // keep room for a NUL

std::string malformed(std::string_view text, std::string_view why) {
  return "malformed address '" + std::string(text) + "': " + std::string(why);
}

struct Split {
  std::string_view host;
  std::uint16_t port = 0;
  bool bracketed = false;
};

// "host:port" / "[host]:port" into its parts; the error quotes `text`.
std::expected<Split, std::string> split_host_port(std::string_view text) {
  if (text.empty()) return std::unexpected(malformed(text, "empty"));
  Split out;
  std::string_view rest;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::unexpected(malformed(text, "missing ']'"));
    out.host = text.substr(1, close - 1);
    out.bracketed = true;
    rest = text.substr(close + 1);
    if (rest.empty()) return std::unexpected(malformed(text, "missing port"));
    if (rest.front() != ':') return std::unexpected(malformed(text, "expected ':' after ']'"));
    rest.remove_prefix(1);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::unexpected(malformed(text, "missing port"));
    out.host = text.substr(0, colon);
    if (out.host.find(':') != std::string_view::npos) {
      return std::unexpected(malformed(text, "an IPv6 address needs brackets, as in [::1]:80"));
    }
    rest = text.substr(colon + 1);
  }
  if (out.host.empty()) return std::unexpected(malformed(text, "missing host"));
  if (rest.empty()) return std::unexpected(malformed(text, "missing port"));
  if (!std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::unexpected(malformed(text, "port '" + std::string(rest) + "' is not a number"));
  }
  unsigned long value = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
  if (ec != std::errc{} || end != rest.data() + rest.size() || value > 65535) {
    return std::unexpected(malformed(text, "port " + std::string(rest) + " is out of range (0-65535)"));
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

// A numeric IPv4 or IPv6 host ("1.2.3.4", "::1", "fe80::1%eth0") with `port`; an empty error string
// means "not numeric" (a name), anything else is a real error.
std::expected<SocketAddress, std::string> numeric_host(std::string_view host, std::uint16_t port) {
  const std::string h(host);
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return SocketAddress(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
  }
  sockaddr_in6 v6{};
  const auto percent = h.find('%');
  const std::string ip = h.substr(0, percent);
  if (::inet_pton(AF_INET6, ip.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    if (percent != std::string::npos) {
      const std::string scope = h.substr(percent + 1);
      unsigned long id = 0;
      const auto [end, ec] = std::from_chars(scope.data(), scope.data() + scope.size(), id);
      if (!scope.empty() && ec == std::errc{} && end == scope.data() + scope.size() && id <= UINT32_MAX) {
        v6.sin6_scope_id = static_cast<std::uint32_t>(id);
      } else if (const unsigned index = ::if_nametoindex(scope.c_str()); index != 0) {
        v6.sin6_scope_id = index;
      } else {
        return std::unexpected("unknown interface '" + scope + "'");
      }
    }
    return SocketAddress(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
  }
  return std::unexpected(std::string());
}

}  // namespace

SocketAddress::SocketAddress() noexcept {
  std::memset(&storage_, 0, sizeof storage_);
}

SocketAddress::SocketAddress(const sockaddr* addr, socklen_t len) noexcept : SocketAddress() {
  if (!addr) return;
  len_ = std::min<socklen_t>(len, capacity());
  std::memcpy(&storage_, addr, len_);
}

std::expected<SocketAddress, std::string> SocketAddress::parse(std::string_view text) {
  if (text.starts_with("unix:")) {
    std::string_view rest = text.substr(5);
    auto a = !rest.empty() && rest.front() == '@' ? unix_abstract(rest.substr(1)) : unix_path(rest);
    if (!a) return std::unexpected(malformed(text, a.error()));
    return a;
  }
  auto split = split_host_port(text);
  if (!split) return std::unexpected(split.error());
  auto a = numeric_host(split->host, split->port);
  if (a) {
    if (!split->bracketed && a->family() == Family::ipv6)
      return std::unexpected(malformed(text, "IPv6 needs brackets"));
    if (split->bracketed && a->family() != Family::ipv6) {
      return std::unexpected(malformed(text, "only IPv6 addresses go in brackets"));
    }
    return a;
  }
  if (!a.error().empty()) return std::unexpected(malformed(text, a.error()));
  return std::unexpected(malformed(
      text, "'" + std::string(split->host) + "' is not a numeric IP address (resolve() looks up names)"));
}

SocketAddress SocketAddress::loopback_v4(std::uint16_t port) noexcept {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(port);
  v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
}

SocketAddress SocketAddress::loopback_v6(std::uint16_t port) noexcept {
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(port);
  v6.sin6_addr = in6addr_loopback;
  return SocketAddress(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
}

SocketAddress SocketAddress::any_v4(std::uint16_t port) noexcept {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  v4.sin_port = htons(port);
  v4.sin_addr.s_addr = htonl(INADDR_ANY);
  return SocketAddress(reinterpret_cast<const sockaddr*>(&v4), sizeof v4);
}

SocketAddress SocketAddress::any_v6(std::uint16_t port) noexcept {
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(port);
  v6.sin6_addr = in6addr_any;
  return SocketAddress(reinterpret_cast<const sockaddr*>(&v6), sizeof v6);
}

std::expected<SocketAddress, std::string> SocketAddress::unix_path(std::string_view path) {
  if (path.empty()) return std::unexpected(std::string("empty Unix socket path"));
  if (path.size() > kSunPathMax) {
    return std::unexpected("Unix socket path longer than " + std::to_string(kSunPathMax) + " bytes");
  }
  if (path.find('\0') != std::string_view::npos)
    return std::unexpected(std::string("NUL in a Unix socket path"));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.data(), path.size());
  return SocketAddress(reinterpret_cast<const sockaddr*>(&un),
                       static_cast<socklen_t>(kSunPathOffset + path.size() + 1));
}

std::expected<SocketAddress, std::string> SocketAddress::unix_abstract(std::string_view name) {
  if (name.size() > kSunPathMax) {
    return std::unexpected("abstract socket name longer than " + std::to_string(kSunPathMax) + " bytes");
  }
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path + 1, name.data(), name.size());
  return SocketAddress(reinterpret_cast<const sockaddr*>(&un),
                       static_cast<socklen_t>(kSunPathOffset + 1 + name.size()));
}

SocketAddress SocketAddress::unix_unnamed() noexcept {
  const sa_family_t family = AF_UNIX;
  return SocketAddress(reinterpret_cast<const sockaddr*>(&family), sizeof family);
}

SocketAddress::Family SocketAddress::family() const noexcept {
  if (len_ == 0) return Family::none;
  switch (storage_.ss_family) {
    case AF_INET:
      return Family::ipv4;
    case AF_INET6:
      return Family::ipv6;
    case AF_UNIX:
      return Family::unix_domain;
    default:
      return Family::none;
  }
}

std::uint16_t SocketAddress::port() const noexcept {
  switch (family()) {
    case Family::ipv4:
      return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case Family::ipv6:
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default:
      return 0;
  }
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
  switch (family()) {
    case Family::ipv4:
      reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
      break;
    case Family::ipv6:
      reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
      break;
    default:
      break;
  }
}

std::string SocketAddress::host() const {
  char buf[INET6_ADDRSTRLEN + 16] = {};
  switch (family()) {
    case Family::none:
      return "(none)";
    case Family::ipv4:
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
      return buf;
    case Family::ipv6: {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
      std::string out(buf);
      if (v6->sin6_scope_id != 0) out += "%" + std::to_string(v6->sin6_scope_id);
      return out;
    }
    case Family::unix_domain: {
      if (len_ <= kSunPathOffset) return "(unnamed)";
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      const std::size_t n = len_ - kSunPathOffset;
      if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
  }
  return "(none)";
}

std::string SocketAddress::to_string() const {
  switch (family()) {
    case Family::ipv4:
      return host() + ":" + std::to_string(port());
    case Family::ipv6:
      return "[" + host() + "]:" + std::to_string(port());
    default:
      return host();
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

std::expected<HostPort, std::string> HostPort::parse(std::string_view text) {
  auto split = split_host_port(text);
  if (!split) return std::unexpected(split.error());
  if (split->bracketed) {
    auto a = numeric_host(split->host, split->port);
    if (!a || a->family() != SocketAddress::Family::ipv6) {
      return std::unexpected(malformed(text, "'" + std::string(split->host) + "' is not an IPv6 address"));
    }
  }
  return HostPort{std::string(split->host), split->port};
}

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

IoResult<std::vector<SocketAddress>> resolve(std::string_view host, std::uint16_t port) {
  if (host.empty()) return std::unexpected(std::error_code(EAI_NONAME, resolver_category()));
  if (auto numeric = numeric_host(host, port)) return std::vector<SocketAddress>{*numeric};
  // A copy of the name travels with the job: the job may outlive a cancelled caller.
  return spawn_blocking([name = std::string(host), port]() -> IoResult<std::vector<SocketAddress>> {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;  // one entry per address instead of one per socket type
    hints.ai_flags = AI_NUMERICSERV;  // no AI_ADDRCONFIG: it hides localhost in a loopback-only sandbox
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    const int rc = ::getaddrinfo(name.c_str(), service.c_str(), &hints, &list);
    if (rc == EAI_SYSTEM) return std::unexpected(detail::last_error());
    if (rc != 0) return std::unexpected(std::error_code(rc, resolver_category()));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(list, &::freeaddrinfo);
    std::vector<SocketAddress> out;
    for (const addrinfo* ai = list; ai; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      SocketAddress a(ai->ai_addr, ai->ai_addrlen);
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
    if (out.empty()) return std::unexpected(std::error_code(EAI_NONAME, resolver_category()));
    return out;
  });
}

}  // namespace fiberio
