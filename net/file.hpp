// net/file.hpp — regular files for fibers: open, read and write at an offset, sync, stat, close, without
// stalling the worker. Each call is one job on the blocking pool (net/blocking_pool.hpp), whatever the
// backend: a regular file is always "ready" to poll(2) and epoll, so only another thread (or io_uring's
// own file operations, not built yet) keeps a slow disk from blocking every fiber of the worker.
//
//   auto f = fiberio::File::open("/var/lib/app/data", {.write = true, .create = true});
//   if (!f) return f.error();
//   f->write_all_at(bytes, 4096);
//   std::array<std::byte, 512> head;
//   f->read_exact_at(head, 0);            // NetErrc::eof / unexpected_eof if the file is shorter
//   f->sync();
//
// Errors: IoResult (net/error.hpp); open() reports the errno of open(2) (errc::no_such_file_or_directory,
// errc::file_exists with exclusive...). There is no timeout: a file call waits for the disk.
// Cancellation: a cancelled fiber waits until its call's job has finished (the job reads into or writes
// from the caller's buffer, so it must be done before that buffer can go), then throws Cancelled.
// Owns its fd; moves, never copies. Thread-safety: calls at offsets need no shared position, so several
// fibers may read and write one File at once (non-overlapping writes, as with pread/pwrite); open, close
// and moves are for one fiber at a time.
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/net/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <utility>

namespace fiberio {

struct FileOptions {
  bool read = true;
  bool write = false;
  bool create = false;          // O_CREAT (with `permissions`)
  bool exclusive = false;       // O_EXCL: with create, fail with errc::file_exists if it exists
  bool truncate = false;        // O_TRUNC
  bool append = false;          // O_APPEND: write_at's offset is then ignored by the OS (pwrite(2))
  unsigned permissions = 0644;  // for a created file, before the umask
};

struct FileInfo {
  std::uint64_t size = 0;
  bool regular = false;  // a regular file (not a directory, FIFO, device...)
  std::chrono::system_clock::time_point modified;
};

class File {
 public:
  File() = default;
  ~File();
  File(File&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  static IoResult<File> open(const std::filesystem::path& path, FileOptions options = {});
  static IoResult<FileInfo> stat(const std::filesystem::path& path);

  // Up to buffer.size() bytes from `offset`; 0 at or past the end of the file.
  IoResult<std::size_t> read_at(std::span<std::byte> buffer, std::uint64_t offset);
  // Fills `buffer` from `offset`, or fails: NetErrc::eof if the file ends at `offset`,
  // NetErrc::unexpected_eof if it ends inside the range.
  IoResult<void> read_exact_at(std::span<std::byte> buffer, std::uint64_t offset);
  // At least one byte (for a non-empty buffer) at `offset`.
  IoResult<std::size_t> write_at(std::span<const std::byte> data, std::uint64_t offset);
  // All of `data` at `offset` (one pool job, however many writes it takes).
  IoResult<void> write_all_at(std::span<const std::byte> data, std::uint64_t offset);

  IoResult<void> sync();       // fsync(2): data and metadata on the disk
  IoResult<void> sync_data();  // fdatasync(2): data, and the metadata needed to read it
  IoResult<FileInfo> info() const;
  // Closes and reports close(2)'s error (the destructor closes too, silently).
  IoResult<void> close();

  bool is_open() const noexcept { return fd_ >= 0; }
  int fd() const noexcept { return fd_; }

 private:
  explicit File(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace fiberio
