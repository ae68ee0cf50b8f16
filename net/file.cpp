#include <fiberio/net/file.hpp>

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/net/blocking_pool.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace fiberio {

namespace {

// Runs `job` on the blocking pool and waits for it to END, even when the caller is cancelled meanwhile
// (the job uses the caller's buffers); a cancellation is thrown once the job is done, after `discard` has
// been given the result (open() closes the fd it got). Unlike spawn_blocking(), whose cancelled caller
// leaves at once.
template <class R, class F, class Discard = void (*)(R&)>
R run_to_end(
    F job, Discard discard = [](R&) {}) {
  struct Shared {
    Event done;
    std::optional<R> result;
  };
  auto shared = std::make_shared<Shared>();
  detail::BlockingPool::instance().submit([shared, job = std::move(job)]() mutable {
    shared->result.emplace(job());  // `job` catches nothing: it only makes syscalls
    shared->done.set();
  });
  bool cancelled = false;
  for (;;) {
    try {
      shared->done.wait();
      break;
    } catch (const Cancelled&) {
      cancelled = true;  // delivered once: the next wait blocks normally
    }
  }
  if (cancelled) {
    discard(*shared->result);
    throw Cancelled{};
  }
  return std::move(*shared->result);
}

// One pread(2)/pwrite(2), retried on EINTR.
IoResult<std::size_t> pread_once(int fd, std::span<std::byte> buffer, std::uint64_t offset) {
  for (;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return std::unexpected(detail::last_error());
  }
}
IoResult<std::size_t> pwrite_once(int fd, std::span<const std::byte> data, std::uint64_t offset) {
  for (;;) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return std::unexpected(detail::last_error());
  }
}

FileInfo to_info(const struct ::stat& st) {
  FileInfo info;
  info.size = static_cast<std::uint64_t>(st.st_size);
  info.regular = S_ISREG(st.st_mode);
  info.modified =
      std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  return info;
}

}  // namespace

File::~File() {
  if (fd_ >= 0) ::close(fd_);  // a regular file's close does not wait for the disk
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

IoResult<File> File::open(const std::filesystem::path& path, FileOptions options) {
  int flags = O_CLOEXEC;
  if (options.read && options.write) {
    flags |= O_RDWR;
  } else if (options.write) {
    flags |= O_WRONLY;
  } else {
    flags |= O_RDONLY;
  }
  if (options.create) flags |= O_CREAT;
  if (options.exclusive) flags |= O_EXCL;
  if (options.truncate) flags |= O_TRUNC;
  if (options.append) flags |= O_APPEND;
  auto fd = run_to_end<IoResult<int>>(
      [name = path.string(), flags, mode = options.permissions]() -> IoResult<int> {
        const int fd = ::open(name.c_str(), flags, static_cast<mode_t>(mode));
        if (fd < 0) return std::unexpected(detail::last_error());
        return fd;
      },
      [](IoResult<int>& opened) {
        if (opened) ::close(*opened);  // the caller was cancelled: nobody will own it
      });
  if (!fd) return std::unexpected(fd.error());
  return File(*fd);
}

IoResult<FileInfo> File::stat(const std::filesystem::path& path) {
  return run_to_end<IoResult<FileInfo>>([name = path.string()]() -> IoResult<FileInfo> {
    struct ::stat st {};
    if (::stat(name.c_str(), &st) != 0) return std::unexpected(detail::last_error());
    return to_info(st);
  });
}

IoResult<std::size_t> File::read_at(std::span<std::byte> buffer, std::uint64_t offset) {
  return run_to_end<IoResult<std::size_t>>(
      [fd = fd_, buffer, offset] { return pread_once(fd, buffer, offset); });
}

IoResult<void> File::read_exact_at(std::span<std::byte> buffer, std::uint64_t offset) {
  return run_to_end<IoResult<void>>([fd = fd_, buffer, offset]() -> IoResult<void> {
    for (std::size_t done = 0; done < buffer.size();) {
      auto n = pread_once(fd, buffer.subspan(done), offset + done);
      if (!n) return std::unexpected(n.error());
      if (*n == 0)
        return std::unexpected(make_error_code(done == 0 ? NetErrc::eof : NetErrc::unexpected_eof));
      done += *n;
    }
    return {};
  });
}

IoResult<std::size_t> File::write_at(std::span<const std::byte> data, std::uint64_t offset) {
  return run_to_end<IoResult<std::size_t>>(
      [fd = fd_, data, offset] { return pwrite_once(fd, data, offset); });
}

IoResult<void> File::write_all_at(std::span<const std::byte> data, std::uint64_t offset) {
  return run_to_end<IoResult<void>>([fd = fd_, data, offset]() -> IoResult<void> {
    for (std::size_t done = 0; done < data.size();) {
      auto n = pwrite_once(fd, data.subspan(done), offset + done);
      if (!n) return std::unexpected(n.error());
      done += *n;
    }
    return {};
  });
}

IoResult<void> File::sync() {
  return run_to_end<IoResult<void>>([fd = fd_]() -> IoResult<void> {
    if (::fsync(fd) != 0) return std::unexpected(detail::last_error());
    return {};
  });
}

IoResult<void> File::sync_data() {
  return run_to_end<IoResult<void>>([fd = fd_]() -> IoResult<void> {
    if (::fdatasync(fd) != 0) return std::unexpected(detail::last_error());
    return {};
  });
}

IoResult<FileInfo> File::info() const {
  return run_to_end<IoResult<FileInfo>>([fd = fd_]() -> IoResult<FileInfo> {
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) return std::unexpected(detail::last_error());
    return to_info(st);
  });
}

IoResult<void> File::close() {
  const int fd = std::exchange(fd_, -1);
  if (fd < 0) return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));
  if (::close(fd) != 0) return std::unexpected(detail::last_error());
  return {};
}

}  // namespace fiberio
