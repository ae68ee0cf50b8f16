// Socket addresses: parsing and formatting (IPv4, IPv6, Unix), errors that quote the input, host:port,
// and resolve() (numeric at once, names on the blocking pool, `localhost` through getaddrinfo).
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <algorithm>
#include <string>

using fiberio::SocketAddress;

TEST_CASE("address: parse and format IPv4, IPv6 and Unix addresses") {
  auto v4 = SocketAddress::parse("127.0.0.1:80");
  REQUIRE(v4);
  CHECK(v4->family() == SocketAddress::Family::ipv4);
  CHECK(v4->port() == 80);
  CHECK(v4->host() == "127.0.0.1");
  CHECK(v4->to_string() == "127.0.0.1:80");
  CHECK(*v4 == SocketAddress::loopback_v4(80));

  auto v6 = SocketAddress::parse("[::1]:8080");
  REQUIRE(v6);
  CHECK(v6->family() == SocketAddress::Family::ipv6);
  CHECK(v6->port() == 8080);
  CHECK(v6->host() == "::1");
  CHECK(v6->to_string() == "[::1]:8080");
  CHECK(*v6 == SocketAddress::loopback_v6(8080));

  CHECK(SocketAddress::parse("[fe80::1%1]:9")->to_string() == "[fe80::1%1]:9");
  CHECK(SocketAddress::parse("[fe80::1%lo]:9")->to_string() == "[fe80::1%1]:9");  // lo is interface 1
  CHECK(SocketAddress::parse("0.0.0.0:0")->port() == 0);
  CHECK(SocketAddress::parse("255.255.255.255:65535")->port() == 65535);
  CHECK(SocketAddress::parse("[::]:1")->to_string() == "[::]:1");

  auto path = SocketAddress::parse("unix:/tmp/x.sock");
  REQUIRE(path);
  CHECK(path->is_unix());
  CHECK(path->to_string() == "/tmp/x.sock");
  auto abstract = SocketAddress::parse("unix:@name");
  REQUIRE(abstract);
  CHECK(abstract->to_string() == "@name");
  CHECK(*abstract == *SocketAddress::unix_abstract("name"));
  CHECK(SocketAddress().to_string() == "(none)");

  // Round trips and ports.
  for (const char* text : {"10.1.2.3:4", "[2001:db8::1]:65535", "[::ffff:1.2.3.4]:7"}) {
    CHECK(SocketAddress::parse(SocketAddress::parse(text)->to_string()) == SocketAddress::parse(text));
  }
  CHECK(v4->with_port(443).to_string() == "127.0.0.1:443");
  CHECK(v6->with_port(1).port() == 1);
}

TEST_CASE("address: malformed input is an error that quotes it") {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case c :
       {Case{"127.0.0.1", "missing port"}, Case{"127.0.0.1:", "missing port"},
        Case{"127.0.0.1:65536", "out of range"}, Case{"127.0.0.1:99999999999999999999", "out of range"},
        Case{"127.0.0.1:http", "not a number"}, Case{"127.0.0.1:-1", "not a number"},
        Case{"[::1]", "missing port"}, Case{"[::1:80", "missing ']'"}, Case{"::1:80", "brackets"},
        Case{"[::1]80", "expected ':'"}, Case{":80", "missing host"}, Case{"", "empty"},
        Case{"300.1.1.1:80", "not a numeric IP"}, Case{"localhost:80", "resolve"},
        Case{"[1.2.3.4]:80", "brackets"}, Case{"[fe80::1%nosuchif]:80", "unknown interface"},
        Case{"unix:", "empty"}}) {
    CAPTURE(c.text);
    auto a = SocketAddress::parse(c.text);
    REQUIRE_FALSE(a);
    CHECK(a.error().find("'" + std::string(c.text) + "'") != std::string::npos);  // quotes the input
    CHECK_MESSAGE(a.error().find(c.why) != std::string::npos, a.error());
  }
  CHECK_FALSE(SocketAddress::unix_path(std::string(200, 'x')));
}

TEST_CASE("address: host:port accepts names") {
  auto hp = fiberio::HostPort::parse("localhost:6379");
  REQUIRE(hp);
  CHECK(hp->host == "localhost");
  CHECK(hp->port == 6379);
  auto v6 = fiberio::HostPort::parse("[::1]:1");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->to_string() == "[::1]:1");
  CHECK_FALSE(fiberio::HostPort::parse("localhost"));
  CHECK_FALSE(fiberio::HostPort::parse("localhost:70000"));
  CHECK_FALSE(fiberio::HostPort::parse("[localhost]:1"));
}

TEST_CASE("resolve: numeric hosts at once; localhost through getaddrinfo on the blocking pool") {
  fiberio::block_on([] {
    auto numeric = fiberio::resolve("127.0.0.1", 80);
    REQUIRE(numeric);
    CHECK(numeric->size() == 1);
    CHECK(numeric->front().to_string() == "127.0.0.1:80");
    CHECK(fiberio::resolve("::1", 9)->front().to_string() == "[::1]:9");

    auto local = fiberio::resolve(*fiberio::HostPort::parse("localhost:8080"));
    REQUIRE_MESSAGE(local, local.error().message());
    REQUIRE_FALSE(local->empty());
    for (const auto& a : *local) {
      CAPTURE(a.to_string());
      CHECK(a.port() == 8080);
      CHECK((a.host() == "127.0.0.1" || a.host() == "::1"));
    }
    // No duplicates.
    for (std::size_t i = 0; i < local->size(); ++i) {
      CHECK(std::count(local->begin(), local->end(), (*local)[i]) == 1);
    }

    auto bad = fiberio::resolve("no-such-host.invalid", 80);  // .invalid never resolves (RFC 2606)
    REQUIRE_FALSE(bad);
    CHECK(bad.error().category() == fiberio::resolver_category());
    CHECK_FALSE(fiberio::resolve("", 80));
  });
}

TEST_CASE("resolve: connect to what localhost resolves to") {
  fiberio::block_on([] {
    auto listener = fiberio::TcpListener::bind(fiberio::SocketAddress::loopback_v4(0));
    REQUIRE(listener);
    auto addrs = fiberio::resolve("localhost", listener->local_addr()->port());
    REQUIRE(addrs);
    // localhost may list ::1 first, where nobody listens: connect() moves on to 127.0.0.1.
    auto s = fiberio::TcpStream::connect(*addrs, fiberio::Clock::now() + std::chrono::seconds(5));
    REQUIRE_MESSAGE(s, s.error().message());
    CHECK(s->peer_addr()->host() == "127.0.0.1");
  });
}
