#include "log.hpp"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace fiberio {
namespace {

std::string& program_name() {
  static std::string name = "fiberio";
  return name;
}

// "PROGRAM: " + header + text (escaped, cut short) + "\n", in one write(2).
void write_line(std::string_view header, std::string_view text) noexcept {
  try {
    std::string line;
    const std::size_t shown = text.size() < kMaxLogText ? text.size() : kMaxLogText;
    line.reserve(program_name().size() + header.size() + shown + 48);
    line.append(program_name()).append(": ").append(header);
    // Input quoted in a message (a config value, a flag) may hold anything: control bytes (C0, DEL, and
    // C1 as UTF-8 encodes it) and bytes that are not UTF-8 are shown as \xNN, never passed to the
    // terminal, and a huge value is cut short.
    static constexpr char kHex[] = "0123456789abcdef";
    const auto escape = [&line](unsigned char u) {
      line.append("\\x").push_back(kHex[u >> 4]);
      line.push_back(kHex[u & 15]);
    };
    const std::string_view shown_text = text.substr(0, shown);
    for (std::size_t i = 0; i < shown_text.size();) {
      const auto u = static_cast<unsigned char>(shown_text[i]);
      if (u < 0x80) {
        if (u < 0x20 || u == 0x7f)
          escape(u);
        else
          line.push_back(static_cast<char>(u));
        ++i;
        continue;
      }
      // A multi-byte UTF-8 sequence: its length from the lead byte, then that many continuation bytes.
      const std::size_t length = u >= 0xf0 && u <= 0xf4 ? 4 : u >= 0xe0 ? 3 : u >= 0xc2 && u <= 0xdf ? 2 : 0;
      bool valid = length != 0 && i + length <= shown_text.size();
      for (std::size_t k = 1; valid && k < length; ++k)
        valid = (static_cast<unsigned char>(shown_text[i + k]) & 0xc0) == 0x80;
      const bool c1 =
          valid && u == 0xc2 && static_cast<unsigned char>(shown_text[i + 1]) < 0xa0;  // U+0080..9F
      if (!valid || c1) {
        escape(u);
        ++i;
        continue;
      }
      line.append(shown_text.substr(i, length));
      i += length;
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

}  // namespace

void set_log_program(std::string_view program) {
  program_name() = program;
}

std::string_view log_program() noexcept {
  return program_name();
}

void write_log_line(std::string_view text) noexcept {
  write_line({}, text);
}

void write_log_event(LogLevel level, std::string_view text) noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  ::gmtime_r(&now.tv_sec, &utc);
  static const char* const kLevels[] = {"info", "warn", "error"};
  char header[96];
  std::snprintf(header, sizeof header,
                "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [pid %d] %s: ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, now.tv_nsec / 1'000'000,
                static_cast<int>(::getpid()), kLevels[static_cast<int>(level)]);
  write_line(header, text);
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
