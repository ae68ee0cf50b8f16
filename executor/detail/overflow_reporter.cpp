#include <fiberio/executor/detail/overflow_reporter.hpp>

#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/fiber_thread.hpp>
#include <fiberio/executor/detail/sanitizer.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <mutex>

namespace fiberio::detail {
namespace {

struct sigaction g_previous;

// Appends `text` to `out` (bounded), async-signal-safe.
std::size_t append(char* out, std::size_t at, std::size_t cap, const char* text) {
  while (*text && at < cap)
    out[at++] = *text++;
  return at;
}

std::size_t append_number(char* out, std::size_t at, std::size_t cap, std::size_t n) {
  char digits[24];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n && len < 24);
  while (len > 0 && at < cap)
    out[at++] = digits[--len];
  return at;
}

void on_segv(int sig, siginfo_t* info, void* context) {
  FiberThread* thread = FiberThread::current();
  Fiber* fiber = thread ? thread->running() : nullptr;
  if (fiber) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    const StackBounds stack = fiber->stack_bounds();
    const auto bottom = reinterpret_cast<std::uintptr_t>(stack.bottom);
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    if (addr < bottom && addr + 2 * page >= bottom) {
      char message[256];
      std::size_t n = append(message, 0, sizeof message, "fiberio: fiber '");
      n = append(message, n, sizeof message - 100, fiber->name().c_str());
      n = append(message, n, sizeof message, "' overflowed its ");
      n = append_number(message, n, sizeof message, fiber->configured_stack_size());
      n = append(message, n, sizeof message, "-byte stack; raise Config::stack_size (FIBERIO_STACK_SIZE)\n");
      [[maybe_unused]] auto written = ::write(STDERR_FILENO, message, n);
    }
  }
  // Let the previous handler (or the default action) deal with the fault when it repeats.
  ::sigaction(SIGSEGV, &g_previous, nullptr);
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) {
    g_previous.sa_sigaction(sig, info, context);
  }
}

}  // namespace

void install_overflow_reporter() {
  if constexpr (kSanitized) return;
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  struct sigaction current {};
  ::sigaction(SIGSEGV, nullptr, &current);
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_segv) return;  // already ours
  struct sigaction action {};
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGSEGV, &action, &g_previous);
}

void prepare_thread_for_overflow_reports() {
  if constexpr (kSanitized) return;
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;  // has one
  thread_local struct AltStack { char bytes[64 * 1024]; } alt;
  stack_t stack{};
  stack.ss_sp = alt.bytes;
  stack.ss_size = sizeof alt.bytes;
  ::sigaltstack(&stack, nullptr);
}

}  // namespace fiberio::detail
