#include <fiberio/net/copy.hpp>

#include <fiberio/executor/channel.hpp>
#include <fiberio/runtime/runtime.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

namespace fiberio {
namespace {

// A pipe for splice(2), both ends non-blocking. Empty whenever it is given back to the pool.
struct Pipe {
  int read = -1;
  int write = -1;
  explicit operator bool() const noexcept { return read >= 0; }
  void close() noexcept {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
    read = write = -1;
  }
};

// Each worker thread keeps up to kKeepPerThread empty pipes of the default size, so that a direction
// which starts splicing takes one without a syscall and one that stops gives it back. The thread-local
// list is reached only through these non-inlined functions: a fiber may resume on another thread after
// a suspension, and an address of a thread_local computed before it would name the old thread's list.
class PipePool {
 public:
  static constexpr std::size_t kKeepPerThread = 16;

  // An empty pipe of at least `capacity` bytes, or an invalid one with errno set (EMFILE...).
  [[gnu::noinline]] static Pipe take(std::size_t capacity) {
    auto& pipes = local().pipes;
    if (capacity <= kDefaultCapacity && !pipes.empty()) {
      const Pipe pipe = pipes.back();
      pipes.pop_back();
      return pipe;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
    if (capacity > kDefaultCapacity)
      ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(capacity));  // best effort
    return Pipe{fds[0], fds[1]};
  }
  // Gives back a pipe that take(capacity) returned; `empty` says whether every byte spliced into it
  // was spliced out again (a pipe with bytes left, or a bigger one, is closed).
  [[gnu::noinline]] static void give(Pipe pipe, std::size_t capacity, bool empty) noexcept {
    auto& pipes = local().pipes;
    if (empty && capacity <= kDefaultCapacity && pipes.size() < kKeepPerThread) {
      pipes.push_back(pipe);  // reserved: no allocation here
      return;
    }
    pipe.close();
  }

 private:
  static constexpr std::size_t kDefaultCapacity = 64 * 1024;  // Linux's default pipe size
  struct List {
    std::vector<Pipe> pipes;
    List() { pipes.reserve(kKeepPerThread); }
    ~List() {
      for (Pipe& pipe : pipes)
        pipe.close();
    }
  };
  static List& local() {
    thread_local List list;
    return list;
  }
};

// Whether SIGPIPE is ignored in this process: then a splice into a socket whose peer is gone fails
// with EPIPE and raises nothing, and needs no signal-mask calls around it.
bool sigpipe_ignored() {
  struct sigaction current {};
  return ::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_IGN;
}

// splice(2) from a pipe into a socket. Unless SIGPIPE is ignored, with SIGPIPE blocked in this thread
// for the call (see copy.hpp).
ssize_t splice_out(int pipe_read, int socket, std::size_t length, bool mask_sigpipe) {
  if (!mask_sigpipe)
    return ::splice(pipe_read, nullptr, socket, nullptr, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  sigset_t pipe_only, old;
  ::sigemptyset(&pipe_only);
  ::sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const ssize_t n = ::splice(pipe_read, nullptr, socket, nullptr, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  const int err = errno;
  if (n < 0 && err == EPIPE && !::sigismember(&old, SIGPIPE)) {
    const timespec zero{};
    ::sigtimedwait(&pipe_only, nullptr, &zero);  // the SIGPIPE this call raised, pending on this thread
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

// One direction of the relay. Small transfers go through a buffer on the fiber's stack with one read
// and one write each; a read that fills it means a large transfer, which then moves by splice (or, where
// splice is off or unavailable, through a heap buffer of chunk_size) until a read comes back short.
class Direction {
 public:
  // Bytes of the stack buffer: a read that fills it starts bulk mode.
  static constexpr std::size_t kSmall = 4096;

  Direction(StreamSocket& from, StreamSocket& to, const CopyOptions& options)
      : from_(from),
        to_(to),
        chunk_(options.chunk_size == 0 ? 64 * 1024 : options.chunk_size),
        splice_(options.use_splice) {}

  // Any thread (the caller's watch reads it while the direction runs).
  std::uint64_t moved() const noexcept { return moved_.load(std::memory_order_relaxed); }
  // After run(): the stream whose read or write ended it with an error, or nullptr.
  const StreamSocket* failed_on() const noexcept { return failed_on_; }

  IoResult<void> run() {
    if (auto r = relay(); !r) return r;
    // End of stream from the source: pass the half-close on. ENOTCONN: the peer is gone entirely.
    if (auto s = to_.shutdown_write(); !s && s.error() != std::errc::not_connected)
      return failed_on(to_, s.error());
    return {};
  }

 private:
  // Until end of stream from the source (or an error).
  IoResult<void> relay() {
    std::byte small[kSmall];
    for (;;) {
      auto in = from_.read_some({small, kSmall});
      if (!in) return failed_on(from_, in.error());
      if (*in == 0) return {};
      if (auto w = write({small, *in}); !w) return w;
      if (*in < kSmall) continue;
      auto bulk = splice_ ? bulk_splice() : bulk_buffered();
      if (!bulk) return std::unexpected(bulk.error());
      if (*bulk) return {};  // the source ended during it
    }
  }

  // Bulk mode through a pipe, until a splice from the source comes back short (then the pipe, empty,
  // goes back to the pool, and small transfers go through the stack buffer again). True at end of stream.
  IoResult<bool> bulk_splice() {
    Pipe pipe = PipePool::take(chunk_);
    if (!pipe) return bulk_buffered();  // e.g. EMFILE: copy through memory
    if (!sigpipe_checked_) {
      mask_sigpipe_ = !sigpipe_ignored();
      sigpipe_checked_ = true;
    }
    std::size_t pending = 0;  // bytes in the pipe
    auto r = [&]() -> IoResult<bool> {
      for (;;) {
        // The pipe is empty here, so EAGAIN can only mean "the source has no data": wait for it.
        auto in = from_.async_fd().io_some(
            Interest::read,
            [&] {
              return ::splice(from_.fd(), nullptr, pipe.write, nullptr, chunk_,
                              SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            },
            chunk_);
        if (!in) {
          if (in.error() == std::errc::invalid_argument && spliced_ == 0) {
            splice_ = false;  // this stream refuses splice: stay with read/write from now on
            return bulk_buffered();
          }
          return failed_on(from_, in.error());
        }
        if (*in == 0) return true;
        // Drain the pipe into the destination; EAGAIN now means "the destination is full".
        pending = static_cast<std::size_t>(*in);
        while (pending > 0) {
          auto out = to_.async_fd().io_some(
              Interest::write, [&] { return splice_out(pipe.read, to_.fd(), pending, mask_sigpipe_); },
              pending);
          if (!out) return failed_on(to_, out.error());
          pending -= static_cast<std::size_t>(*out);
          count(static_cast<std::size_t>(*out));
          spliced_ += static_cast<std::uint64_t>(*out);
        }
        if (static_cast<std::size_t>(*in) < chunk_) return false;  // the source drained: small again
      }
    }();
    PipePool::give(pipe, chunk_, pending == 0);
    return r;
  }

  // Bulk mode through a heap buffer of chunk_size, until a read comes back short. True at end of stream.
  IoResult<bool> bulk_buffered() {
    if (!buffer_) buffer_ = std::make_unique<std::byte[]>(chunk_);  // on the heap: stacks are small
    for (;;) {
      auto in = from_.read_some({buffer_.get(), chunk_});
      if (!in) return failed_on(from_, in.error());
      if (*in == 0) return true;
      if (auto w = write({buffer_.get(), *in}); !w) return std::unexpected(w.error());
      if (*in < chunk_) return false;
    }
  }

  // Inline, as the socket calls under it: a relayed message costs one read and one write, no calls.
  [[gnu::always_inline]] IoResult<void> write(std::span<const std::byte> rest) {
    for (;;) {  // `rest` is never empty: reads that returned 0 bytes ended the relay
      auto out = to_.write_some(rest);
      if (!out) [[unlikely]]
        return failed_on(to_, out.error());
      count(*out);
      if (*out == rest.size()) [[likely]]
        return {};
      rest = rest.subspan(*out);
    }
  }

  // Records which stream an error came from (for CopyReport::failed), and returns it.
  std::unexpected<std::error_code> failed_on(const StreamSocket& stream, std::error_code error) noexcept {
    failed_on_ = &stream;
    return std::unexpected(error);
  }

  // This direction's fiber is the only writer of moved_; the caller's watch reads it from any thread.
  void count(std::size_t bytes) noexcept {
    moved_.store(moved_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  }

  StreamSocket& from_;
  StreamSocket& to_;
  const std::size_t chunk_;
  bool splice_;                   // bulk mode splices (until a stream refuses it)
  bool sigpipe_checked_ = false;  // mask_sigpipe_ is known (looked up when this direction first splices)
  bool mask_sigpipe_ = true;
  std::unique_ptr<std::byte[]> buffer_;  // bulk mode without splice; made on first use
  std::atomic<std::uint64_t> moved_{0};
  std::uint64_t spliced_ = 0;                // of moved_, the bytes that went through the pipe
  const StreamSocket* failed_on_ = nullptr;  // the stream whose read or write failed, if one did
};

// The caller's watch over the two directions' byte counts, for the idle and response timeouts. It looks
// every quarter of the shorter timeout it still watches, so a timeout fires between its length and 1.25
// times it, never early; the directions themselves read no clock and arm no timer (a per-transfer deadline
// would cost a clock read and a timer insert and cancel per message).
class Watch {
 public:
  Watch(const CopyOptions& options, const Direction& a_to_b, const Direction& b_to_a)
      : idle_(options.idle_timeout), response_(options.response_timeout), a_to_b_(a_to_b), b_to_a_(b_to_a) {
    last_change_ = Clock::now();
  }

  // When to look next: in a quarter of the shorter timeout still to watch (the response timeout only
  // until b has answered); nullopt: never (none set, or the copy is already being stopped).
  std::optional<Deadline> next() const noexcept {
    if (stopped_) return std::nullopt;
    Clock::duration shortest = idle_.value_or(Clock::duration::max());
    if (response_ && !answered_) shortest = std::min(shortest, *response_);
    if (shortest == Clock::duration::max()) return std::nullopt;
    return Clock::now() + std::max<Clock::duration>(shortest / 4, std::chrono::milliseconds(1));
  }

  // A look: the error to stop the copy with, if a timeout has passed.
  std::optional<std::error_code> look() {
    const Deadline now = Clock::now();
    const std::uint64_t up = a_to_b_.moved(), down = b_to_a_.moved();
    if (up + down != last_total_) {
      last_total_ = up + down;
      last_change_ = now;
    } else if (idle_ && now - last_change_ >= *idle_) {
      return stop(std::make_error_code(std::errc::timed_out));
    }
    if (down > 0) answered_ = true;
    if (response_ && up > 0 && down == 0) {
      if (sent_seen_ == Deadline::max()) {
        sent_seen_ = now;
      } else if (now - sent_seen_ >= *response_) {
        return stop(make_error_code(NetErrc::no_response));
      }
    }
    return std::nullopt;
  }

 private:
  std::error_code stop(std::error_code why) noexcept {
    stopped_ = true;
    return why;
  }

  const std::optional<Clock::duration> idle_, response_;
  const Direction& a_to_b_;
  const Direction& b_to_a_;
  std::uint64_t last_total_ = 0;
  Deadline last_change_;                  // when a look last saw the counts move (or the copy started)
  Deadline sent_seen_ = Deadline::max();  // when a look first saw bytes sent to b and none back
  bool answered_ = false;                 // a look saw bytes from b
  bool stopped_ = false;
};

}  // namespace

IoResult<CopyResult> copy_bidirectional(StreamSocket& a, StreamSocket& b, const CopyOptions& options) {
  CopyReport report;
  return copy_bidirectional(a, b, options, report);
}

IoResult<CopyResult> copy_bidirectional(StreamSocket& a, StreamSocket& b, const CopyOptions& options,
                                        CopyReport& report) {
  Direction directions[2] = {Direction(a, b, options), Direction(b, a, options)};
  IoResult<void> results[2] = {std::unexpected(std::make_error_code(std::errc::operation_canceled)),
                               std::unexpected(std::make_error_code(std::errc::operation_canceled))};
  Channel<int> finished(2);  // each direction reports its index once, however it ends

  auto run = [&](int i) {
    struct Report {
      Channel<int>& channel;
      int index;
      ~Report() { channel.try_send(index); }
    } report{finished, i};
    results[i] = directions[i].run();
  };
  JoinHandle<void> fibers[2] = {spawn([&run] { run(0); }, {.name = "copy a->b"}),
                                spawn([&run] { run(1); }, {.name = "copy b->a"})};

  // Joins a direction; a Cancelled that the direction itself ended with (we cancelled it) is expected,
  // one aimed at the caller (the handle is still joinable) propagates.
  auto join = [](JoinHandle<void>& h) {
    try {
      h.join();
    } catch (const Cancelled&) {
      if (h.joinable()) throw;
    }
  };
  int first = -1;
  std::optional<std::error_code> stopped;  // why the watch stopped the copy (a timeout), if it did
  bool caller_cancelled = false;
  try {
    // Until both directions have reported: the first error cancels the other direction; a timeout,
    // seen by the watch, cancels both. A cancelled direction is joined, not waited for on the channel: a
    // fiber cancelled before it first ran never enters its body, so it never reports (one worker makes
    // that the rule: the caller, woken by the failing direction, runs before the other is scheduled).
    Watch watch(options, directions[0], directions[1]);
    for (int reported = 0; reported < 2;) {
      const auto look_at = watch.next();
      const auto index = look_at ? finished.recv_until(*look_at) : finished.recv();
      if (index) {
        if (first < 0) first = *index;
        ++reported;
        if (!results[*index]) {
          fibers[1 - *index].cancel();
          break;
        }
      } else if ((stopped = watch.look())) {
        fibers[0].cancel();
        fibers[1].cancel();
        break;
      }
    }
    join(fibers[0]);
    join(fibers[1]);
  } catch (const Cancelled&) {
    caller_cancelled = true;  // handled below: a fiber must not suspend inside a catch handler
  }
  if (caller_cancelled) {
    // Stop both directions and wait for them, since they use our stack. The waits happen outside any
    // handler: the C++ runtime keeps "the exception being handled" per thread, and this fiber may resume
    // on another worker (tests/net_core_repro_test.cpp).
    for (auto& f : fibers)
      f.cancel();
    for (auto& f : fibers) {
      while (f.joinable()) {
        try {
          f.join();
        } catch (const Cancelled&) {
        }
      }
    }
    throw Cancelled{};
  }
  report.a_to_b = directions[0].moved();
  report.b_to_a = directions[1].moved();
  if (stopped) return std::unexpected(*stopped);
  // The first direction to fail is the cause; the other one was cancelled because of it.
  for (const int i : {first, 1 - first}) {
    if (results[i]) continue;
    if (const StreamSocket* on = directions[i].failed_on())
      report.failed = on == &a ? CopyReport::Side::a : CopyReport::Side::b;
    return std::unexpected(results[i].error());
  }
  return CopyResult{directions[0].moved(), directions[1].moved()};
}

}  // namespace fiberio
