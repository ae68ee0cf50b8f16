// fiberio.hpp — everything a program needs, in one include.
#pragma once

#include "executor/cancelled.hpp"
#include "executor/channel.hpp"
#include "executor/condition_variable.hpp"
#include "executor/event.hpp"
#include "executor/join_handle.hpp"
#include "executor/mutex.hpp"
#include "executor/semaphore.hpp"
#include "executor/this_fiber.hpp"
#include "executor/wait_group.hpp"
#include "reactor/async_fd.hpp"
#include "runtime/config.hpp"
#include "runtime/runtime.hpp"
#include "runtime/with_timeout.hpp"
