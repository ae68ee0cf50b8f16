// reactor/detail/syscall.hpp — recv and send on the hot path without glibc's cancellation wrapper.
// glibc makes recv/send cancellation points: in a process with a second thread every call brackets the
// syscall with __pthread_enable/disable_asynccancel (~90 instructions per echo request, measured with
// callgrind). Fibers never use pthread_cancel, so the I/O path issues the syscall itself. Under a
// sanitizer the libc functions are kept, so that ASan and TSan still see the buffers being written.
// Thread-safety: plain syscalls. Contract: as recv(2)/send(2): -1 and errno on failure.
#pragma once

#include <fiberio/executor/detail/sanitizer.hpp>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace fiberio::detail {

inline long raw_syscall6(long number, long a1, long a2, long a3, long a4, long a5, long a6) noexcept {
#if defined(__x86_64__)
  long result;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  register long r9 asm("r9") = a6;
  asm volatile("syscall"
               : "=a"(result)
               : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  if (result < 0 && result > -4096) {
    errno = static_cast<int>(-result);
    return -1;
  }
  return result;
#else
  return ::syscall(number, a1, a2, a3, a4, a5, a6);  // syscall() is no cancellation point
#endif
}

inline ssize_t recv_nocancel(int fd, void* buffer, std::size_t size, int flags) noexcept {
  if constexpr (kSanitized) return ::recv(fd, buffer, size, flags);
  return raw_syscall6(SYS_recvfrom, fd, reinterpret_cast<long>(buffer), static_cast<long>(size), flags, 0, 0);
}

inline ssize_t send_nocancel(int fd, const void* buffer, std::size_t size, int flags) noexcept {
  if constexpr (kSanitized) return ::send(fd, buffer, size, flags);
  return raw_syscall6(SYS_sendto, fd, reinterpret_cast<long>(buffer), static_cast<long>(size), flags, 0, 0);
}

}  // namespace fiberio::detail
