#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

TEST_CASE("smoke: block_on returns the fiber's value") {
  CHECK(fiberio::block_on([] { return 41 + 1; }) == 42);
}
