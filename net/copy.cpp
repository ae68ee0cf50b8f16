#include <fiberio/net/copy.hpp>

#include <fiberio/executor/channel.hpp>
#include <fiberio/runtime/runtime.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <memory>

namespace fiberio {
namespace {

// The last time a byte moved in either direction, for the idle timeout.
class Activity {
 public:
  explicit Activity(std::optional<Clock::duration> idle) : idle_(idle) { touch(); }
  void touch() noexcept { last_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed); }
  // The deadline for the next blocking step.
  std::optional<Deadline> deadline() const noexcept {
    if (!idle_) return std::nullopt;
    return Deadline(Clock::duration(last_.load(std::memory_order_relaxed))) + *idle_;
  }
  // A step timed out: true if nothing moved in either direction for idle_timeout (else the other
  // direction kept the connection alive, and the step should wait again).
  bool expired() const noexcept {
    const auto d = deadline();
    return d && Clock::now() >= *d;
  }

 private:
  const std::optional<Clock::duration> idle_;
  std::atomic<Clock::rep> last_;
};

// Runs a blocking step with the idle deadline, waiting again while the other direction keeps moving.
template <class Step>
auto idle_aware(Activity& activity, Step&& step) {
  for (;;) {
    auto r = step(activity.deadline());
    if (r || r.error() != std::errc::timed_out || activity.expired()) return r;
  }
}

struct Pipe {
  int read = -1;
  int write = -1;
  ~Pipe() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
  }
};

// splice(2) from a pipe into a socket, with SIGPIPE blocked in this thread for the call (see copy.hpp).
ssize_t splice_out(int pipe_read, int socket, std::size_t length) {
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

class Direction {
 public:
  Direction(StreamSocket& from, StreamSocket& to, const CopyOptions& options, Activity& activity)
      : from_(from), to_(to), options_(options), activity_(activity) {}

  std::uint64_t moved() const noexcept { return moved_; }

  IoResult<void> run() {
    IoResult<void> r = options_.use_splice ? run_splice() : fallback();
    if (r && fell_back_) r = run_buffered();
    if (!r) return r;
    // End of stream from the source: pass the half-close on. ENOTCONN: the peer is gone entirely.
    if (auto s = to_.shutdown_write(); !s && s.error() != std::errc::not_connected) return s;
    return {};
  }

 private:
  IoResult<void> fallback() {
    fell_back_ = true;
    return {};
  }

  IoResult<void> run_splice() {
    Pipe pipe;
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return fallback();  // e.g. EMFILE: copy through memory
    pipe.read = fds[0];
    pipe.write = fds[1];
    const std::size_t chunk = options_.chunk_size == 0 ? 64 * 1024 : options_.chunk_size;
    if (chunk > 64 * 1024) ::fcntl(pipe.write, F_SETPIPE_SZ, static_cast<int>(chunk));  // best effort
    for (;;) {
      // The pipe is empty here, so EAGAIN can only mean "the source has no data": wait for it.
      auto in = idle_aware(activity_, [&](std::optional<Deadline> deadline) {
        return from_.async_fd().io(
            Interest::read,
            [&] {
              return ::splice(from_.fd(), nullptr, pipe.write, nullptr, chunk,
                              SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            },
            deadline);
      });
      if (!in) {
        if (in.error() == std::errc::invalid_argument && moved_ == 0) return fallback();  // no splice here
        return std::unexpected(in.error());
      }
      if (*in == 0) return {};
      activity_.touch();
      // Drain the pipe into the destination; EAGAIN now means "the destination is full".
      auto pending = static_cast<std::size_t>(*in);
      while (pending > 0) {
        auto out = idle_aware(activity_, [&](std::optional<Deadline> deadline) {
          return to_.async_fd().io(
              Interest::write, [&] { return splice_out(pipe.read, to_.fd(), pending); }, deadline);
        });
        if (!out) return std::unexpected(out.error());
        pending -= static_cast<std::size_t>(*out);
        moved_ += static_cast<std::uint64_t>(*out);
        activity_.touch();
      }
    }
  }

  IoResult<void> run_buffered() {
    const std::size_t chunk = options_.chunk_size == 0 ? 64 * 1024 : options_.chunk_size;
    // On the heap: fiber stacks are small (64 KiB by default).
    auto buffer = std::make_unique<std::byte[]>(chunk);
    for (;;) {
      auto in = idle_aware(activity_, [&](std::optional<Deadline> deadline) {
        return from_.read_some(std::span(buffer.get(), chunk), deadline);
      });
      if (!in) return std::unexpected(in.error());
      if (*in == 0) return {};
      activity_.touch();
      std::span<const std::byte> rest(buffer.get(), *in);
      while (!rest.empty()) {
        auto out = idle_aware(
            activity_, [&](std::optional<Deadline> deadline) { return to_.write_some(rest, deadline); });
        if (!out) return std::unexpected(out.error());
        rest = rest.subspan(*out);
        moved_ += *out;
        activity_.touch();
      }
    }
  }

  StreamSocket& from_;
  StreamSocket& to_;
  const CopyOptions& options_;
  Activity& activity_;
  std::uint64_t moved_ = 0;
  bool fell_back_ = false;
};

}  // namespace

IoResult<CopyResult> copy_bidirectional(StreamSocket& a, StreamSocket& b, const CopyOptions& options) {
  Activity activity(options.idle_timeout);
  Direction directions[2] = {Direction(a, b, options, activity), Direction(b, a, options, activity)};
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
  int first = 0;
  bool caller_cancelled = false;
  try {
    first = *finished.recv();
    if (!results[first]) fibers[1 - first].cancel();
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
  // The first direction to fail is the cause; the other one was cancelled because of it.
  if (!results[first]) return std::unexpected(results[first].error());
  if (!results[1 - first]) return std::unexpected(results[1 - first].error());
  return CopyResult{directions[0].moved(), directions[1].moved()};
}

}  // namespace fiberio
