// apps/app_config.hpp — the settings of fiberio-echo and fiberio-proxy, merged from four places in this
// precedence: command line (CLI11) > environment (FIBERIO_THREADS, FIBERIO_BACKEND, FIBERIO_WORK_STEALING,
// FIBERIO_STACK_SIZE) > TOML config file (toml++, --config FILE) > defaults. ../shared/cli-contract.md is
// the contract; tests/apps/ checks it from outside.
//
//   auto config = fiberio::load_app_config(fiberio::AppKind::echo, argc, argv);
//   if (!config) return config.error();   // 0 after --help/--version, 2 after bad input (already reported)
//
// The config file has three sections, each with a fixed set of keys; anything else is an error naming the
// file, the line and the key:
//   [runtime] threads, work_stealing, backend, stack_size, on_sigquit
//   [echo]    listen, connection_mode
//   [proxy]   listen, upstreams, balance, connect_timeout_ms, health_check_interval_ms,
//             response_timeout_ms, idle_timeout_s
// Both programs accept (and check) all three sections, so one file can serve both.
// Every problem is reported as ONE line on stderr ("fiberio-echo: cfg.toml:3: unknown key 'thread' in
// [runtime]") and yields exit code 2, before anything is bound. A backend that is not built in, or that
// the OS refuses (io_uring switched off), is such a problem, named with its cause: no silent fallback.
// Only apps/ uses CLI11 and toml++: the core library never sees them.
// Thread-safety: call from main() before any thread exists (it reads the environment).
#pragma once

#include <fiberio/net/address.hpp>
#include <fiberio/runtime/config.hpp>
#include "upstreams.hpp"

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

namespace fiberio {

enum class AppKind : std::uint8_t { echo, proxy };

// How fiberio-echo serves a connection: an idle loop (runtime/idle_loop.hpp: no stack while idle, the
// default) or a fiber of its own for the connection's whole life (for comparison).
enum class ConnectionMode : std::uint8_t { idle_loop, fiber };

struct AppConfig {
  Config runtime{};   // threads, work_stealing, backend, stack_size
  HostPort listen{};  // where to accept; syntax checked, not resolved yet
  ConnectionMode connection_mode = ConnectionMode::idle_loop;  // echo
  // SIGQUIT logs every fiber (Runtime::fibers()) and the server goes on; false: SIGQUIT's default action
  // (the process aborts, with a core dump where enabled).
  bool sigquit_dump = true;
  std::vector<HostPort> upstreams{};                                   // proxy: at least one; echo: empty
  UpstreamPool::Balance balance = UpstreamPool::Balance::round_robin;  // proxy: how to choose one
  std::chrono::milliseconds connect_timeout{3000};     // proxy: per upstream connection attempt
  std::chrono::milliseconds health_check_interval{0};  // proxy: active checks every this long (0: none)
  // proxy: an upstream that has been sent bytes must answer within this (0 = no limit)
  std::chrono::milliseconds response_timeout{10'000};
  std::chrono::seconds idle_timeout{300};  // proxy: 0 = never
};

inline constexpr std::string_view kDefaultEchoListen = "127.0.0.1:7000";
inline constexpr std::uint32_t kDefaultConnectTimeoutMs = 3000;

// Parses the command line, reads the config file and the environment, and checks the result. On --help,
// --version or --check (of a valid configuration): prints to stdout, returns unexpected(0). On bad input:
// prints one line to stderr, returns unexpected(2).
std::expected<AppConfig, int> load_app_config(AppKind kind, int argc, char** argv);

// The settings that differ between `running` and `loaded` but take a restart to change (listen and the
// [runtime] ones), as "listen, threads"; empty if none.
std::string restart_only_changes(const AppConfig& running, const AppConfig& loaded);

// One line for the log: "2 threads, backend epoll, work stealing on, 64 KiB stacks".
std::string describe_runtime(const Config& config);

}  // namespace fiberio
