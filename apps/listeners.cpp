#include "listeners.hpp"

#include <fiberio/net/detail/socket_ops.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace fiberio {
namespace {

std::string cannot_listen(const SocketAddress& addr, const std::error_code& ec) {
  return "cannot listen on " + addr.to_string() + ": " + ec.message();
}

// The kernel's spelling of an address in /proc/net/tcp{,6}: each 32-bit word of the address as it lies in
// memory, printed as a host-order hex number; the port in host order.
std::string proc_hex_address(const SocketAddress& addr) {
  char buf[40] = {};
  if (addr.family() == SocketAddress::Family::ipv4) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr.data());
    std::snprintf(buf, sizeof buf, "%08X", static_cast<unsigned>(in->sin_addr.s_addr));
  } else {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr.data());
    std::uint32_t words[4];
    std::memcpy(words, &in6->sin6_addr, sizeof words);
    std::snprintf(buf, sizeof buf, "%08X%08X%08X%08X", static_cast<unsigned>(words[0]),
                  static_cast<unsigned>(words[1]), static_cast<unsigned>(words[2]),
                  static_cast<unsigned>(words[3]));
  }
  return buf;
}

// True if the kernel lists a listening TCP socket on addr's port, at addr's address or a wildcard, whose
// inode is not in `ours`: another process joined our SO_REUSEPORT group (see listeners.hpp).
bool foreign_listener(const SocketAddress& addr, const std::vector<ino_t>& ours) {
  const bool v4 = addr.family() == SocketAddress::Family::ipv4;
  const std::string mine = proc_hex_address(addr);
  const std::string wildcard(mine.size(), '0');
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", static_cast<unsigned>(addr.port()));
  std::ifstream table(v4 ? "/proc/net/tcp" : "/proc/net/tcp6");
  std::string line;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
    unsigned long inode = 0;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode)) {
      continue;
    }
    const auto colon = local.find(':');
    if (state != "0A" || colon == std::string::npos) continue;  // 0A: TCP_LISTEN
    if (local.substr(colon + 1) != port_hex) continue;
    const std::string host = local.substr(0, colon);
    if (host != mine && host != wildcard && mine != wildcard) continue;
    if (std::find(ours.begin(), ours.end(), static_cast<ino_t>(inode)) == ours.end()) return true;
  }
  return false;
}

std::expected<Listeners, std::string> bind_single(const SocketAddress& addr) {
  Listeners out;
  out.mode = AcceptMode::single;
  auto listener = TcpListener::bind(addr, {.reuse_address = true, .reuse_port = false});
  if (!listener) return std::unexpected(cannot_listen(addr, listener.error()));
  auto local = listener->local_addr();
  if (!local) return std::unexpected(cannot_listen(addr, local.error()));
  out.local = *local;
  out.sockets.push_back(std::move(*listener));
  return out;
}

std::expected<Listeners, std::string> bind_reuseport(const SocketAddress& addr, std::uint32_t workers) {
  Listeners out;
  out.mode = AcceptMode::reuseport;
  // 1. The guard claims the port: SO_REUSEADDR, no SO_REUSEPORT, bound, never listening.
  auto guard = detail::open_socket(addr.os_family(), SOCK_STREAM);
  if (!guard) return std::unexpected(cannot_listen(addr, guard.error()));
  out.port_guard = *guard;
  if (auto ec = detail::set_option(*guard, SOL_SOCKET, SO_REUSEADDR, 1))
    return std::unexpected(cannot_listen(addr, ec));
  if (auto ec = detail::bind_and_listen(*guard, addr, -1)) return std::unexpected(cannot_listen(addr, ec));
  auto local = detail::local_address(*guard);
  if (!local) return std::unexpected(cannot_listen(addr, local.error()));
  out.local = *local;
  // 2. One SO_REUSEPORT listener per worker on the now fixed port.
  std::vector<ino_t> inodes;
  for (std::uint32_t i = 0; i < workers; ++i) {
    auto listener = TcpListener::bind(out.local, {.reuse_address = true, .reuse_port = true});
    if (!listener) return std::unexpected(cannot_listen(out.local, listener.error()));
    struct stat st {};
    if (::fstat(listener->fd(), &st) == 0) inodes.push_back(st.st_ino);
    out.sockets.push_back(std::move(*listener));
  }
  // 3. Nobody else may have joined the group in the instant between 1 and 2.
  if (foreign_listener(out.local, inodes)) {
    return std::unexpected(cannot_listen(out.local, std::make_error_code(std::errc::address_in_use)));
  }
  return out;
}

}  // namespace

std::expected<AcceptMode, std::string> parse_accept_mode(std::string_view text) {
  if (text == "single") return AcceptMode::single;
  if (text == "reuseport") return AcceptMode::reuseport;
  return std::unexpected("unknown accept mode '" + std::string(text) + "' (expected single or reuseport)");
}

Listeners::Listeners(Listeners&& other) noexcept
    : mode(other.mode),
      sockets(std::move(other.sockets)),
      local(other.local),
      port_guard(std::exchange(other.port_guard, -1)) {}

Listeners& Listeners::operator=(Listeners&& other) noexcept {
  if (this != &other) {
    close();
    mode = other.mode;
    sockets = std::move(other.sockets);
    local = other.local;
    port_guard = std::exchange(other.port_guard, -1);
  }
  return *this;
}

Listeners::~Listeners() {
  close();
}

void Listeners::close() noexcept {
  for (auto& s : sockets)
    s.close();
  sockets.clear();
  if (port_guard >= 0) ::close(std::exchange(port_guard, -1));
}

std::expected<Listeners, std::string> bind_listeners(const SocketAddress& addr, AcceptMode mode,
                                                     std::uint32_t workers) {
  if (!addr.is_ip()) return std::unexpected("cannot listen on " + addr.to_string() + ": not an IP address");
  return mode == AcceptMode::single ? bind_single(addr) : bind_reuseport(addr, std::max(workers, 1u));
}

}  // namespace fiberio
