// reactor/backend.hpp — the interface between a reactor and an OS poller (epoll, poll, io_uring, or yours).
//
// Contract ("edge" semantics, so every backend can be cheap):
//  - add(fd, token) starts watching fd; remove(fd) stops. Events carry the token given to add().
//  - arm(fd, token, interest) asks for at least one event once fd is, or becomes, ready in `interest`.
//    It returns true when a thread blocked in wait() must be interrupted to see the new interest.
//    arming() says when the reactor calls it: one-shot backends (poll) before every wait; a backend that
//    watches continuously either never, or (epoll) for writability only, once per registration: it
//    watches readability from add() on and writability from the first arm() for it, so that the events
//    of a socket nobody has waited to write to carry no writability for the reactor to process.
//  - wait() blocks up to `timeout` (nullopt: no limit; zero: just look) and fills `out`; it may report
//    spurious events, so callers must retry the operation rather than trust an event.
// Thread-safety: add/arm/remove may be called from any thread while another thread is in wait();
// wait() is called by one thread at a time (the reactor's owner).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace fiberio {

// Directions a waiter cares about.
enum class Interest : std::uint8_t { none = 0, read = 1, write = 2, both = 3 };
constexpr Interest operator|(Interest a, Interest b) {
  return static_cast<Interest>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr bool has(Interest set, Interest bit) {
  return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(bit)) != 0;
}

// One readiness report.
struct ReadinessEvent {
  std::uint64_t token = 0;
  bool readable = false;
  bool writable = false;
  // The peer closed its side or the fd failed (EPOLLRDHUP/HUP/ERR): the direction stays readable (writable)
  // until the fd is deregistered, whatever a later short read or write suggests, since an edge-triggered
  // backend reports that condition once.
  bool read_closed = false;
  bool write_closed = false;
};

enum class BackendKind : std::uint8_t { automatic, epoll, poll, io_uring };

// When a reactor calls Backend::arm() (the contract above).
enum class Arming : std::uint8_t {
  every_wait,   // one-shot: before every wait, in either direction
  first_write,  // readability is watched from add(); writability from the first arm() for it
  never,        // both directions are watched from add() on
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual std::error_code add(int fd, std::uint64_t token) = 0;
  virtual bool arm(int fd, std::uint64_t token, Interest interest) = 0;
  // When the reactor must call arm() (Arming). Asked once, when the reactor is made.
  virtual Arming arming() const noexcept { return Arming::every_wait; }
  virtual void remove(int fd) = 0;
  virtual std::size_t wait(std::span<ReadinessEvent> out,
                           std::optional<std::chrono::nanoseconds> timeout) = 0;
};

// Whether this build of fiberio has a backend of that kind (io_uring: when it was built with liburing).
bool built_in(BackendKind kind) noexcept;

// A backend of the given kind; `automatic` picks the best available (epoll on Linux).
// Returns nullptr and an error if that kind is not built in (errc::function_not_supported) or the OS
// refuses it.
std::unique_ptr<Backend> make_backend(BackendKind kind, std::error_code& error);

std::string_view to_string(BackendKind kind);

// Why make_backend(kind) failed with `error`, and what to do, in one line for a person: "backend 'io_uring'
// is not available: io_uring is switched off for this process (the sysctl kernel.io_uring_disabled...)".
std::string explain_backend_error(BackendKind kind, std::error_code error);

}  // namespace fiberio
