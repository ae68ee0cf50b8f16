#include <fiberio/net/error.hpp>

#include <netdb.h>

#include <string>

namespace fiberio {
namespace {

class NetCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fiberio.net"; }
  std::string message(int value) const override {
    switch (static_cast<NetErrc>(value)) {
      case NetErrc::eof:
        return "end of stream";
      case NetErrc::unexpected_eof:
        return "stream ended in the middle of a message";
      case NetErrc::signals_not_blocked:
        return "signal not blocked in this thread: call fiberio::block_signals() before starting the Runtime";
      case NetErrc::no_response:
        return "no response: the peer sent nothing back in time";
    }
    return "unknown fiberio.net error " + std::to_string(value);
  }
};

class ResolverCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int value) const override { return ::gai_strerror(value); }
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (value) {
      case EAI_MEMORY:
        return std::errc::not_enough_memory;
      case EAI_AGAIN:
        return std::errc::resource_unavailable_try_again;
      case EAI_FAMILY:
        return std::errc::address_family_not_supported;
      default:
        return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& net_category() noexcept {
  static const NetCategory category;
  return category;
}

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category;
  return category;
}

}  // namespace fiberio
