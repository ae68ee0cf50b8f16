// fiberio-proxy: a TCP byte-stream proxy with round-robin upstreams. ../shared/cli-contract.md is its
// contract; apps/server.hpp, apps/proxy.hpp and apps/upstreams.hpp tell how it works.
#include <fiberio/net/signals.hpp>
#include "app_config.hpp"
#include "log.hpp"
#include "proxy.hpp"
#include "server.hpp"
#include "upstreams.hpp"

#include <signal.h>

int main(int argc, char** argv) {
  fiberio::set_log_program("fiberio-proxy");
  // First, before any thread exists: every thread must block them for the signalfd to see them.
  if (auto error = fiberio::block_signals({SIGINT, SIGTERM, SIGHUP, SIGUSR1})) {
    fiberio::log_line("cannot block SIGINT, SIGTERM, SIGHUP and SIGUSR1: ", error.message());
    return 1;
  }
  auto config = fiberio::load_app_config(fiberio::AppKind::proxy, argc, argv);
  if (!config) return config.error();
  auto mode = fiberio::accept_mode_from_env();
  if (!mode) return mode.error();
  fiberio::UpstreamPool upstreams(config->upstreams, config->balance);
  const fiberio::ProxyOptions options{config->connect_timeout, config->response_timeout,
                                      config->idle_timeout};
  const fiberio::ServerOptions server{
      .accept_mode = *mode, .check_config = [argc, argv] {
        return fiberio::load_app_config(fiberio::AppKind::proxy, argc, argv).has_value();
      }};
  return fiberio::run_server(*config, server, [&](fiberio::TcpStream client) {
    fiberio::proxy_connection(std::move(client), upstreams, options);
  });
}
