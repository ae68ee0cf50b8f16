// Config: defaults, validation, and the environment loader's errors (which name variable and value).
#include <doctest/doctest.h>

#include <fiberio/runtime/config.hpp>
#include <fiberio/runtime/runtime.hpp>

#include <cstdlib>
#include <string>
#include <system_error>

namespace {

// Sets an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("defaults are valid and documented values") {
  fiberio::Config c;
  CHECK(c.validate());
  CHECK(c.threads >= 1);
  CHECK(c.work_stealing);
  CHECK(c.backend == fiberio::BackendKind::automatic);
  CHECK(c.stack_size >= 64 * 1024);
  CHECK(c.event_interval == 61);
}

TEST_CASE("validate names the field and the value") {
  fiberio::Config c;
  c.threads = 0;
  auto r = c.validate();
  REQUIRE_FALSE(r);
  CHECK(r.error().find("threads") != std::string::npos);
  CHECK(r.error().find("0") != std::string::npos);
  c = fiberio::Config{};
  c.stack_size = 100;
  REQUIRE_FALSE(c.validate());
  CHECK(c.validate().error().find("stack_size") != std::string::npos);
  CHECK_THROWS_AS(fiberio::Runtime(fiberio::Config{.threads = 0}), std::invalid_argument);
}

TEST_CASE("from_env applies each variable") {
  ScopedEnv t("FIBERIO_THREADS", "3");
  ScopedEnv s("FIBERIO_WORK_STEALING", "off");
  ScopedEnv b("FIBERIO_BACKEND", "poll");
  ScopedEnv z("FIBERIO_STACK_SIZE", "131072");
  auto c = fiberio::Config::from_env();
  REQUIRE(c);
  CHECK(c->threads == 3);
  CHECK_FALSE(c->work_stealing);
  CHECK(c->backend == fiberio::BackendKind::poll);
  CHECK(c->stack_size == 131072);
}

TEST_CASE("from_env keeps the base where a variable is unset") {
  fiberio::Config base;
  base.threads = 7;
  auto c = fiberio::Config::from_env(base);
  REQUIRE(c);
  CHECK(c->threads == 7);
}

TEST_CASE("from_env errors name the variable and the value") {
  struct Case {
    const char* name;
    const char* value;
  };
  for (auto [name, value] : {Case{"FIBERIO_THREADS", "abc"}, Case{"FIBERIO_THREADS", "0"},
                             Case{"FIBERIO_THREADS", "-2"}, Case{"FIBERIO_WORK_STEALING", "maybe"},
                             Case{"FIBERIO_BACKEND", "kqueue"}, Case{"FIBERIO_STACK_SIZE", "12"}}) {
    CAPTURE(name);
    CAPTURE(value);
    ScopedEnv e(name, value);
    auto c = fiberio::Config::from_env();
    REQUIRE_FALSE(c);
    CHECK(c.error().find(name) != std::string::npos);
    CHECK(c.error().find(value) != std::string::npos);
  }
}

TEST_CASE("boolean spellings") {
  for (const char* yes : {"true", "1", "on", "yes", "TRUE", "On"})
    CHECK(fiberio::parse_bool(yes) == true);
  for (const char* no : {"false", "0", "off", "no", "False"})
    CHECK(fiberio::parse_bool(no) == false);
  CHECK_FALSE(fiberio::parse_bool(""));
  CHECK_FALSE(fiberio::parse_bool("2"));
}

TEST_CASE("backend names") {
  CHECK(fiberio::parse_backend("auto") == fiberio::BackendKind::automatic);
  CHECK(fiberio::parse_backend("epoll") == fiberio::BackendKind::epoll);
  CHECK(fiberio::parse_backend("io_uring") == fiberio::BackendKind::io_uring);
  CHECK_FALSE(fiberio::parse_backend("select"));
}

TEST_CASE("a backend that is missing or refused is named with its cause, never replaced") {
  CHECK(fiberio::built_in(fiberio::BackendKind::epoll));
  // What a person reads when io_uring cannot be used: the cause and the fix.
  const auto disabled = fiberio::explain_backend_error(
      fiberio::BackendKind::io_uring, std::make_error_code(std::errc::operation_not_permitted));
  if (fiberio::built_in(fiberio::BackendKind::io_uring)) {
    CHECK(disabled.find("kernel.io_uring_disabled") != std::string::npos);
    CHECK(disabled.find("--backend epoll") != std::string::npos);
    const auto old = fiberio::explain_backend_error(fiberio::BackendKind::io_uring,
                                                    std::make_error_code(std::errc::not_supported));
    CHECK(old.find("5.13") != std::string::npos);
    const auto memlock = fiberio::explain_backend_error(fiberio::BackendKind::io_uring,
                                                        std::make_error_code(std::errc::not_enough_memory));
    CHECK(memlock.find("ulimit -l") != std::string::npos);
  } else {
    CHECK(disabled.find("'io_uring' is not built in this version") != std::string::npos);
  }
  // A runtime that cannot have its backend fails with that message; it does not pick another one.
  std::error_code ec;
  if (fiberio::make_backend(fiberio::BackendKind::io_uring, ec)) {
    fiberio::Runtime rt{fiberio::Config{.threads = 1, .backend = fiberio::BackendKind::io_uring}};
    CHECK(rt.block_on([] { return 7; }) == 7);
  } else {
    std::string message;
    try {
      fiberio::Runtime rt{fiberio::Config{.threads = 1, .backend = fiberio::BackendKind::io_uring}};
    } catch (const std::system_error& e) {
      message = e.what();
    }
    CHECK(message.find(fiberio::explain_backend_error(fiberio::BackendKind::io_uring, ec)) !=
          std::string::npos);
  }
}
