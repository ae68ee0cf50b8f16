// A user's own header that happens to share a fiberio path: it must never be picked up instead.
#error "a user header shadowed fiberio's runtime/config.hpp"
