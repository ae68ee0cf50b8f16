#include <fiberio/runtime/fiber_info.hpp>

namespace fiberio {

std::string to_string(const FiberInfo& fiber) {
  std::string out = (fiber.name.empty() ? std::string("unnamed fiber") : "fiber '" + fiber.name + "'") +
                    " on worker " + std::to_string(fiber.worker) + ": ";
  switch (fiber.state) {
    case FiberInfo::State::running:
      out += "running";
      break;
    case FiberInfo::State::ready:
      out += "ready";
      break;
    case FiberInfo::State::waiting:
      out += "waiting " + std::to_string(fiber.waiting_for.count()) + " ms on " + fiber.waiting_on;
      break;
  }
  if (fiber.stack_size == 0) return out + ", no stack";
  return out + ", stack " + std::to_string((fiber.stack_high_water + 1023) / 1024) + " KiB of " +
         std::to_string(fiber.stack_size / 1024) + " KiB";
}

}  // namespace fiberio
