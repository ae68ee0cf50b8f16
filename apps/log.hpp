// apps/log.hpp — the servers' diagnostics: one line per event on stderr, prefixed with the program's name.
//
//   fiberio::log_line("--threads: must be 1..1024, got 0");  // "fiberio-proxy: --threads: ..."
//   fiberio::log_event(fiberio::LogLevel::warn, "upstream ", addr, " refused; skipping it for 2 s");
//   //   "fiberio-proxy: 2026-12-02T01:58:32.123Z [pid 4242] warn: upstream ..."
//
// log_line is for what the program says about its input before it serves (usage errors, as other
// command-line tools print them); log_event for what happens while it serves, with the time (UTC, to the
// millisecond), the process id and a level, so that lines from several servers in one log can be told
// apart and ordered.
// stdout is reserved for the one ready line (`listening on HOST:PORT`); everything else goes here.
// Thread-safety: any thread or fiber; a line is written with one write(2), so lines from several workers
// never interleave. Never blocks a fiber for long: stderr is a pipe or a terminal, written synchronously.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace fiberio {

// Sets the prefix of every line (the program's name); call once, at start, before any thread exists.
void set_log_program(std::string_view program);
std::string_view log_program() noexcept;

// The most bytes of a line's text written; the rest is counted, not shown.
inline constexpr std::size_t kMaxLogText = 1024;

enum class LogLevel : std::uint8_t { info, warn, error };

// Writes "PROGRAM: text\n" to stderr in one call, control bytes (C0, DEL, C1) and bytes that are not
// UTF-8 escaped as \xNN, and the text cut after kMaxLogText bytes.
void write_log_line(std::string_view text) noexcept;
// Likewise, with "TIME [pid PID] LEVEL: " before the text.
void write_log_event(LogLevel level, std::string_view text) noexcept;

template <class... Parts>
void log_line(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  write_log_line(out.str());
}

template <class... Parts>
void log_event(LogLevel level, const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  write_log_event(level, out.str());
}

// Lets one line through per interval and counts the ones it held back, so that an event repeated at high
// rate (accept failures, a local resource shortage) cannot flood stderr. Thread-safety: any thread.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration interval = std::chrono::seconds(1))
      : interval_(interval) {}
  // True if a line may be written now; `held_back` is then set to the lines refused since the last one.
  bool allow(std::uint64_t& held_back) noexcept;

 private:
  const std::chrono::steady_clock::duration interval_;
  std::atomic<std::chrono::steady_clock::rep> next_{0};  // earliest time of the next line
  std::atomic<std::uint64_t> held_back_{0};
};

}  // namespace fiberio
