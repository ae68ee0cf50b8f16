#include <fiberio/executor/detail/context.hpp>

#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/stack_pool.hpp>

#ifdef FIBERIO_CONTEXT_TSAN  // this file is built without -fsanitize=thread, so the macro comes from meson
extern "C" void __tsan_switch_to_fiber(void* fiber, unsigned flags);
#endif

namespace fiberio::detail {

namespace fc = boost::context::detail;

Context make_context(const boost::context::stack_context& stack) {
  // The first frame of the fiber's stack: it runs the fiber, then leaves for good.
  constexpr auto entry = [](fc::transfer_t from) noexcept {
    Fiber& self = *static_cast<Fiber*>(from.data);
    self.enter(from.fctx);
    // Switch TSan to the worker here, in uninstrumented code: an instrumented function that switched
    // would exit on a stack it never entered.
    [[maybe_unused]] void* tsan_worker = self.prepare_leave();
#ifdef FIBERIO_CONTEXT_TSAN
    __tsan_switch_to_fiber(tsan_worker, 0);
#endif
    boost::context::stack_context stack = to_stack_context(self.stack_bounds());
    // On the worker's stack, as the result of its switch into us: this stack is no longer in use there.
    fc::ontop_fcontext(self.take_return_context(), &stack, [](fc::transfer_t last) noexcept {
      StackPool::local().deallocate(*static_cast<const boost::context::stack_context*>(last.data));
      return fc::transfer_t{nullptr, nullptr};
    });
    // Nothing resumes a finished fiber, so this never returns. (Not marked unreachable: under ASan that
    // would make the switch a no-return call, and ASan would then clean up a stack it no longer tracks.)
  };
  return fc::make_fcontext(stack.sp, stack.size, +entry);
}

__attribute__((noinline)) Context switch_context_uninstrumented(Context target, Fiber* fiber) noexcept {
  return fc::jump_fcontext(target, fiber).fctx;
}

}  // namespace fiberio::detail
