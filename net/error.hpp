// net/error.hpp — the error conventions every net/ call follows, and the error codes net/ adds.
//
//  - An I/O failure is a value: IoResult<T> = std::expected<T, std::error_code>. OS errors keep their
//    errno in std::generic_category(), so `r.error() == std::errc::connection_reset` works.
//  - Every waiting call takes a Timeout (executor/clock.hpp): a duration (`5s`), a deadline
//    (`Clock::now() + 5s`) or none (`{}`, waits for ever); one that passes gives std::errc::timed_out.
//    Multi-step calls (read_exact, write_all, connect to several addresses) apply one limit to the whole
//    call, not to each step.
//  - Cancellation of the calling fiber throws fiberio::Cancelled (as AsyncFd does); nothing else throws,
//    except std::bad_alloc and std::system_error when a thread cannot be created (spawn_blocking).
//  - End of stream is not an error: read_some() returns 0. Only calls that promise a length report it:
//    read_exact() gives NetErrc::eof (no byte came) or NetErrc::unexpected_eof (some did).
//  - Parsing text (SocketAddress::parse, HostPort::parse) is not I/O: it returns
//    std::expected<T, std::string> whose message quotes the input, like runtime/config.hpp's parsers.
//  - getaddrinfo failures (EAI_*) are in resolver_category(); EAI_SYSTEM becomes the errno.
// Thread-safety: the categories are immutable singletons.
#pragma once

#include <cerrno>
#include <expected>
#include <system_error>
#include <type_traits>

namespace fiberio {

template <class T>
using IoResult = std::expected<T, std::error_code>;

enum class NetErrc : int {
  eof = 1,              // the stream ended before the first byte of a read_exact
  unexpected_eof,       // the stream ended in the middle of a read_exact
  signals_not_blocked,  // SignalListener::open: a signal is not blocked in this thread (see signals.hpp)
  no_response,          // copy_bidirectional: b sent nothing back within CopyOptions::response_timeout
};

const std::error_category& net_category() noexcept;
const std::error_category& resolver_category() noexcept;

inline std::error_code make_error_code(NetErrc e) noexcept {
  return {static_cast<int>(e), net_category()};
}

namespace detail {
// The calling thread's errno as an error_code.
inline std::error_code last_error() noexcept {
  return {errno, std::generic_category()};
}
}  // namespace detail

}  // namespace fiberio

template <>
struct std::is_error_code_enum<fiberio::NetErrc> : std::true_type {};
