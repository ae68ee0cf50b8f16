// fiberio.hpp — everything a program needs, in one include.
#pragma once

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/channel.hpp>
#include <fiberio/executor/condition_variable.hpp>
#include <fiberio/executor/event.hpp>
#include <fiberio/executor/mutex.hpp>
#include <fiberio/executor/select.hpp>
#include <fiberio/executor/semaphore.hpp>
#include <fiberio/executor/this_fiber.hpp>
#include <fiberio/executor/wait_group.hpp>
#include <fiberio/net/address.hpp>
#include <fiberio/net/blocking_pool.hpp>
#include <fiberio/net/copy.hpp>
#include <fiberio/net/error.hpp>
#include <fiberio/net/signals.hpp>
#include <fiberio/net/stream_socket.hpp>
#include <fiberio/net/tcp_listener.hpp>
#include <fiberio/net/tcp_stream.hpp>
#include <fiberio/net/udp_socket.hpp>
#include <fiberio/net/unix_socket.hpp>
#include <fiberio/reactor/async_fd.hpp>
#include <fiberio/runtime/config.hpp>
#include <fiberio/runtime/join_handle.hpp>
#include <fiberio/runtime/runtime.hpp>
#include <fiberio/runtime/with_timeout.hpp>
