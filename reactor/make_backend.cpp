#include <fiberio/reactor/backend.hpp>
#include <fiberio/reactor/detail/epoll_backend.hpp>
#include <fiberio/reactor/detail/poll_backend.hpp>
#ifdef FIBERIO_HAVE_IO_URING
#include <fiberio/reactor/detail/uring_backend.hpp>
#endif

#include <cerrno>
#include <string>

#include <system_error>

namespace fiberio {

std::string_view to_string(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic:
      return "auto";
    case BackendKind::epoll:
      return "epoll";
    case BackendKind::poll:
      return "poll";
    case BackendKind::io_uring:
      return "io_uring";
  }
  return "?";
}

bool built_in(BackendKind kind) noexcept {
#ifdef FIBERIO_HAVE_IO_URING
  (void)kind;
  return true;
#else
  return kind != BackendKind::io_uring;
#endif
}

std::unique_ptr<Backend> make_backend(BackendKind kind, std::error_code& error) {
  error.clear();
  try {
    switch (kind) {
      case BackendKind::automatic:
      case BackendKind::epoll:
        return std::make_unique<detail::EpollBackend>();
      case BackendKind::poll:
        return std::make_unique<detail::PollBackend>();
      case BackendKind::io_uring:
#ifdef FIBERIO_HAVE_IO_URING
        return std::make_unique<detail::UringBackend>();
#else
        error = std::make_error_code(std::errc::function_not_supported);
        return nullptr;
#endif
    }
  } catch (const std::system_error& e) {
    error = e.code();
  }
  return nullptr;
}

std::string explain_backend_error(BackendKind kind, std::error_code error) {
  std::string out = "backend '" + std::string(to_string(kind)) + "' ";
  if (!built_in(kind)) return out + "is not built in this version of fiberio (use auto, epoll or poll)";
  out += "is not available: ";
  if (kind != BackendKind::io_uring || error.category() != std::generic_category())
    return out + error.message() + " (use auto, epoll or poll)";
  switch (error.value()) {
    case EPERM:
    case EACCES:
      return out +
             "io_uring is switched off for this process (the sysctl kernel.io_uring_disabled, a "
             "seccomp filter or a container's policy); allow it (sysctl kernel.io_uring_disabled=0, "
             "or the container's seccomp profile) or use --backend epoll";
    case ENOSYS:
      return out +
             "this kernel has no io_uring (built without CONFIG_IO_URING, or older than 5.1); "
             "use --backend epoll";
    case ENOMEM:
      return out +
             "no memory for the ring: kernels before 5.12 charge it to the locked-memory limit, "
             "raise it (ulimit -l, LimitMEMLOCK= in systemd) or use --backend epoll";
    case ENOTSUP:
      return out +
             "this kernel's io_uring lacks multishot poll or timed waits (Linux 5.13 or later "
             "needed); use --backend epoll";
    default:
      return out + error.message() + " (use --backend epoll)";
  }
}

}  // namespace fiberio
