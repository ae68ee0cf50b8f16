#include "log.hpp"

#include <unistd.h>

#include <cerrno>

namespace fiberio {
namespace {

std::string& program_name() {
  static std::string name = "fiberio";
  return name;
}

}  // namespace

void set_log_program(std::string_view program) {
  program_name() = program;
}

std::string_view log_program() noexcept {
  return program_name();
}

void write_log_line(std::string_view text) noexcept {
  try {
    std::string line;
    const std::size_t shown = text.size() < kMaxLogText ? text.size() : kMaxLogText;
    line.reserve(program_name().size() + shown + 48);
    line.append(program_name()).append(": ");
    // Input quoted in a message (a config value, a flag) may hold anything: control bytes and escape
    // sequences are shown as \xNN, never passed to the terminal, and a huge value is cut short.
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : text.substr(0, shown)) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        line.append("\\x").push_back(kHex[u >> 4]);
        line.push_back(kHex[u & 15]);
      } else {
        line.push_back(c);
      }
    }
    if (shown < text.size())
      line.append("... (").append(std::to_string(text.size() - shown)).append(" more bytes)");
    line.push_back('\n');
    std::string_view rest = line;
    while (!rest.empty()) {
      const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // stderr is gone: nothing else to tell
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  } catch (...) {  // std::bad_alloc: drop the line rather than take the server down
  }
}

bool LogLimiter::allow(std::uint64_t& held_back) noexcept {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto next = next_.load(std::memory_order_relaxed);
  if (now < next ||
      !next_.compare_exchange_strong(next, now + interval_.count(), std::memory_order_relaxed)) {
    held_back_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  held_back = held_back_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace fiberio
