// net/copy.hpp — copy_bidirectional(): relays bytes both ways between two streams (the heart of a proxy)
// until both directions have ended, passing a half-close from either side on to the other.
//
//   auto moved = fiberio::copy_bidirectional(client, upstream, {.idle_timeout = 60s});
//   if (!moved) log("relay failed:", moved.error().message());
//   else log(moved->a_to_b, "bytes up,", moved->b_to_a, "bytes down");
//
// How it runs: two fibers, one per direction, spawned on the caller's runtime; the caller waits for both
// (so the streams must simply outlive the call). A direction copies until end of stream from its source,
// then shuts down the write side of its destination (the half-close passes on), and ends. The first
// error in either direction cancels the other one and is returned; the streams are left open (close
// them). Two fibers rather than one because each direction then is plain sequential code that blocks on
// exactly one thing at a time.
// Small transfers, large ones: each direction reads into a 4 KiB buffer on its fiber's stack and writes
// that out, one read and one write per message, no pipe. A read that fills the buffer starts a large
// transfer, which on Linux moves socket -> pipe -> socket with splice(2), so the bytes never enter user
// space, until a splice from the source comes back short; the pipe then goes back to a per-worker pool
// of empty pipes (so a proxied connection holds 2 fds, not 6, while it is not splicing). Where a pipe
// cannot be had (EMFILE) or a stream refuses splice (EINVAL), or with use_splice off, a large transfer
// goes through a heap buffer of chunk_size instead. docs/benchmarks.md has the numbers.
// splice(2) into a socket whose peer is gone raises SIGPIPE (it takes no MSG_NOSIGNAL). If the process
// ignores SIGPIPE (looked up when a direction first splices), it just fails with EPIPE; otherwise the
// write blocks SIGPIPE in the calling thread around the call and consumes the one it raised. Either way
// the error comes back as errc::broken_pipe like every other write's.
// Timeouts: with idle_timeout set, no byte moving in either direction for that long ends the copy with
// errc::timed_out; with response_timeout set, b not sending a byte back within that long after a's first
// bytes reached it ends it with NetErrc::no_response (both directions are stopped either way). The
// calling fiber watches the byte counts every quarter of the shorter timeout, so a timeout ends the copy
// between its length and 1.25 times it; the transfers themselves read no clock and arm no timer.
// Errors, cancellation: net/error.hpp; a cancelled caller cancels both directions and waits for them.
// Thread-safety: a and b must not be read or written by anyone else during the call.
// Invariant: when copy_bidirectional returns (or throws), neither direction fiber is running any more.
#pragma once

#include <fiberio/net/error.hpp>
#include <fiberio/net/stream_socket.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace fiberio {

struct CopyOptions {
  bool use_splice = true;              // false: large transfers too go through a buffer
  std::size_t chunk_size = 64 * 1024;  // bytes per splice/read in a large transfer (and the pipe's size)
  std::optional<Clock::duration> idle_timeout{};  // nullopt: never
  // Once bytes have gone from a to b, b must send its first byte back within this, or the copy ends
  // with NetErrc::no_response (a proxy's upstream that accepts and never answers). nullopt: no limit.
  std::optional<Clock::duration> response_timeout{};
};

struct CopyResult {
  std::uint64_t a_to_b = 0;  // bytes written to b
  std::uint64_t b_to_a = 0;  // bytes written to a
};

IoResult<CopyResult> copy_bidirectional(StreamSocket& a, StreamSocket& b, const CopyOptions& options = {});

// What a copy did, also when it failed: the bytes written each way, and which stream an error came
// from (a read from it or a write to it failed); none for a success, a timeout or a cancellation.
struct CopyReport {
  enum class Side : std::uint8_t { none, a, b };
  std::uint64_t a_to_b = 0;
  std::uint64_t b_to_a = 0;
  Side failed = Side::none;
};

// copy_bidirectional() that also fills `report`, however the copy ends (a proxy uses it to tell an
// upstream's reset from its client's).
IoResult<CopyResult> copy_bidirectional(StreamSocket& a, StreamSocket& b, const CopyOptions& options,
                                        CopyReport& report);

}  // namespace fiberio
