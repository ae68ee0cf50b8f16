// fiberio::File (net/file.hpp) on every backend: a 64 MiB file written in shuffled chunks and read back at
// random offsets, every byte checked; open flags and their errors; short files (eof, unexpected_eof); stat;
// a cancelled fiber waits for its call's job to end before its frame can go, and leaks no fd.
#include <doctest/doctest.h>

#include "net_support.hpp"

#include <fiberio/executor/detail/sanitizer.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

namespace {

std::string temp_path(const char* tag) {
  return "/tmp/fiberio-file-test-" + std::to_string(::getpid()) + "-" + tag;
}

// The number of fds this process has open.
std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

}  // namespace

TEST_CASE("file: 64 MiB in shuffled chunks, read back at random offsets, every byte checked") {
  for_each_backend([](fiberio::BackendKind kind) {
    const std::string path = temp_path("big");
    fiberio::block_on(
        [&] {
          // 64 MiB; 8 under the sanitizers, whose instrumented byte loops (the pattern, the comparisons)
          // would take half a minute for 64 without finding anything more.
          constexpr std::size_t kSize = fiberio::detail::kSanitized ? 8u << 20 : 64u << 20, kChunk = 1u << 20;
          auto f = fiberio::File::open(path, {.write = true, .create = true, .truncate = true});
          REQUIRE(f);
          std::vector<std::size_t> order(kSize / kChunk);
          std::iota(order.begin(), order.end(), 0);
          std::mt19937_64 rng(42);
          std::shuffle(order.begin(), order.end(), rng);
          // Two fibers write alternate chunks at once: writes at offsets share no file position.
          auto writer = [&](std::size_t first) {
            std::vector<std::byte> chunk(kChunk);
            for (std::size_t i = first; i < order.size(); i += 2) {
              fill_pattern(chunk, 7, order[i] * kChunk);
              REQUIRE(f->write_all_at(chunk, order[i] * kChunk));
            }
          };
          auto other = fiberio::spawn([&] { writer(1); });
          writer(0);
          other.join();
          // Synced in the small-file test below: forcing all of this to the disk adds nothing to it.
          auto info = f->info();
          REQUIRE(info);
          CHECK(info->size == kSize);
          CHECK(info->regular);
          std::vector<std::byte> got, want;
          for (int i = 0; i < 300; ++i) {
            const std::size_t len = 1 + rng() % (kSize / 256);  // up to 256 KiB of the 64 MiB
            const std::size_t at = rng() % (kSize - len + 1);
            got.resize(len);
            want.resize(len);
            REQUIRE(f->read_exact_at(got, at));
            fill_pattern(want, 7, at);
            REQUIRE(got == want);
          }
          // The whole file once, through read_at's short reads at the end.
          std::vector<std::byte> all(kChunk);
          std::uint64_t total = 0;
          for (std::uint64_t at = 0;;) {
            auto n = f->read_at(all, at);
            REQUIRE(n);
            if (*n == 0) break;
            want.resize(*n);
            fill_pattern(want, 7, at);
            REQUIRE(std::equal(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(*n), want.begin()));
            at += *n;
            total += *n;
          }
          CHECK(total == kSize);
          CHECK(f->close());
        },
        fiberio::Config{.threads = 2, .backend = kind});
    ::unlink(path.c_str());
  });
}

TEST_CASE("file: open flags, short files and errors") {
  fiberio::block_on([] {
    const std::string path = temp_path("flags");
    ::unlink(path.c_str());
    auto missing = fiberio::File::open(path);
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    CHECK(fiberio::File::stat(path).error() == std::errc::no_such_file_or_directory);

    auto created =
        fiberio::File::open(path, {.write = true, .create = true, .exclusive = true, .permissions = 0600});
    REQUIRE(created);
    REQUIRE(created->write_all_at(bytes("hello world"), 0));
    CHECK(created->write_at(bytes("!"), 11) == 1u);
    CHECK(created->sync_data());
    CHECK(created->sync());
    auto again = fiberio::File::open(path, {.write = true, .create = true, .exclusive = true});
    REQUIRE_FALSE(again);
    CHECK(again.error() == std::errc::file_exists);
    REQUIRE(created->close());
    CHECK(created->close().error() == std::errc::bad_file_descriptor);

    auto st = fiberio::File::stat(path);
    REQUIRE(st);
    CHECK(st->size == 12u);
    CHECK(st->regular);
    CHECK(st->modified > std::chrono::system_clock::now() - std::chrono::hours(1));
    struct ::stat raw {};
    REQUIRE(::stat(path.c_str(), &raw) == 0);
    CHECK((raw.st_mode & 0777) == 0600);

    auto reader = fiberio::File::open(path);  // read only by default
    REQUIRE(reader);
    std::array<std::byte, 5> five;
    REQUIRE(reader->read_exact_at(five, 6));
    CHECK(text(five) == "world");
    CHECK(reader->read_exact_at(five, 12).error() == fiberio::NetErrc::eof);
    CHECK(reader->read_exact_at(five, 9).error() == fiberio::NetErrc::unexpected_eof);
    CHECK(reader->read_at(five, 100) == 0u);
    CHECK(reader->write_at(bytes("x"), 0).error() == std::errc::bad_file_descriptor);  // not open for writing

    // Append and truncate.
    auto appender = fiberio::File::open(path, {.read = false, .write = true, .append = true});
    REQUIRE(appender);
    REQUIRE(appender->write_all_at(bytes("++"), 0));  // O_APPEND: the offset is the end
    CHECK(appender->info()->size == 14u);
    auto truncated = fiberio::File::open(path, {.write = true, .truncate = true});
    REQUIRE(truncated);
    CHECK(truncated->info()->size == 0u);
    ::unlink(path.c_str());
  });
}

TEST_CASE("file: a cancelled fiber waits for its call's job to end, and leaks nothing") {
  // open() of a FIFO blocks in the pool until a writer comes. The caller is cancelled meanwhile: it must
  // not unwind (its frame is what the job writes into) until the job is over, and the fd the job then
  // opened for nobody must be closed.
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  const std::string path = temp_path("fifo");
  ::unlink(path.c_str());
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  const std::size_t fds_before = open_fds();
  std::atomic<bool> job_can_end{false}, unwound_early{false};
  auto opener = rt.spawn([&] {
    struct Watch {
      std::atomic<bool>& can_end;
      std::atomic<bool>& early;
      ~Watch() {
        if (!can_end.load()) early = true;
      }
    } watch{job_can_end, unwound_early};
    auto f = fiberio::File::open(path);
    return f.has_value();
  });
  std::this_thread::sleep_for(50ms);
  opener.cancel();
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(opener.is_finished());  // still waiting for its job
  job_can_end = true;
  const int w = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);  // lets the job's open() return
  REQUIRE(w >= 0);
  CHECK_THROWS_AS(opener.join(), fiberio::Cancelled);
  CHECK_FALSE(unwound_early.load());
  ::close(w);
  CHECK(open_fds() == fds_before);  // the fd opened for the cancelled caller was closed
  ::unlink(path.c_str());
}
