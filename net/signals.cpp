#include <fiberio/net/signals.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace fiberio {
namespace {

std::error_code make_set(std::initializer_list<int> signals, sigset_t& set) {
  ::sigemptyset(&set);
  for (const int s : signals) {
    if (::sigaddset(&set, s) != 0) return detail::last_error();
  }
  return {};
}

}  // namespace

std::error_code block_signals(std::initializer_list<int> signals) {
  sigset_t set;
  if (auto ec = make_set(signals, set)) return ec;
  if (const int rc = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0)
    return {rc, std::generic_category()};
  return {};
}

std::error_code raise_signal(int signo) {
  if (::kill(::getpid(), signo) != 0) return {errno, std::generic_category()};
  return {};
}

IoResult<SignalListener> SignalListener::open(std::initializer_list<int> signals) {
  sigset_t set;
  if (auto ec = make_set(signals, set)) return std::unexpected(ec);
  sigset_t current;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &current);
  for (const int s : signals) {
    if (!::sigismember(&current, s)) return std::unexpected(make_error_code(NetErrc::signals_not_blocked));
  }
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return std::unexpected(detail::last_error());
  SignalListener listener;
  listener.fd_ = AsyncFd(fd);
  return listener;
}

IoResult<int> SignalListener::wait(Timeout timeout) {
  signalfd_siginfo info{};
  auto n = fd_.io(
      Interest::read, [&] { return ::read(fd_.fd(), &info, sizeof info); }, timeout);
  if (!n) return std::unexpected(n.error());
  return static_cast<int>(info.ssi_signo);
}

}  // namespace fiberio
