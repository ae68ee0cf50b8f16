#include <fiberio/executor/detail/context.hpp>

#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/stack_pool.hpp>

#ifdef FIBERIO_CONTEXT_TSAN  // this file is built without -fsanitize=thread, so the macro comes from meson
extern "C" void __tsan_switch_to_fiber(void* fiber, unsigned flags);
#endif

namespace fiberio::detail {

boost::context::fiber make_context(Fiber& fiber, const boost::context::stack_context& stack,
                                   std::size_t stack_size) {
  return boost::context::fiber(std::allocator_arg, boost::context::preallocated(stack.sp, stack.size, stack),
                               PooledStackAllocator{stack_size}, [&fiber](boost::context::fiber&& worker) {
                                 fiber.enter(std::move(worker));
                                 // Switch TSan to the worker here, in uninstrumented code: an instrumented
                                 // function that switched would exit on a stack it never entered.
                                 [[maybe_unused]] void* tsan_worker = fiber.prepare_leave();
#ifdef FIBERIO_CONTEXT_TSAN
                                 __tsan_switch_to_fiber(tsan_worker, 0);
#endif
                                 return fiber.take_return_context();
                               });
}

__attribute__((noinline)) boost::context::fiber switch_context(boost::context::fiber&& target) noexcept {
  return std::move(target).resume();
}

}  // namespace fiberio::detail
