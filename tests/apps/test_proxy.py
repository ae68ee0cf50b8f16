#!/usr/bin/env python3
"""fiberio-proxy against upstreams written here (and fiberio-echo): a large payload with half-close, half-close
in both directions, round-robin, an upstream that refuses or does not answer (client closed, logged once,
skipped), the idle timeout, a client that does not read, peers that reset.
usage: test_proxy.py FIBERIO_ECHO FIBERIO_PROXY"""

import os
import socket
import struct
import threading
import time

import harness as h
from harness import check


class Upstream:
    """A TCP server on 127.0.0.1:0 in a thread; `handler(conn)` serves each connection in its own thread."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.hostport = f"127.0.0.1:{self.port}"
        self.handler = handler
        self.accepted = 0
        self.threads = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        conn.settimeout(h.bound(30))
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def refused_port():
    """A port on 127.0.0.1 where nothing listens (connect gets RST: refused)."""
    return h.free_port()


def start_proxy(*upstreams, extra=()):
    return h.start(h.PROXY, "--listen", "127.0.0.1:0", "--upstream", ",".join(upstreams), "--threads", "2", *extra)


def stop_ok(server):
    rc, _ = server.stop()
    check(rc == 0, f"exit code {rc} after SIGTERM; stderr: {server.stderr_text()}")


def one_request(proxy, payload):
    """A client sends `payload` through the proxy and waits for it back: (echoed?, seconds waited)."""
    with h.connect(proxy.address) as s:
        s.sendall(payload)
        start = time.monotonic()
        s.settimeout(h.bound(10))
        try:
            reply = s.recv(len(payload) + 10)
        except ConnectionResetError:
            reply = b""
        return reply == payload, time.monotonic() - start


def closed_promptly(sock, limit=10.0):
    """True if the peer closes (EOF or reset) within `limit` seconds."""
    sock.settimeout(h.bound(limit))
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# --- cases ------------------------------------------------------------------------------------------------

def large_payload_half_close_through_proxy():
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy = start_proxy(echo.hostport)
    payload = os.urandom(48 << 20)
    reply = h.exchange_half_close(proxy.address, payload, timeout=120)
    check(len(reply) == len(payload), f"{len(reply)} bytes back of {len(payload)}")
    check(reply == payload, "bytes differ after the round trip through the proxy")
    stop_ok(proxy)
    stop_ok(echo)


def half_close_both_ways():
    got = {}

    def upstream_speaks_first(conn):
        # The upstream sends and ends its side first; the client's side must stay open for the reply.
        conn.sendall(b"greeting" * 1000)
        conn.shutdown(socket.SHUT_WR)
        got["from client"] = h.recv_all(conn)

    up = Upstream(upstream_speaks_first)
    proxy = start_proxy(up.hostport)
    with h.connect(proxy.address) as s:
        check(h.recv_all(s) == b"greeting" * 1000, "client did not get the upstream's data and end of stream")
        s.sendall(b"reply after the upstream's half-close")
        s.shutdown(socket.SHUT_WR)
        check(h.recv_all(s) == b"", "data after end of stream")
    deadline = time.monotonic() + h.bound(10)
    while "from client" not in got and time.monotonic() < deadline:
        time.sleep(0.02)
    check(got.get("from client") == b"reply after the upstream's half-close",
          f"upstream got {got.get('from client')!r}")
    up.close()

    def upstream_answers_after_eof(conn):
        request = h.recv_all(conn)  # the client's half-close must arrive as end of stream
        conn.sendall(b"answer to " + request)

    up = Upstream(upstream_answers_after_eof)
    proxy2 = start_proxy(up.hostport)
    with h.connect(proxy2.address) as s:
        s.sendall(b"question")
        s.shutdown(socket.SHUT_WR)
        check(h.recv_all(s) == b"answer to question", "client-side half-close was not passed upstream")
    up.close()
    stop_ok(proxy)
    stop_ok(proxy2)


def round_robin():
    def named(name):
        return lambda conn: conn.sendall(name)

    ups = [Upstream(named(b"A")), Upstream(named(b"B")), Upstream(named(b"C"))]
    proxy = start_proxy(*(u.hostport for u in ups))
    seen = b""
    for _ in range(9):
        with h.connect(proxy.address) as s:
            seen += h.recv_all(s)
    check(seen in (b"ABCABCABC", b"BCABCABCA", b"CABCABCAB"), f"upstreams chosen in order {seen!r}")
    for u in ups:
        u.close()
    stop_ok(proxy)


def refused_upstream_closes_client_and_logs_once():
    dead = f"127.0.0.1:{refused_port()}"
    proxy = start_proxy(dead)
    for _ in range(5):
        with h.connect(proxy.address) as s:
            s.sendall(b"anyone?")
            check(closed_promptly(s), "client not closed when the upstream refused")
    check(proxy.alive(), "proxy died")
    lines = [l for l in proxy.stderr_text().splitlines() if dead in l]
    check(len(lines) == 1, f"expected the outage of {dead} logged once, got {lines}")
    stop_ok(proxy)


def failed_upstream_is_skipped():
    dead = f"127.0.0.1:{refused_port()}"
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy = start_proxy(dead, echo.hostport)  # the first connection goes to the dead one
    served = sum(one_request(proxy, b"n%d" % i)[0] for i in range(8))
    failures = 8 - served
    check(failures <= 1, f"{failures} clients failed: the dead upstream was not skipped")
    check(served >= 7, f"only {served} clients served")
    lines = [l for l in proxy.stderr_text().splitlines() if dead in l]
    check(len(lines) == 1 and "skipping" in lines[0], f"log about {dead}: {lines}")
    stop_ok(proxy)
    stop_ok(echo)


def silent_upstream_is_ejected():
    """An upstream that accepts and reads but never answers: the client waiting on it is closed after
    --response-timeout-ms, the upstream is marked down (logged once), and the next clients go to the one
    that answers. Before, only connect failures counted: a third of clients hung on such an upstream."""
    def silent(conn):
        while conn.recv(4096):
            pass
    hung = Upstream(silent)
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy = start_proxy(hung.hostport, echo.hostport, extra=["--response-timeout-ms", "300"])
    closed, served = 0, 0
    for i in range(6):
        echoed, waited = one_request(proxy, b"q%d" % i)
        if echoed:
            served += 1
        else:
            closed += 1
            check(0.25 <= waited < h.bound(5), f"the hung upstream's client was closed after {waited:.2f} s")
    check(closed == 1, f"{closed} clients went to the hung upstream: it was not ejected")
    check(served == 5, f"only {served} clients served")
    lines = [l for l in proxy.stderr_text().splitlines() if hung.hostport in l]
    check(len(lines) == 1 and "no response" in lines[0] and "skipping" in lines[0], f"log about {hung.hostport}: {lines}")
    hung.close()
    stop_ok(proxy)
    stop_ok(echo)
    return f"client of the hung upstream closed after the timeout; {served} others served"


def resetting_upstream_is_ejected():
    """An upstream that resets every connection once it has read the request: the client on it is closed,
    the upstream marked down (logged once, with the reset), and the next clients go to the other one.
    A client that resets its own connection does not count against the upstream."""
    def reset_after_read(conn):
        conn.recv(4096)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    flaky = Upstream(reset_after_read)
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy = start_proxy(flaky.hostport, echo.hostport)
    served = sum(one_request(proxy, b"r%d" % i)[0] for i in range(6))
    check(served == 5, f"{served} of 6 clients served: the resetting upstream was not ejected after one")
    lines = [l for l in proxy.stderr_text().splitlines() if flaky.hostport in l]
    check(len(lines) == 1 and "skipping" in lines[0] and "reset" in lines[0], f"log about {flaky.hostport}: {lines}")
    # Clients that reset their own connections, on a proxy with one good upstream: it stays up.
    proxy2 = start_proxy(echo.hostport)
    for _ in range(3):
        s = h.connect(proxy2.address)
        s.sendall(b"bye")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(0.2)
    check(one_request(proxy2, b"still")[0], "the proxy stopped serving after clients reset")
    check(not any("skipping" in l for l in proxy2.stderr_text().splitlines()),
          f"a client's reset marked the upstream down: {proxy2.stderr_text()}")
    flaky.close()
    for p in (proxy, proxy2, echo):
        stop_ok(p)
    return "the resetting upstream took one client; clients' own resets did not count"


def least_connections_balance():
    """--balance least-connections: while one client holds a connection to one upstream, the short ones
    that follow all go to the other (round-robin would alternate)."""
    def echo(conn):
        while True:
            data = conn.recv(4096)
            if not data:
                return
            conn.sendall(data)
    ups = [Upstream(echo), Upstream(echo)]
    proxy = start_proxy(*(u.hostport for u in ups), extra=["--balance", "least-connections"])
    held = h.connect(proxy.address)
    held.sendall(b"hold")
    check(held.recv(4) == b"hold", "no echo on the held connection")
    holder = [u for u in ups if u.accepted == 1]
    check(len(holder) == 1, f"accepted: {[u.accepted for u in ups]}")
    for i in range(4):
        with h.connect(proxy.address) as s:
            s.sendall(b"s%d" % i)
            check(s.recv(2) == b"s%d" % i, "no echo")
        time.sleep(0.1)  # the proxy sees the close and releases the connection
    counts = sorted(u.accepted for u in ups)
    check(counts == [1, 4], f"accepted {[u.accepted for u in ups]}: the short connections did not avoid the busy upstream")
    held.close()
    for u in ups:
        u.close()
    stop_ok(proxy)
    return "4 short connections went to the upstream without the held one"


def active_health_checks_find_a_dead_upstream_first():
    """--health-check-interval-ms: the proxy connects to each upstream on its own, so a dead one is marked
    down before any client is sent to it (without checks the first client to it is closed)."""
    dead = f"127.0.0.1:{refused_port()}"
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy = start_proxy(dead, echo.hostport, extra=["--health-check-interval-ms", "100"])
    end = time.monotonic() + h.bound(5)
    while time.monotonic() < end and not any(dead in l and "skipping" in l for l in proxy.stderr_text().splitlines()):
        time.sleep(0.05)
    served = sum(one_request(proxy, b"h%d" % i)[0] for i in range(6))
    check(served == 6, f"only {served} of 6 clients served: the check did not mark {dead} down first")
    lines = [l for l in proxy.stderr_text().splitlines() if dead in l]
    check(len(lines) == 1 and "skipping" in lines[0], f"log about {dead}: {lines}")
    stop_ok(proxy)
    stop_ok(echo)
    return "the dead upstream was marked down by a check; 6 of 6 clients served"


def unresponsive_upstream_times_out():
    # An upstream whose accept queue is full drops SYNs: connect() would wait for minutes. With
    # --connect-timeout-ms 300 the client must be closed soon after, and the proxy keeps serving.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fill = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        try:
            f.connect(blackhole.getsockname())
        except BlockingIOError:
            pass
        fill.append(f)
    time.sleep(0.2)
    target = f"127.0.0.1:{blackhole.getsockname()[1]}"
    proxy = start_proxy(target, extra=["--connect-timeout-ms", "300"])
    with h.connect(proxy.address) as s:
        t0 = time.monotonic()
        check(closed_promptly(s, limit=10), "client not closed although the upstream never answered")
        waited = time.monotonic() - t0
    check(any(target in l for l in proxy.stderr_text().splitlines()), "timeout not logged")
    check(proxy.alive(), "proxy died")
    stop_ok(proxy)
    for f in fill:
        f.close()
    blackhole.close()
    return f"client closed after {waited:.2f} s"


def idle_timeout_closes_both_sides():
    upstream_saw_end = threading.Event()

    def hold(conn):
        conn.sendall(b"hi")
        if h.recv_all(conn) == b"":
            upstream_saw_end.set()

    up = Upstream(hold)
    proxy = start_proxy(up.hostport, extra=["--idle-timeout-s", "1"])
    with h.connect(proxy.address) as s:
        s.settimeout(h.bound(5))
        check(s.recv(2) == b"hi", "no greeting")
        t0 = time.monotonic()
        check(closed_promptly(s, limit=15), "idle connection not closed")
        waited = time.monotonic() - t0
    check(upstream_saw_end.wait(h.bound(10)), "the upstream side was not closed")
    # A connection that keeps moving bytes is not idle.
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy2 = start_proxy(echo.hostport, extra=["--idle-timeout-s", "2"])
    with h.connect(proxy2.address) as s:
        for i in range(15):  # 3 s of traffic, a message every 0.2 s
            s.sendall(b"%02d" % i)
            check(s.recv(2) == b"%02d" % i, f"busy connection cut after {i} messages")
            time.sleep(0.2)
    up.close()
    for p in (proxy, proxy2, echo):
        stop_ok(p)
    return f"idle connection closed after {waited:.2f} s (timeout 1 s)"


def client_that_does_not_read():
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    proxy = start_proxy(echo.hostport)
    rss_before = proxy.rss_kib()
    s = h.connect(proxy.address)
    s.setblocking(False)
    chunk, sent, stalled_since = b"y" * 65536, 0, None
    deadline = time.monotonic() + h.bound(30)
    while sent < 512 << 20 and time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                break
            time.sleep(0.01)
    grown = proxy.rss_kib() - rss_before
    with h.connect(proxy.address) as other:  # others are still served
        other.sendall(b"other")
        check(other.recv(5) == b"other", "proxy stopped serving others")
    s.close()
    check(sent < 128 << 20, f"client sent {sent >> 20} MiB without reading: no backpressure in the proxy")
    check(grown < 64 << 10, f"proxy memory grew by {grown} KiB")
    stop_ok(proxy)
    stop_ok(echo)
    return f"client stalled after {sent >> 10} KiB; proxy RSS +{grown} KiB"


def peers_that_reset():
    def reset_midway(conn):
        conn.recv(10)
        conn.sendall(b"z" * 100000)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "1")
    up = Upstream(reset_midway)
    proxy = start_proxy(up.hostport)
    proxy_echo = start_proxy(echo.hostport)
    for i in range(50):
        with h.connect(proxy.address) as s:  # the upstream resets
            s.sendall(b"go")
            try:
                h.recv_all(s)
            except ConnectionResetError:
                pass
        s = h.connect(proxy_echo.address)  # the client resets
        s.sendall(os.urandom(50000))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    for p in (proxy, proxy_echo):
        check(p.alive(), "proxy died after resets")
    with h.connect(proxy_echo.address) as s:
        s.sendall(b"alive?")
        check(s.recv(6) == b"alive?", "proxy no longer serves")
    up.close()
    for p in (proxy, proxy_echo, echo):
        stop_ok(p)


if __name__ == "__main__":
    h.run([
        large_payload_half_close_through_proxy,
        half_close_both_ways,
        round_robin,
        refused_upstream_closes_client_and_logs_once,
        failed_upstream_is_skipped,
        silent_upstream_is_ejected,
        resetting_upstream_is_ejected,
        least_connections_balance,
        active_health_checks_find_a_dead_upstream_first,
        unresponsive_upstream_times_out,
        idle_timeout_closes_both_sides,
        client_that_does_not_read,
        peers_that_reset,
    ])
