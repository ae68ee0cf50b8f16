#!/usr/bin/env python3
"""A soak: fiberio-proxy in front of fiberio-echo, 2 threads each, work stealing on, under steady load and
high churn at once, every byte that comes back checked. docs/reliability.md gives a 10-minute run's figures.

Load, all at once, each worker in its own thread with its own seeded random stream:
  - steady: connections that make 1 to 40 request/response exchanges (mostly under 1 KiB, some of 64 KiB,
    a few of 1 MiB, which the proxy splices), each reply checked byte for byte, then a half-close and the
    end of stream;
  - churn: connections that send a random amount and then reset (SO_LINGER 0), close with replies unread,
    or half-close and check the whole reply;
  - idle: a pool of connections that each made one checked exchange and then sit idle, a few replaced at a
    time.
Sampled every 0.25 s: each server's VmRSS and open fds. After the load, the fds must come back to what they
were after the warm-up (the proxy may keep its pipe pool: at most 16 empty pipes, 32 fds, per worker), then
SIGTERM must stop each server with exit code 0 within its 2 s grace.

usage: test_soak.py FIBERIO_ECHO FIBERIO_PROXY
environment: FIBERIO_SOAK_SECONDS (default 15), FIBERIO_SOAK_SEED (default 1),
             FIBERIO_SOAK_REPORT (a file for the report, markdown; it is printed either way)"""

import os
import random
import selectors
import socket
import struct
import threading
import time

import harness as h
from harness import check

STEADY_WORKERS = 4
CHURN_WORKERS = 2
IDLE_CONNECTIONS = 200
PIPE_POOL_FDS_PER_WORKER = 32  # net/copy.cpp: PipePool keeps up to 16 empty pipes per worker thread


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def payload(rng, size):
    return rng.randbytes(size)


def message_size(rng):
    roll = rng.random()
    if roll < 0.90:
        return rng.randint(1, 1024)
    if roll < 0.99:
        return rng.randint(1024, 64 * 1024)
    return rng.randint(512 * 1024, 1024 * 1024)


def exchange(sock, data, limit):
    """Sends `data` while reading the echo of it; returns the bytes read (len(data) of them, or fewer at
    end of stream). Sends and reads interleaved, so a large message cannot fill both sides' buffers."""
    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, got = 0, bytearray()
    deadline = time.monotonic() + limit
    view = memoryview(data)
    try:
        while len(got) < len(data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"exchange of {len(data)} bytes: {len(got)} back after {limit} s")
            for key, events in sel.select(min(left, 1.0)):
                if events & selectors.EVENT_WRITE and sent < len(data):
                    sent += sock.send(view[sent:sent + 256 * 1024])
                    if sent == len(data):
                        sel.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    chunk = sock.recv(256 * 1024)
                    if not chunk:
                        return bytes(got)
                    got += chunk
        return bytes(got)
    finally:
        sel.close()
        sock.setblocking(True)


class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.bytes_verified = 0
        self.exchanges = 0
        self.connections = 0
        self.resets = 0
        self.abandoned = 0
        self.half_closes = 0
        self.mismatches = 0
        self.errors = []  # unexpected: a failed connect, a short or wrong reply, a timeout

    def add(self, **counts):
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def error(self, what):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(what)


def checked_exchange(sock, rng, totals, size=None):
    data = payload(rng, size or message_size(rng))
    got = exchange(sock, data, h.bound(30))
    if got != data:
        totals.add(mismatches=1)
        totals.error(f"reply of {len(got)} bytes to {len(data)} differs")
        return False
    totals.add(bytes_verified=len(data), exchanges=1)
    return True


def finish(sock, totals):
    """Half-close, then the end of stream: nothing more may come."""
    sock.shutdown(socket.SHUT_WR)
    rest = h.recv_all(sock)
    if rest:
        totals.error(f"{len(rest)} bytes after the last reply")


def steady(address, rng, stop, totals):
    while not stop.is_set():
        try:
            with h.connect(address, 30) as sock:
                totals.add(connections=1)
                for _ in range(rng.randint(1, 40)):
                    if stop.is_set() or not checked_exchange(sock, rng, totals):
                        break
                finish(sock, totals)
        except OSError as e:
            totals.error(f"steady: {e!r}")


def churn(address, rng, stop, totals):
    while not stop.is_set():
        action = rng.choice(("reset", "abandon", "half_close"))
        try:
            sock = h.connect(address, 30)
            totals.add(connections=1)
            if action == "half_close":
                data = payload(rng, rng.randint(1, 256 * 1024))
                reply = exchange(sock, data, h.bound(30))
                sock.shutdown(socket.SHUT_WR)
                reply += h.recv_all(sock)  # nothing more: the end of stream follows the echo
                if reply != data:
                    totals.add(mismatches=1)
                    totals.error(f"half-close: reply of {len(reply)} bytes to {len(data)} differs")
                else:
                    totals.add(bytes_verified=len(data), half_closes=1)
                sock.close()
            else:
                sock.sendall(payload(rng, rng.randint(1, 128 * 1024)))
                if rng.random() < 0.5:
                    sock.recv(rng.randint(1, 4096))  # part of the reply: the rest is left unread
                if action == "reset":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    totals.add(resets=1)
                else:
                    totals.add(abandoned=1)
                sock.close()
        except OSError as e:
            totals.error(f"churn {action}: {e!r}")


def idle(address, rng, stop, totals):
    pool = []
    try:
        while not stop.is_set():
            while len(pool) < IDLE_CONNECTIONS and not stop.is_set():
                try:
                    sock = h.connect(address, 30)
                    totals.add(connections=1)
                    if checked_exchange(sock, rng, totals, size=rng.randint(1, 512)):
                        pool.append(sock)
                    else:
                        sock.close()
                except OSError as e:
                    totals.error(f"idle: {e!r}")
            for _ in range(5):  # a few leave, cleanly or not
                if pool:
                    sock = pool.pop(rng.randrange(len(pool)))
                    if rng.random() < 0.5:
                        try:
                            finish(sock, totals)
                        except OSError as e:
                            totals.error(f"idle close: {e!r}")
                    sock.close()
            stop.wait(0.5)
    finally:
        for sock in pool:
            sock.close()


class Sampler:
    def __init__(self, servers):
        self.servers = servers  # name -> Server
        self.peak = {name: {"rss": 0, "fds": 0} for name in servers}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        now = {}
        for name, server in self.servers.items():
            rss, fds = server.rss_kib(), fd_count(server.pid)
            peak = self.peak[name]
            peak["rss"], peak["fds"] = max(peak["rss"], rss), max(peak["fds"], fds)
            now[name] = {"rss": rss, "fds": fds}
        return now

    def _run(self):
        while not self.stop.wait(0.25):
            self.sample()


def soak():
    seconds = float(os.environ.get("FIBERIO_SOAK_SECONDS", "15"))
    seed = int(os.environ.get("FIBERIO_SOAK_SEED", "1"))
    echo = h.start(h.ECHO, "--listen", "127.0.0.1:0", "--threads", "2", "--steal")
    proxy = h.start(h.PROXY, "--listen", "127.0.0.1:0", "--threads", "2", "--steal", "--upstream", echo.hostport)
    servers = {"fiberio-echo": echo, "fiberio-proxy": proxy}
    totals = Totals()
    rng = random.Random(seed)
    # Warm-up: every path once (small, large, spliced), so the baseline holds what a running server keeps.
    with h.connect(proxy.address) as sock:
        for size in (1, 1000, 64 * 1024, 1024 * 1024):
            check(checked_exchange(sock, rng, totals, size=size), "warm-up exchange failed")
        finish(sock, totals)
    time.sleep(0.5)
    sampler = Sampler(servers)
    start = sampler.sample()
    sampler.thread.start()

    stop = threading.Event()
    workers = []
    for i in range(STEADY_WORKERS):
        workers.append((steady, random.Random(seed * 1000 + i)))
    for i in range(CHURN_WORKERS):
        workers.append((churn, random.Random(seed * 2000 + i)))
    workers.append((idle, random.Random(seed * 3000)))
    threads = [threading.Thread(target=fn, args=(proxy.address, r, stop, totals), daemon=True) for fn, r in workers]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(h.bound(60))
        check(not t.is_alive(), "a load thread did not finish within 60 s of the end")
    ran = time.monotonic() - t0

    # Back to the baseline: every connection is gone, so its fds must be too (the proxy's pipe pool aside).
    allowance = {"fiberio-echo": 0, "fiberio-proxy": 2 * PIPE_POOL_FDS_PER_WORKER}
    settle_deadline = time.monotonic() + h.bound(10)
    while True:
        after = sampler.sample()
        settled = all(after[n]["fds"] <= start[n]["fds"] + allowance[n] for n in servers)
        if settled or time.monotonic() > settle_deadline:
            break
        time.sleep(0.25)
    sampler.stop.set()
    sampler.thread.join()
    stops = {}
    for name in ("fiberio-proxy", "fiberio-echo"):
        stops[name] = servers[name].stop(limit=10)

    lines = [
        f"soak: {ran:.0f} s, seed {seed}; proxy in front of echo, 2 threads each, work stealing on",
        "",
        f"- bytes verified: {totals.bytes_verified:,} ({totals.exchanges:,} exchanges, "
        f"{totals.half_closes:,} half-closed transfers)",
        f"- connections: {totals.connections:,} ({totals.resets:,} reset by the client, "
        f"{totals.abandoned:,} closed with the reply unread)",
        f"- mismatches: {totals.mismatches}; unexpected errors: {len(totals.errors)}",
        "",
        "| server | RSS start | RSS peak | RSS after | fds start | fds peak | fds after | SIGTERM: exit code, seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in servers:
        rc, took = stops[name]
        lines.append(f"| {name} | {start[name]['rss']:,} KiB | {sampler.peak[name]['rss']:,} KiB | "
                     f"{after[name]['rss']:,} KiB | {start[name]['fds']} | {sampler.peak[name]['fds']} | "
                     f"{after[name]['fds']} | {rc}, {took:.2f} |")
    report = "\n".join(lines)
    print(report, flush=True)
    if os.environ.get("FIBERIO_SOAK_REPORT"):
        with open(os.environ["FIBERIO_SOAK_REPORT"], "w") as f:
            f.write(report + "\n")

    check(totals.mismatches == 0, f"{totals.mismatches} replies differed: {totals.errors}")
    check(not totals.errors, f"unexpected errors: {totals.errors}")
    check(totals.bytes_verified > 0 and totals.resets > 0 and totals.half_closes > 0, "the load did not run")
    for name in servers:
        check(after[name]["fds"] <= start[name]["fds"] + allowance[name],
              f"{name}: {after[name]['fds']} fds after the load, {start[name]['fds']} before: a leak")
        rc, took = stops[name]
        check(rc == 0 and took <= h.bound(2.5), f"{name}: SIGTERM gave exit code {rc} after {took:.2f} s")
    return f"{totals.bytes_verified:,} bytes verified"


if __name__ == "__main__":
    h.run([soak])
