// fiberio-proxy: a TCP byte-stream proxy with round-robin upstreams. ../shared/cli-contract.md is its
// contract; apps/server.hpp, apps/proxy.hpp and apps/upstreams.hpp tell how it works.
#include <fiberio/net/signals.hpp>
#include "app_config.hpp"
#include "log.hpp"
#include "proxy.hpp"
#include "server.hpp"
#include "upstreams.hpp"

#include <signal.h>

#include <atomic>
#include <memory>

int main(int argc, char** argv) {
  fiberio::set_log_program("fiberio-proxy");
  // First, before any thread exists: every thread must block them for the signalfd to see them.
  if (auto error = fiberio::block_signals({SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGQUIT})) {
    fiberio::log_line("cannot block SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGQUIT: ", error.message());
    return 1;
  }
  auto config = fiberio::load_app_config(fiberio::AppKind::proxy, argc, argv);
  if (!config) return config.error();
  auto mode = fiberio::accept_mode_from_env();
  if (!mode) return mode.error();
  // What a reload replaces: each new connection takes the current setup and keeps it to its end, so
  // established connections are not touched and the old pool goes when its last connection does.
  std::atomic<std::shared_ptr<const fiberio::ProxySetup>> setup{
      std::make_shared<const fiberio::ProxySetup>(*config)};
  const fiberio::ServerOptions server{
      .accept_mode = *mode,
      .reload =
          [&setup, &running = *config, argc, argv] {
            auto loaded = fiberio::load_app_config(fiberio::AppKind::proxy, argc, argv);
            if (!loaded) return false;
            setup.store(std::make_shared<const fiberio::ProxySetup>(*loaded));
            const std::string later = fiberio::restart_only_changes(running, *loaded);
            fiberio::log_event(fiberio::LogLevel::info,
                               "SIGHUP: reloaded for new connections: ", setup.load()->upstreams.describe(),
                               later.empty() ? "" : "; taking effect at the next start: ", later);
            return true;
          },
      .describe = [&setup] { return setup.load()->upstreams.describe(); },
      // Active checks, when configured (by the setup current at each round, so a reload applies).
      .background =
          [&setup] {
            for (;;) {
              auto current = setup.load();
              const auto interval = current->options.health_check_interval;
              if (interval.count() == 0) {
                fiberio::sleep_for(std::chrono::seconds(1));  // off: look again after a reload
                continue;
              }
              fiberio::check_upstreams(current->upstreams, current->options);
              current.reset();
              fiberio::sleep_for(interval);
            }
          }};
  return fiberio::run_server(*config, server, [&setup](fiberio::TcpStream client) {
    const std::shared_ptr<const fiberio::ProxySetup> current = setup.load();
    fiberio::proxy_connection(std::move(client), current->upstreams, current->options);
  });
}
