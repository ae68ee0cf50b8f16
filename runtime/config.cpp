#include <fiberio/runtime/config.hpp>

#include <fiberio/executor/detail/sanitizer.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <thread>

namespace fiberio {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

std::string to_string(const StallReport& stall) {
  const std::string fiber = stall.fiber.empty() ? "an unnamed fiber" : "fiber '" + stall.fiber + "'";
  return "worker " + std::to_string(stall.worker) + " stalled: " + fiber + " has run at least " +
         std::to_string(stall.ran_for.count()) +
         " ms without reaching the scheduler (a loop that never waits, or a call that blocks the thread: "
         "move it to spawn_blocking, or yield in the loop)";
}

std::uint32_t Config::default_threads() {
  return std::max(1u, std::thread::hardware_concurrency());
}

std::size_t Config::default_stack_size() {
  return detail::kSanitized ? 256 * 1024 : 64 * 1024;
}

std::expected<void, std::string> Config::validate() const {
  if (threads < 1 || threads > 1024)
    return std::unexpected("threads must be 1..1024, got " + std::to_string(threads));
  if (stack_size < 16 * 1024 || stack_size > (std::size_t{1} << 30)) {
    return std::unexpected("stack_size must be 16384..1073741824 bytes, got " + std::to_string(stack_size));
  }
  if (event_interval < 1) return std::unexpected(std::string("event_interval must be at least 1"));
  if (io_budget < 1) return std::unexpected(std::string("io_budget must be at least 1"));
  if (stall_threshold.count() < 0) {
    return std::unexpected("stall_threshold must not be negative, got " +
                           std::to_string(stall_threshold.count()) + " ms");
  }
  if (idle_stack_release.count() < 0) {
    return std::unexpected("idle_stack_release must not be negative, got " +
                           std::to_string(idle_stack_release.count()) + " ms");
  }
  return {};
}

std::expected<BackendKind, std::string> parse_backend(std::string_view text) {
  const std::string t = lower(text);
  if (t == "auto") return BackendKind::automatic;
  if (t == "epoll") return BackendKind::epoll;
  if (t == "poll") return BackendKind::poll;
  if (t == "io_uring" || t == "uring") return BackendKind::io_uring;
  return std::unexpected("unknown backend '" + std::string(text) +
                         "' (expected auto, epoll, io_uring or poll)");
}

std::expected<bool, std::string> parse_bool(std::string_view text) {
  const std::string t = lower(text);
  if (t == "true" || t == "1" || t == "on" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "off" || t == "no") return false;
  return std::unexpected("expected true/false/1/0/on/off, got '" + std::string(text) + "'");
}

std::expected<std::uint64_t, std::string> parse_unsigned(std::string_view text) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return std::unexpected("expected a non-negative integer, got '" + std::string(text) + "'");
  }
  return value;
}

std::expected<Config, std::string> Config::from_env() {
  return from_env(Config{});
}

std::expected<Config, std::string> Config::from_env(Config base) {
  auto fail = [](const char* name, const char* value, const std::string& why) {
    return std::unexpected(std::string(name) + "=" + value + ": " + why);
  };
  if (const char* v = std::getenv("FIBERIO_THREADS")) {
    auto n = parse_unsigned(v);
    if (!n) return fail("FIBERIO_THREADS", v, n.error());
    if (*n < 1 || *n > 1024) return fail("FIBERIO_THREADS", v, "must be 1..1024");
    base.threads = static_cast<std::uint32_t>(*n);
  }
  if (const char* v = std::getenv("FIBERIO_WORK_STEALING")) {
    auto b = parse_bool(v);
    if (!b) return fail("FIBERIO_WORK_STEALING", v, b.error());
    base.work_stealing = *b;
  }
  if (const char* v = std::getenv("FIBERIO_BACKEND")) {
    auto k = parse_backend(v);
    if (!k) return fail("FIBERIO_BACKEND", v, k.error());
    base.backend = *k;
  }
  if (const char* v = std::getenv("FIBERIO_STACK_SIZE")) {
    auto n = parse_unsigned(v);
    if (!n) return fail("FIBERIO_STACK_SIZE", v, n.error());
    base.stack_size = *n;
    if (auto ok = base.validate(); !ok) return fail("FIBERIO_STACK_SIZE", v, ok.error());
  }
  return base;
}

}  // namespace fiberio
