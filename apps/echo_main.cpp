// fiberio-echo: a TCP echo server. ../shared/cli-contract.md is its contract; apps/server.hpp and
// apps/echo.hpp tell how it works.
#include <fiberio/net/signals.hpp>
#include "app_config.hpp"
#include "echo.hpp"
#include "log.hpp"
#include "server.hpp"

#include <signal.h>

int main(int argc, char** argv) {
  fiberio::set_log_program("fiberio-echo");
  // First, before any thread exists: every thread must block them for the signalfd to see them.
  if (auto error = fiberio::block_signals({SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGQUIT})) {
    fiberio::log_line("cannot block SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGQUIT: ", error.message());
    return 1;
  }
  auto config = fiberio::load_app_config(fiberio::AppKind::echo, argc, argv);
  if (!config) return config.error();
  auto mode = fiberio::accept_mode_from_env();
  if (!mode) return mode.error();
  // The echo server has nothing to apply while serving: a reload checks the configuration and says so.
  const fiberio::ServerOptions server{
      .accept_mode = *mode, .reload = [&running = *config, argc, argv] {
        auto loaded = fiberio::load_app_config(fiberio::AppKind::echo, argc, argv);
        if (!loaded) return false;
        const std::string later = fiberio::restart_only_changes(running, *loaded);
        fiberio::log_event(
            fiberio::LogLevel::info, "SIGHUP: the configuration is valid",
            later.empty() ? "; nothing changed" : "; changed, taking effect at the next start: ", later);
        return true;
      }};
  if (config->connection_mode == fiberio::ConnectionMode::fiber) {
    return fiberio::run_server(*config, server, fiberio::ConnectionHandler([](fiberio::TcpStream s) {
      fiberio::echo_connection(std::move(s));
    }));
  }
  return fiberio::run_server(*config, server, fiberio::IdleConnectionHandler{fiberio::echo_ready});
}
