#!/usr/bin/env python3
"""fiberio-echo under conditions a plain client cannot create: half-close with a large payload, many
connections, peers that reset, a client that sends without reading (backpressure), a full fd table
(EMFILE), every backend and thread setting, both connection modes, idle loops giving their stacks back.   usage: test_echo.py FIBERIO_ECHO FIBERIO_PROXY"""

import os
import re
import resource
import signal
import socket
import struct
import time

import harness as h
from harness import check


def echo_ok(server, data=b"ping"):
    with h.connect(server.address) as s:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(len(data) - len(got))
            check(chunk, "server closed before echoing")
            got += chunk
        check(got == data, f"echo differs: {got[:40]!r}")


def stop_ok(server):
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc} after SIGTERM; stderr: {server.stderr_text()}")


def large_payload_half_close():
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    payload = os.urandom(48 << 20)
    reply = h.exchange_half_close(server.address, payload, timeout=120)
    check(len(reply) == len(payload), f"{len(reply)} bytes back of {len(payload)}")
    check(reply == payload, "echo differs")
    stop_ok(server)


def every_backend_and_thread_setting():
    for args in (["--backend", "epoll"], ["--backend", "poll"], ["--threads", "1"], ["--threads", "3", "--no-steal"],
                 ["--threads", "2", "--steal"], ["--connection-mode", "fiber"],
                 ["--connection-mode", "idle-loop", "--threads", "2"]):
        for mode in ("single", "reuseport"):
            server = h.start(h.ECHO, "--listen", "127.0.0.1:0", *args, env={"FIBERIO_ACCEPT": mode})
            payload = os.urandom(1 << 20)
            check(h.exchange_half_close(server.address, payload) == payload, f"{args} {mode}: echo differs")
            echo_ok(server)
            stop_ok(server)


def many_connections_interleaved():
    # 500 connections open at once, each checked with its own bytes, in rounds.
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    socks = [h.connect(server.address) for _ in range(500)]
    try:
        for round_ in range(3):
            for i, s in enumerate(socks):
                s.sendall(struct.pack("!II", i, round_) * 16)
            for i, s in enumerate(socks):
                want = struct.pack("!II", i, round_) * 16
                got = b""
                while len(got) < len(want):
                    chunk = s.recv(len(want) - len(got))
                    check(chunk, f"connection {i} closed early")
                    got += chunk
                check(got == want, f"connection {i} round {round_}: wrong bytes")
    finally:
        for s in socks:
            s.close()
    echo_ok(server)
    stop_ok(server)


def peers_that_reset():
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    for i in range(200):
        s = h.connect(server.address)
        s.sendall(os.urandom(1000 + 97 * i))
        # SO_LINGER 0: close() sends RST instead of FIN, possibly while the server is still writing.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    check(server.alive(), "server died after peers reset")
    echo_ok(server)
    stop_ok(server)


def client_that_does_not_read():
    # The client sends and never reads. The server must stop reading once its writes block (TCP flow
    # control then stops the client): its memory stays flat, and it keeps serving others.
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    rss_before = server.rss_kib()
    s = h.connect(server.address)
    s.setblocking(False)
    chunk = b"x" * 65536
    sent, stalled_since, limit = 0, None, 512 << 20
    deadline = time.monotonic() + h.bound(30)
    while sent < limit and time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                break  # blocked for a second: flow control holds
            time.sleep(0.01)
    grown = server.rss_kib() - rss_before
    echo_ok(server)  # others are still served meanwhile
    s.close()
    check(sent < 128 << 20, f"the client could send {sent >> 20} MiB without reading: no backpressure")
    check(grown < 64 << 10, f"server memory grew by {grown} KiB while a client did not read")
    stop_ok(server)
    return f"client stalled after {sent >> 10} KiB; server RSS +{grown} KiB"


def fd_table_full():
    # With 64 fds the server cannot accept all 120 connections: accept must back off (no crash, no spin),
    # and the waiting connections are served once others close.
    limits = {resource.RLIMIT_NOFILE: (64, 64)}
    # UBSan's vptr check probes memory through a pipe (sanitizer_common's IsAccessibleMemoryRange): with the
    # fd table full the pipe fails and it reports a false "invalid vptr" on every fiber it destroys. In
    # UBSan builds this one process therefore reports without halting; ASan and TSan still halt.
    ubsan = os.environ.get("UBSAN_OPTIONS", "") + " halt_on_error=0"
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2", limits=limits,
                     env={"UBSAN_OPTIONS": ubsan})
    socks = []
    for i in range(120):
        s = h.connect(server.address)  # completes in the kernel's backlog even when not accepted
        s.sendall(b"%d;" % i)
        socks.append(s)
    time.sleep(0.5)
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    time.sleep(1.0)
    cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    check(server.alive(), "server died with a full fd table")
    check(cpu < 0.5, f"server used {cpu:.0%} of a CPU while out of fds: spinning")
    for s in socks[:80]:
        s.close()
    for i, s in enumerate(socks[80:], start=80):  # these were waiting in the backlog
        want = b"%d;" % i
        s.settimeout(h.bound(15))
        got = b""
        while len(got) < len(want):
            chunk = s.recv(64)
            check(chunk, f"connection {i} closed without its echo")
            got += chunk
        check(got == want, f"connection {i}: {got!r}")
        s.close()
    echo_ok(server)
    stop_ok(server)
    return f"{cpu:.1%} CPU while out of fds"


def idle_connection_holds_no_buffer():
    # Functional side of the memory claim: after many connections echoed something and went idle, the
    # server still answers each of them (no state was lost when its buffer went back to the pool).
    server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2")
    socks = [h.connect(server.address) for _ in range(300)]
    for rounds in range(2):
        for i, s in enumerate(socks):
            s.sendall(b"%05d" % i)
        for i, s in enumerate(socks):
            check(s.recv(5) == b"%05d" % i, f"connection {i}")
        time.sleep(0.2)
    for s in socks:
        s.close()
    stop_ok(server)


def idle_connections_give_their_stacks_back():
    # The default mode serves idle loops: connections idle for 1-2 s give their stacks back (the SIGUSR1
    # line counts them), and each still answers afterwards, on a stack it gets back, in both modes.
    for mode in ("idle-loop", "fiber"):
        server = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2", "--connection-mode", mode)
        socks = [h.connect(server.address) for _ in range(200)]
        for i, s in enumerate(socks):
            s.sendall(b"%05d" % i)
        for i, s in enumerate(socks):
            check(s.recv(5) == b"%05d" % i, f"{mode}: connection {i}")
        time.sleep(3)
        server.proc.send_signal(signal.SIGUSR1)
        released = None
        deadline = time.monotonic() + h.bound(10)
        while released is None and time.monotonic() < deadline:
            found = re.findall(r"(\d+) idle stacks released", server.stderr_text())
            if found:
                released = sum(int(n) for n in found)
            time.sleep(0.05)
        check(released is not None, f"{mode}: no stats line: {server.stderr_text()}")
        if mode == "idle-loop":
            check(released >= 200, f"idle-loop: {released} stacks released for 200 idle connections")
        else:
            check(released == 0, f"fiber: {released} stacks released")
        for i, s in enumerate(socks):
            s.sendall(b"%05d" % (i + 1))
        for i, s in enumerate(socks):
            check(s.recv(5) == b"%05d" % (i + 1), f"{mode}: connection {i} after idling")
        for s in socks:
            s.close()
        stop_ok(server)
    return "idle loops released their stacks and answered again"


if __name__ == "__main__":
    h.run([
        large_payload_half_close,
        every_backend_and_thread_setting,
        many_connections_interleaved,
        peers_that_reset,
        client_that_does_not_read,
        fd_table_full,
        idle_connection_holds_no_buffer,
        idle_connections_give_their_stacks_back,
    ])
