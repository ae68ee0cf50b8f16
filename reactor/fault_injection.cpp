#include <fiberio/reactor/fault_injection.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace fiberio {
namespace {

class FaultInjectingBackend final : public Backend {
 public:
  FaultInjectingBackend(std::unique_ptr<Backend> inner, FaultPlan plan)
      : inner_(std::move(inner)),
        plan_(plan),
        rng_(plan.seed),
        name_(std::string(inner_->name()) + "+faults") {}

  std::string_view name() const override { return name_; }

  std::error_code add(int fd, std::uint64_t token) override {
    auto ec = inner_->add(fd, token);
    if (!ec) {
      std::lock_guard lock(mutex_);
      tokens_[fd] = token;
    }
    return ec;
  }
  bool arm(int fd, std::uint64_t token, Interest interest) override {
    return inner_->arm(fd, token, interest);
  }
  Arming arming() const noexcept override { return inner_->arming(); }
  void remove(int fd) override {
    {
      std::lock_guard lock(mutex_);
      tokens_.erase(fd);
    }
    inner_->remove(fd);
  }

  std::size_t wait(std::span<ReadinessEvent> out, std::optional<std::chrono::nanoseconds> timeout) override {
    if (chance(plan_.empty_wake)) return 0;
    // Held-back events must come out soon: while any wait, the inner wait may not block for long.
    if (!held_.empty()) {
      constexpr std::chrono::nanoseconds kHoldLimit = std::chrono::milliseconds(1);
      if (!timeout || *timeout > kHoldLimit) timeout = kHoldLimit;
    }
    std::size_t n = 0;
    // First what was held back and is due.
    for (auto it = held_.begin(); it != held_.end() && n < out.size();) {
      if (--it->waits_left == 0) {
        out[n++] = it->event;
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    if (n < out.size()) {
      fresh_.resize(out.size() - n);
      const std::size_t got =
          inner_->wait(fresh_, n > 0 ? std::optional(std::chrono::nanoseconds::zero()) : timeout);
      // Each real event: delayed, duplicated, or passed on; what finds no room waits for the next call.
      for (std::size_t i = 0; i < got; ++i) {
        const ReadinessEvent& event = fresh_[i];
        const int copies = chance(plan_.duplicate) ? 2 : 1;
        for (int c = 0; c < copies; ++c) {
          if (n < out.size() && !chance(plan_.delay)) {
            out[n++] = event;
          } else {
            held_.push_back(Held{event, 1 + static_cast<int>(rng_() % 3)});
          }
        }
      }
    }
    if (n < out.size() && chance(plan_.spurious)) {
      std::lock_guard lock(mutex_);
      if (!tokens_.empty()) {
        auto it = tokens_.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng_() % tokens_.size()));
        out[n++] = ReadinessEvent{.token = it->second, .readable = true, .writable = true};
      }
    }
    return n;
  }

 private:
  struct Held {
    ReadinessEvent event;
    int waits_left;
  };

  bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  std::unique_ptr<Backend> inner_;
  const FaultPlan plan_;
  std::mt19937_64 rng_;                // wait() only
  std::vector<Held> held_;             // wait() only
  std::vector<ReadinessEvent> fresh_;  // wait() only: what the inner backend reported
  const std::string name_;
  std::mutex mutex_;  // guards tokens_
  std::unordered_map<int, std::uint64_t> tokens_;
};

}  // namespace

std::unique_ptr<Backend> make_fault_injecting_backend(std::unique_ptr<Backend> inner, FaultPlan plan) {
  if (!inner) return nullptr;
  return std::make_unique<FaultInjectingBackend>(std::move(inner), plan);
}

}  // namespace fiberio
