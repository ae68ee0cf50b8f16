#include <fiberio/reactor/backend.hpp>
#include <fiberio/reactor/detail/epoll_backend.hpp>
#include <fiberio/reactor/detail/poll_backend.hpp>

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
  return kind != BackendKind::io_uring;
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
        error = std::make_error_code(std::errc::function_not_supported);
        return nullptr;
    }
  } catch (const std::system_error& e) {
    error = e.code();
  }
  return nullptr;
}

}  // namespace fiberio
