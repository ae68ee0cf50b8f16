// apps/echo.hpp — one echo connection: every byte read is written back, unchanged and in order; when the
// client shuts down its write side and everything has been echoed, the server shuts down its own side and
// closes.
//
// Memory: an idle connection holds no pooled buffer. Reads go into 1 KiB on the fiber's stack (within the
// page its frames keep resident anyway); a read that fills it switches to a pooled 16 KiB buffer
// (apps/buffer_pool.hpp) until a read comes back short. The read is issued through AsyncFd::io_some() with
// an operation that takes the pooled buffer just before recv() and gives it back when recv() finds
// nothing (EAGAIN), before the fiber parks; so it is held only from a successful read to the end of its
// write.
// Backpressure: nothing is read while a write waits for the client to read (the socket's send buffer is
// full), so a client that sends without reading fills the kernel's buffers and is then blocked by TCP
// flow control; the server holds at most one buffer for it.
// Syscalls per request/response exchange: recv (data), send, plus the reactor's share of an epoll_wait
// (a short read marks the socket drained: no recv to collect EAGAIN).
// Both modes share that loop; in idle-loop mode the 1 KiB lives on the pooled stack the handler runs on,
// so an idle connection holds neither a stack nor a buffer.
// Thread-safety: echo_connection owns its stream, run it in its own fiber; echo_ready is an idle loop's
// handler.
#pragma once

#include <fiberio/net/tcp_stream.hpp>
#include <fiberio/runtime/idle_loop.hpp>

namespace fiberio {

// Fiber mode: the whole connection, in the calling fiber.
void echo_connection(TcpStream stream);
// Idle-loop mode (runtime/idle_loop.hpp): echoes what is readable now; Next::wait once the socket is
// drained (the pooled buffer, if one was taken, is given back first), Next::stop at the end.
Next echo_ready(TcpStream& stream);

}  // namespace fiberio
