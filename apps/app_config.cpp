#include "app_config.hpp"

#include <fiberio/reactor/backend.hpp>
#include "log.hpp"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>

#ifndef FIBERIO_VERSION
#define FIBERIO_VERSION "unknown"
#endif

namespace fiberio {
namespace {

using Error = std::string;  // one line, without the program prefix

std::expected<UpstreamPool::Balance, Error> parse_balance(std::string_view text) {
  if (text == "round-robin") return UpstreamPool::Balance::round_robin;
  if (text == "least-connections") return UpstreamPool::Balance::least_connections;
  return std::unexpected("expected round-robin or least-connections, got '" + std::string(text) + "'");
}

std::expected<ConnectionMode, Error> parse_connection_mode(std::string_view text) {
  if (text == "idle-loop") return ConnectionMode::idle_loop;
  if (text == "fiber") return ConnectionMode::fiber;
  return std::unexpected("expected idle-loop or fiber, got '" + std::string(text) + "'");
}

std::expected<bool, Error> parse_on_sigquit(std::string_view text) {
  if (text == "dump") return true;
  if (text == "abort") return false;
  return std::unexpected("expected dump or abort, got '" + std::string(text) + "'");
}

constexpr std::uint32_t kMaxThreads = 1024;
constexpr std::uint32_t kMaxConnectTimeoutMs = 3'600'000;  // one hour
constexpr std::uint32_t kMaxIdleTimeoutS = 7 * 24 * 3600;  // one week

// --- the command line --------------------------------------------------------------------------------

// What the command line said; an option that was not given stays empty (lower layers then decide).
struct CliValues {
  bool check = false;  // --check: validate everything, report, exit
  std::optional<std::string> config_path;
  std::optional<std::string> listen;
  std::optional<std::uint32_t> threads;
  std::optional<BackendKind> backend;
  std::optional<bool> work_stealing;
  std::vector<std::string> upstreams;  // empty: not given
  std::optional<UpstreamPool::Balance> balance;
  std::optional<ConnectionMode> connection_mode;
  std::optional<bool> sigquit_dump;
  std::optional<std::uint32_t> connect_timeout_ms;
  std::optional<std::uint32_t> response_timeout_ms;
  std::optional<std::uint32_t> health_check_interval_ms;
  std::optional<std::uint32_t> idle_timeout_s;
};

std::string program_description(AppKind kind) {
  if (kind == AppKind::echo) {
    return "fiberio-echo: a TCP echo server. Every byte a client sends comes back, in order; when the client "
           "shuts down its write side, the server closes once everything is echoed.";
  }
  return "fiberio-proxy: a TCP byte-stream proxy. Each client is connected to the next upstream in "
         "round-robin order and bytes are relayed both ways (half-close passed through) until both sides "
         "end.";
}

constexpr const char* kFooter =
    "Settings come from, in precedence: command line, environment (FIBERIO_THREADS, FIBERIO_BACKEND, "
    "FIBERIO_WORK_STEALING=true|false|1|0|on|off, FIBERIO_STACK_SIZE), the --config file ([runtime] threads, "
    "work_stealing, backend, stack_size, on_sigquit; [echo] listen, connection_mode; [proxy] listen, "
    "upstreams, balance, "
    "connect_timeout_ms, "
    "health_check_interval_ms, response_timeout_ms, idle_timeout_s; a regular file of at most 1 MiB), "
    "defaults. When ready, the program prints one line on stdout, 'listening on HOST:PORT'. SIGINT/SIGTERM "
    "stop it (exit 0); SIGHUP reloads the configuration (the proxy applies upstreams, balance, health checks "
    "and timeouts to new connections; the rest takes a restart); SIGUSR1 logs the counters; SIGQUIT logs "
    "every fiber. Exit codes: 2 "
    "bad "
    "input, 1 cannot listen.\n";

// A CLI11 check: an unsigned integer in [low, high]; the message says which rule the text breaks.
std::function<std::string(const std::string&)> unsigned_in(std::uint64_t low, std::uint64_t high) {
  return [low, high](const std::string& text) -> std::string {
    auto n = parse_unsigned(text);
    if (!n) return n.error();
    if (*n < low || *n > high) {
      return "must be " + std::to_string(low) + ".." + std::to_string(high) + ", got " + text;
    }
    return {};
  };
}

// An unsigned option in [low, high], shown in --help as `unit` (N, MS, S).
CLI::Option* add_number(CLI::App& app, const std::string& name, std::uint32_t& value, const std::string& help,
                        const std::string& unit, std::uint64_t low, std::uint64_t high) {
  return app.add_option(name, value, help)->type_name(unit)->check(unsigned_in(low, high));
}

// An option whose text `parse` must accept (a choice: round-robin|least-connections...), shown in --help
// as `choices`; the text is parsed again when it is read out.
template <class Parse>
CLI::Option* add_choice(CLI::App& app, const std::string& name, std::string& text, const std::string& help,
                        const std::string& choices, Parse parse) {
  return app.add_option(name, text, help)
      ->type_name(choices)
      ->check([parse](const std::string& t) -> std::string {
        auto parsed = parse(t);
        return parsed ? std::string() : parsed.error();
      });
}

// Parses argv into `out`. Returns the exit code to stop with (help, version, bad flag), or nullopt to go on.
std::optional<int> parse_command_line(AppKind kind, int argc, char** argv, CliValues& out) {
  const std::string name = kind == AppKind::echo ? "fiberio-echo" : "fiberio-proxy";
  CLI::App app{program_description(kind), name};
  app.set_version_flag("--version", name + " " + FIBERIO_VERSION);
  app.footer(kFooter);

  std::string config_path, listen, backend_text;
  std::uint32_t threads = 0, connect_timeout_ms = 0, response_timeout_ms = 0, health_ms = 0,
                idle_timeout_s = 0;
  bool steal = true;
  std::vector<std::string> upstreams;
  std::string balance_text, mode_text, sigquit_text;

  auto* config_opt = app.add_option("--config", config_path, "TOML config file")->type_name("FILE");
  bool check = false;
  auto* check_opt =
      app.add_flag("--check", check,
                   "check the configuration (flags, environment, file) and exit: 0 and a summary "
                   "on stdout if it is valid, 2 and the problem if not");
  auto* listen_opt =
      app.add_option("--listen", listen,
                     kind == AppKind::echo ? "address to listen on (default 127.0.0.1:7000; port 0: "
                                             "any free port)"
                                           : "address to listen on (required here or in the file; "
                                             "port 0: any free port)")
          ->type_name("HOST:PORT");
  auto* threads_opt =
      add_number(app, "--threads", threads, "worker threads (default: one per CPU)", "N", 1, kMaxThreads);
  auto* backend_opt =
      add_choice(app, "--backend", backend_text, "I/O backend: auto (epoll), epoll, io_uring or poll",
                 "auto|epoll|io_uring|poll", parse_backend);
  auto* steal_opt =
      app.add_flag("--steal,!--no-steal", steal, "idle workers steal queued fibers (default on)");

  auto* sigquit_opt = add_choice(app, "--on-sigquit", sigquit_text,
                                 "dump: SIGQUIT logs every fiber (state, what it waits on, stack) and the "
                                 "server goes on (the default); abort: SIGQUIT's default action",
                                 "dump|abort", parse_on_sigquit);
  CLI::Option* mode_opt = nullptr;
  if (kind == AppKind::echo) {
    mode_opt = add_choice(app, "--connection-mode", mode_text,
                          "idle-loop: a connection holds no stack while idle (the default); fiber: a fiber "
                          "and its stack for the connection's whole life",
                          "idle-loop|fiber", parse_connection_mode);
  }
  CLI::Option* upstream_opt = nullptr;
  CLI::Option* balance_opt = nullptr;
  CLI::Option* connect_opt = nullptr;
  CLI::Option* response_opt = nullptr;
  CLI::Option* health_opt = nullptr;
  CLI::Option* idle_opt = nullptr;
  if (kind == AppKind::proxy) {
    upstream_opt = app.add_option("--upstream", upstreams,
                                  "upstream server(s), comma-separated or repeated, used round-robin "
                                  "(required here or in the file)")
                       ->type_name("HOST:PORT[,HOST:PORT...]")
                       ->delimiter(',');
    balance_opt = add_choice(app, "--balance", balance_text,
                             "how to choose an upstream: round-robin (in turn, the default) or "
                             "least-connections (the one with the fewest open connections)",
                             "round-robin|least-connections", parse_balance);
    connect_opt =
        add_number(app, "--connect-timeout-ms", connect_timeout_ms,
                   "limit for connecting to an upstream (default 3000)", "MS", 1, kMaxConnectTimeoutMs);
    response_opt = add_number(app, "--response-timeout-ms", response_timeout_ms,
                              "an upstream sent bytes must answer within MS, else the client is closed and "
                              "the upstream marked down (0 = no limit; default 10000)",
                              "MS", 0, kMaxConnectTimeoutMs);
    health_opt = add_number(app, "--health-check-interval-ms", health_ms,
                            "connect to every upstream this often and mark the ones that fail down "
                            "(0 = no active checks, the default)",
                            "MS", 0, kMaxConnectTimeoutMs);
    idle_opt = add_number(app, "--idle-timeout-s", idle_timeout_s,
                          "close both sides after S seconds without a byte in either direction (0 = never; "
                          "default 300)",
                          "S", 0, kMaxIdleTimeoutS);
  }

  // CLI11 acts on --help and --version the moment it meets them, before it has seen an unknown flag
  // after them (or taken a value given to them, --version=8054) as the error it is. So they are taken out
  // first, the rest of the line is checked whole, and only then are they answered.
  bool want_help = false, want_version = false;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {  // the end of the options: the rest are arguments, taken as they are
      rest.insert(rest.end(), argv + i, argv + argc);
      break;
    }
    if (arg == "--help" || arg == "-h") {
      want_help = true;
    } else if (arg == "--version") {
      want_version = true;
    } else if (arg.starts_with("--help=") || arg.starts_with("--version=")) {
      log_line(arg.substr(0, arg.find('=')), " takes no value, got '", arg, "' (see --help)");
      return 2;
    } else {
      rest.emplace_back(arg);
    }
  }
  std::reverse(rest.begin(), rest.end());  // CLI11 takes a vector last argument first
  try {
    app.parse(rest);
  } catch (const CLI::ParseError& e) {
    log_line(e.what(), " (see --help)");
    return 2;
  }
  if (want_help || want_version) {
    std::cout << (want_help ? app.help() : name + " " + FIBERIO_VERSION + "\n") << std::flush;
    return 0;
  }

  out.check = check_opt->count() != 0 && check;
  if (config_opt->count()) out.config_path = config_path;
  if (listen_opt->count()) out.listen = listen;
  if (threads_opt->count()) out.threads = threads;
  if (backend_opt->count()) out.backend = *parse_backend(backend_text);
  if (steal_opt->count()) out.work_stealing = steal;
  if (upstream_opt && upstream_opt->count()) out.upstreams = upstreams;
  if (balance_opt && balance_opt->count()) out.balance = *parse_balance(balance_text);
  if (mode_opt && mode_opt->count()) out.connection_mode = *parse_connection_mode(mode_text);
  if (sigquit_opt->count()) out.sigquit_dump = *parse_on_sigquit(sigquit_text);
  if (connect_opt && connect_opt->count()) out.connect_timeout_ms = connect_timeout_ms;
  if (response_opt && response_opt->count()) out.response_timeout_ms = response_timeout_ms;
  if (health_opt && health_opt->count()) out.health_check_interval_ms = health_ms;
  if (idle_opt && idle_opt->count()) out.idle_timeout_s = idle_timeout_s;
  return std::nullopt;
}

// --- the config file ---------------------------------------------------------------------------------

constexpr std::size_t kMaxConfigBytes = 1 << 20;  // a config file is a few hundred bytes
constexpr int kMaxConfigNesting = 32;             // tables, arrays and dotted keys, all together

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Reads the whole file; the error says why it cannot be read. Only a regular file of at most
// kMaxConfigBytes: a FIFO would block the start for ever and a device (/dev/zero) would never end. Opened
// non-blocking, so that opening a FIFO does not wait for a writer either.
std::expected<std::string, Error> read_file(const std::string& path) {
  const auto failed = [&](const std::string& why) -> std::unexpected<Error> {
    return std::unexpected("cannot read config file '" + path + "': " + why);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return failed(std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return failed(std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return failed(std::string("it is ") + file_kind(st.st_mode) + ", not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes)
    return failed(std::to_string(st.st_size) + " bytes; a config file may have at most 1 MiB");
  std::string text;
  char chunk[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(std::string("read error: ") + std::strerror(errno));
    if (n == 0) return text;
    // Files whose size says 0 (under /proc) are read until their end, within the same limit.
    if (text.size() + static_cast<std::size_t>(n) > kMaxConfigBytes)
      return failed("more than 1 MiB; a config file may have at most 1 MiB");
    text.append(chunk, static_cast<std::size_t>(n));
  }
}

// The TOML parser recurses once per level of tables, arrays and dotted keys: a file nested thousands deep
// would overflow the stack. This scan, which knows just enough TOML to skip strings and comments, refuses
// one nested deeper than kMaxConfigNesting, naming the line.
std::expected<void, Error> check_nesting(const std::string& path, std::string_view text) {
  int depth = 0;                              // open [ and { outside strings
  bool in_table[kMaxConfigNesting + 1] = {};  // whether the bracket open at each depth is a '{'
  int dots = 0;                               // dots in the current key (or table header) so far
  bool in_key = true;                         // before the '=' of a key/value pair, or inside a [header]
  std::size_t line = 1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      if (depth == 0) in_key = true, dots = 0;
      continue;
    }
    if (c == '#') {  // a comment, to the end of the line
      while (i + 1 < text.size() && text[i + 1] != '\n')
        ++i;
      continue;
    }
    if (c == '"' || c == '\'') {  // a string, basic or literal, one-line or multi-line
      const bool multi = text.substr(i, 3) == std::string(3, c);
      const std::size_t open = multi ? 3 : 1;
      std::size_t j = i + open;
      for (; j < text.size(); ++j) {
        if (text[j] == '\n') ++line;
        if (c == '"' && text[j] == '\\') {
          ++j;
          continue;
        }
        if (text[j] == c && (!multi || text.substr(j, 3) == std::string(3, c))) break;
      }
      i = j + open - 1;
      continue;
    }
    if (c == '[' || c == '{') {
      if (c == '{') in_key = true, dots = 0;
      if (++depth > kMaxConfigNesting) break;
      in_table[depth] = c == '{';
    } else if (c == ']' || c == '}') {
      if (depth > 0) --depth;
    } else if (c == '=') {
      in_key = false;
    } else if (c == ',' && depth > 0 && in_table[depth]) {  // the next key of an inline table
      in_key = true, dots = 0;
    } else if (c == '.' && in_key) {
      if (++dots + depth > kMaxConfigNesting) break;
    }
  }
  if (depth > kMaxConfigNesting || dots + depth > kMaxConfigNesting) {
    return std::unexpected(path + ":" + std::to_string(line) + ": nested deeper than " +
                           std::to_string(kMaxConfigNesting) + " levels (tables, arrays and dotted keys)");
  }
  return {};
}

// Checks and applies one file's values; every error names "FILE:LINE".
class FileLoader {
 public:
  FileLoader(const std::string& path, AppConfig& config) : path_(path), config_(config) {}

  std::expected<void, Error> load(const std::string& text) {
    toml::table root;
    try {
      root = toml::parse(text, path_);
    } catch (const toml::parse_error& e) {
      return std::unexpected(path_ + ":" + std::to_string(e.source().begin.line) + ":" +
                             std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
    }
    for (auto&& [key, node] : root) {
      const std::string name(key.str());
      if (!node.is_table()) {
        return fail(key.source(), "unknown key '" + name +
                                      "' at the top level (settings belong in [runtime], [echo] or [proxy])");
      }
      const toml::table& section = *node.as_table();
      std::expected<void, Error> r;
      if (name == "runtime") {
        r = runtime(section);
      } else if (name == "echo") {
        r = echo(section);
      } else if (name == "proxy") {
        r = proxy(section);
      } else {
        return fail(key.source(), "unknown section [" + name + "] (expected [runtime], [echo] or [proxy])");
      }
      if (!r) return r;
    }
    return {};
  }

  // The file's listen address for `kind`, if it has one (the other section's is checked, not used).
  const std::optional<HostPort>& listen(AppKind kind) const {
    return kind == AppKind::echo ? echo_listen_ : proxy_listen_;
  }

 private:
  std::unexpected<Error> fail(const toml::source_region& where, const std::string& what) const {
    return std::unexpected(path_ + ":" + std::to_string(where.begin.line) + ": " + what);
  }

  // An integer in [low, high]; the error names the key as section.key.
  std::expected<std::int64_t, Error> integer(const std::string& key, const toml::node& node, std::int64_t low,
                                             std::int64_t high) const {
    const auto* value = node.as_integer();
    if (!value || value->get() < low || value->get() > high) {
      return fail(node.source(),
                  key + " must be an integer " + std::to_string(low) + ".." + std::to_string(high));
    }
    return value->get();
  }

  // integer() as a duration of the key's unit (milliseconds for *_ms, seconds for *_s), stored in `out`.
  template <class Duration>
  std::expected<void, Error> duration(const std::string& key, const toml::node& node, std::int64_t low,
                                      std::int64_t high, Duration& out) const {
    auto n = integer(key, node, low, high);
    if (!n) return std::unexpected(n.error());
    out = Duration(*n);
    return {};
  }

  std::expected<std::string, Error> string(const std::string& key, const toml::node& node) const {
    const auto* value = node.as_string();
    if (!value) return fail(node.source(), key + " must be a string");
    return value->get();
  }

  std::expected<HostPort, Error> address(const std::string& key, const toml::node& node) const {
    auto text = string(key, node);
    if (!text) return std::unexpected(text.error());
    auto hp = HostPort::parse(*text);
    if (!hp) return fail(node.source(), key + ": " + hp.error());
    return *hp;
  }

  std::expected<void, Error> runtime(const toml::table& section) {
    for (auto&& [key, node] : section) {
      const std::string name(key.str());
      const std::string full = "runtime." + name;
      if (name == "threads") {
        auto n = integer(full, node, 1, kMaxThreads);
        if (!n) return std::unexpected(n.error());
        config_.runtime.threads = static_cast<std::uint32_t>(*n);
      } else if (name == "work_stealing") {
        if (const auto* b = node.as_boolean()) {
          config_.runtime.work_stealing = b->get();
        } else if (const auto* s = node.as_string()) {
          auto b2 = parse_bool(s->get());
          if (!b2) return fail(node.source(), full + ": " + b2.error());
          config_.runtime.work_stealing = *b2;
        } else {
          return fail(node.source(), full + " must be true or false");
        }
      } else if (name == "backend") {
        auto text = string(full, node);
        if (!text) return std::unexpected(text.error());
        auto kind = parse_backend(*text);
        if (!kind) return fail(node.source(), full + ": " + kind.error());
        config_.runtime.backend = *kind;
      } else if (name == "stack_size") {
        auto n = integer(full, node, 16 * 1024, std::int64_t{1} << 30);
        if (!n) return std::unexpected(n.error());
        config_.runtime.stack_size = static_cast<std::size_t>(*n);
      } else if (name == "on_sigquit") {
        auto text = string(full, node);
        if (!text) return std::unexpected(text.error());
        auto dump = parse_on_sigquit(*text);
        if (!dump) return fail(node.source(), full + ": " + dump.error());
        config_.sigquit_dump = *dump;
      } else {
        return fail(key.source(), "unknown key '" + name +
                                      "' in [runtime] (expected threads, work_stealing, backend, stack_size, "
                                      "on_sigquit)");
      }
    }
    return {};
  }

  std::expected<void, Error> echo(const toml::table& section) {
    for (auto&& [key, node] : section) {
      const std::string name(key.str());
      if (name == "connection_mode") {
        const auto* text = node.as_string();
        if (!text) return fail(node.source(), "echo.connection_mode must be a string");
        auto mode = parse_connection_mode(text->get());
        if (!mode) return fail(node.source(), "echo.connection_mode: " + mode.error());
        config_.connection_mode = *mode;
        continue;
      }
      if (name != "listen")
        return fail(key.source(), "unknown key '" + name + "' in [echo] (expected listen, connection_mode)");
      auto hp = address("echo.listen", node);
      if (!hp) return std::unexpected(hp.error());
      echo_listen_ = *hp;
    }
    return {};
  }

  std::expected<void, Error> proxy(const toml::table& section) {
    for (auto&& [key, node] : section) {
      const std::string name(key.str());
      const std::string full = "proxy." + name;
      if (name == "listen") {
        auto hp = address(full, node);
        if (!hp) return std::unexpected(hp.error());
        proxy_listen_ = *hp;
      } else if (name == "upstreams") {
        std::vector<HostPort> list;
        if (node.is_string()) {  // a single address is accepted as well as an array of them
          auto hp = address(full, node);
          if (!hp) return std::unexpected(hp.error());
          list.push_back(*hp);
        } else if (const auto* array = node.as_array()) {
          for (const toml::node& item : *array) {
            auto hp = address(full, item);
            if (!hp) return std::unexpected(hp.error());
            list.push_back(*hp);
          }
        } else {
          return fail(node.source(), full + " must be an array of \"HOST:PORT\" strings");
        }
        for (const HostPort& hp : list) {
          if (hp.port == 0)
            return fail(node.source(), full + ": upstream '" + hp.to_string() + "' has port 0");
        }
        if (list.empty()) return fail(node.source(), full + " is empty");
        config_.upstreams = std::move(list);
      } else if (name == "connect_timeout_ms") {
        if (auto r = duration(full, node, 1, kMaxConnectTimeoutMs, config_.connect_timeout); !r) return r;
      } else if (name == "balance") {
        auto text = string(full, node);
        if (!text) return std::unexpected(text.error());
        auto b = parse_balance(*text);
        if (!b) return fail(node.source(), full + ": " + b.error());
        config_.balance = *b;
      } else if (name == "health_check_interval_ms") {
        if (auto r = duration(full, node, 0, kMaxConnectTimeoutMs, config_.health_check_interval); !r)
          return r;
      } else if (name == "response_timeout_ms") {
        if (auto r = duration(full, node, 0, kMaxConnectTimeoutMs, config_.response_timeout); !r) return r;
      } else if (name == "idle_timeout_s") {
        if (auto r = duration(full, node, 0, kMaxIdleTimeoutS, config_.idle_timeout); !r) return r;
      } else {
        return fail(key.source(),
                    "unknown key '" + name +
                        "' in [proxy] (expected listen, upstreams, balance, connect_timeout_ms, "
                        "health_check_interval_ms, response_timeout_ms, idle_timeout_s)");
      }
    }
    return {};
  }

  const std::string& path_;               // for messages: "FILE:LINE: ..."
  AppConfig& config_;                     // receives the [runtime] and [proxy] values
  std::optional<HostPort> echo_listen_;   // [echo] listen, if the file has it
  std::optional<HostPort> proxy_listen_;  // [proxy] listen, if the file has it
};

// --- merging -------------------------------------------------------------------------------------------

std::expected<AppConfig, Error> merge(AppKind kind, const CliValues& cli) {
  AppConfig config;
  std::optional<HostPort> listen;
  if (kind == AppKind::echo) listen = *HostPort::parse(kDefaultEchoListen);

  // 1. the file, over the defaults
  if (cli.config_path) {
    auto text = read_file(*cli.config_path);
    if (!text) return std::unexpected(text.error());
    if (auto ok = check_nesting(*cli.config_path, *text); !ok) return std::unexpected(ok.error());
    FileLoader loader(*cli.config_path, config);
    if (auto r = loader.load(*text); !r) return std::unexpected(r.error());
    if (loader.listen(kind)) listen = loader.listen(kind);
  }

  // 2. the environment, over the file
  auto runtime = Config::from_env(config.runtime);
  if (!runtime) return std::unexpected("environment: " + runtime.error());
  config.runtime = std::move(*runtime);

  // 3. the command line, over everything
  if (cli.threads) config.runtime.threads = *cli.threads;
  if (cli.backend) config.runtime.backend = *cli.backend;
  if (cli.work_stealing) config.runtime.work_stealing = *cli.work_stealing;
  if (cli.listen) {
    auto hp = HostPort::parse(*cli.listen);
    if (!hp) return std::unexpected("--listen: " + hp.error());
    listen = *hp;
  }
  if (!cli.upstreams.empty()) {
    config.upstreams.clear();
    for (const std::string& text : cli.upstreams) {
      auto hp = HostPort::parse(text);
      if (!hp) return std::unexpected("--upstream: " + hp.error());
      if (hp->port == 0) return std::unexpected("--upstream: upstream '" + text + "' has port 0");
      config.upstreams.push_back(*hp);
    }
  }
  if (cli.connect_timeout_ms) config.connect_timeout = std::chrono::milliseconds(*cli.connect_timeout_ms);
  if (cli.balance) config.balance = *cli.balance;
  if (cli.connection_mode) config.connection_mode = *cli.connection_mode;
  if (cli.sigquit_dump) config.sigquit_dump = *cli.sigquit_dump;
  if (cli.health_check_interval_ms)
    config.health_check_interval = std::chrono::milliseconds(*cli.health_check_interval_ms);
  if (cli.response_timeout_ms) config.response_timeout = std::chrono::milliseconds(*cli.response_timeout_ms);
  if (cli.idle_timeout_s) config.idle_timeout = std::chrono::seconds(*cli.idle_timeout_s);

  // 4. what must be there, and what must work
  if (!listen) {
    return std::unexpected(
        std::string("no listen address: pass --listen HOST:PORT or set listen in [proxy] of "
                    "the --config file"));
  }
  config.listen = *listen;
  if (kind == AppKind::proxy && config.upstreams.empty()) {
    return std::unexpected(
        std::string("no upstream: pass --upstream HOST:PORT[,HOST:PORT...] or set upstreams in [proxy] of "
                    "the --config file"));
  }
  if (kind == AppKind::echo) config.upstreams.clear();
  if (auto ok = config.runtime.validate(); !ok) return std::unexpected(ok.error());
  // A backend that is not built in or that the OS refuses (io_uring switched off by a sysctl or seccomp)
  // is bad input, not a reason to fall back silently: try to make one, and say why it failed.
  std::error_code ec;
  if (!make_backend(config.runtime.backend, ec))
    return std::unexpected(explain_backend_error(config.runtime.backend, ec));
  return config;
}

}  // namespace

std::expected<AppConfig, int> load_app_config(AppKind kind, int argc, char** argv) {
  CliValues cli;
  if (auto stop = parse_command_line(kind, argc, argv, cli)) return std::unexpected(*stop);
  try {
    auto config = merge(kind, cli);
    if (!config) {
      log_line(config.error());
      return std::unexpected(2);
    }
    if (cli.check) {
      std::cout << "configuration OK: listen " << config->listen.to_string() << ", "
                << describe_runtime(config->runtime);
      for (std::size_t i = 0; i < config->upstreams.size(); ++i)
        std::cout << (i == 0 ? ", upstreams " : ",") << config->upstreams[i].to_string();
      if (kind == AppKind::echo)
        std::cout << ", connection mode "
                  << (config->connection_mode == ConnectionMode::idle_loop ? "idle-loop" : "fiber");
      if (kind == AppKind::proxy)
        std::cout << ", balance "
                  << (config->balance == UpstreamPool::Balance::round_robin ? "round-robin"
                                                                            : "least-connections");
      std::cout << std::endl;
      return std::unexpected(0);
    }
    return std::move(*config);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc while reading a huge file
    log_line("cannot load the configuration: ", e.what());
    return std::unexpected(2);
  }
}

std::string restart_only_changes(const AppConfig& running, const AppConfig& loaded) {
  std::string out;
  const auto note = [&out](bool differs, const char* name) {
    if (differs) out.append(out.empty() ? "" : ", ").append(name);
  };
  note(running.listen.host != loaded.listen.host || running.listen.port != loaded.listen.port, "listen");
  note(running.runtime.threads != loaded.runtime.threads, "threads");
  note(running.runtime.backend != loaded.runtime.backend, "backend");
  note(running.runtime.work_stealing != loaded.runtime.work_stealing, "work_stealing");
  note(running.runtime.stack_size != loaded.runtime.stack_size, "stack_size");
  note(running.connection_mode != loaded.connection_mode, "connection_mode");
  note(running.sigquit_dump != loaded.sigquit_dump, "on_sigquit");
  return out;
}

std::string describe_runtime(const Config& config) {
  std::ostringstream out;
  out << config.threads << (config.threads == 1 ? " thread" : " threads") << ", backend "
      << to_string(config.backend) << ", work stealing " << (config.work_stealing ? "on" : "off") << ", "
      << config.stack_size / 1024 << " KiB stacks";
  return out.str();
}

}  // namespace fiberio
