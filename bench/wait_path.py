#!/usr/bin/env python3
"""Tables and charts for bench/wait_path.sh.

Reads the raw outputs the script left in --out (strace -c summaries, perf stat CSV, callgrind logs and
annotations, VmRSS figures), computes per-request costs as (count(N2) - count(N1)) / (N2 - N1), prints the
markdown tables, writes them to OUT/wait_path.md, the callgrind top 20 and per-function difference files,
and, with --docs/--img, the block between the wait_path markers of docs/benchmarks.md and PNG charts
(gnuplot). Standard library only.
"""

import argparse
import os
import re
import subprocess
import sys

BEGIN = "<!-- wait_path:begin -->"
END = "<!-- wait_path:end -->"
SECTION = "### The wait path: syscalls, instructions and memory per request"
INTRO = """\
What one request costs the server on its wait path: park the connection fiber, wait for readiness,
wake it, read, write. `bench/wait_path.sh` runs `fiberio-echo --threads 1` (on epoll, and on io_uring
where the kernel allows it) and `raw_epoll_echo` side by side in one run, under `bench/echo_load` with one thread, 50 connections and 64-byte messages (one
request in flight per connection). Syscalls are counted twice: under `strace -f -c` (the server started
under strace, every thread) and at full speed with `perf stat` on the syscall tracepoints, attached to the
server. strace stops the server at each syscall and slows it many times over, so more requests are
waiting each time it looks and fewer reads come back empty or polls block: the same code paths, batched
differently; the perf row is the full-speed figure. Instructions are the `Collected` Ir of `valgrind --tool=callgrind --trace-children=no` on the
server: user space only, the kernel's share of each syscall is not in them; they depend on timing too (a
server slowed by valgrind that finds the next request waiting reads it without parking, which is cheaper),
so that pair is repeated (3 times by default) and the median given, with each pair's fd suspensions (fiberio) or `recv` calls (raw) and
`epoll_wait` calls per request to show its regime. Each of these three is measured
on two fresh server starts, one driven for N1 requests and one for N2: per request =
(count(N2) − count(N1)) / (N2 − N1), so start-up, connection set-up and shutdown cancel. Memory is VmRSS
of the server before and while `echo_load --hold` keeps 10,000 connections idle (after one request each),
divided by 10,000; VmRSS leaves out the kernel's socket memory, the same for both servers. The block
below is rewritten by the script, every figure in it from the run it names; the script also prints the
path of a `callgrind_annotate` top 20 of the median pair's N2 run (start-up included) next to its other raw outputs."""

# Columns of the breakdown: label -> syscall names added up.
GROUPS = [
    ("recvfrom", ["recvfrom"]),
    ("sendto", ["sendto"]),
    ("epoll_wait", ["epoll_wait", "epoll_pwait", "epoll_pwait2"]),
    ("io_uring_enter", ["io_uring_enter"]),
    ("read + write", ["read", "write"]),
    ("epoll_ctl", ["epoll_ctl"]),
]


def parse_strace(path):
    """strace -c summary -> {syscall: calls}, with 'total'."""
    counts = {}
    for line in open(path):
        f = line.split()
        if len(f) < 5 or not re.match(r"^[\d.]+$", f[0]):
            continue
        # % time, seconds, usecs/call, calls, [errors], syscall
        counts[f[-1]] = int(f[3])
    if "total" not in counts:
        raise SystemExit(f"wait_path.py: no total in {path}")
    return counts


def parse_perf(path):
    """perf stat -x, output -> {syscall: count}; raw_syscalls:sys_enter is 'total'."""
    counts = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        f = line.strip().split(",")
        if len(f) < 3 or not f[0].strip().isdigit():
            continue
        event = f[2]
        name = "total" if event == "raw_syscalls:sys_enter" else event.replace("syscalls:sys_enter_", "")
        counts[name] = int(f[0])
    if "total" not in counts:
        raise SystemExit(f"wait_path.py: no raw_syscalls:sys_enter count in {path}")
    return counts


def parse_collected(path):
    for line in open(path):
        m = re.search(r"Collected\s*:\s*(\d+)", line)
        if m:
            return int(m.group(1))
    raise SystemExit(f"wait_path.py: no 'Collected' line in {path}")


def parse_calls(path, caller=None):
    """callgrind out file -> {called function name: calls}, summed over all call sites, or over the
    sites in functions whose name starts with `caller` (a prefix, or a tuple of them). Across a fiber switch callgrind sees the return
    into the other fiber's frames as calls (from Fiber::suspend into wait_ready, for instance), so a
    count of real calls names the real caller."""
    names, calls, current, current_fn = {}, {}, None, None
    for line in open(path):
        if line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                current = names.get(m.group(1))
        elif line.startswith("fn="):
            m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                current_fn = names.get(m.group(1), "")
        elif line.startswith("calls=") and current:
            if caller is None or (current_fn or "").startswith(caller):
                calls[current] = calls.get(current, 0) + int(line[6:].split()[0])
            current = None
    return calls


FN_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*)$")


def parse_annotate(path):
    """callgrind_annotate output -> (header lines, [(Ir, 'file:function')]) in its order."""
    lines = open(path).read().splitlines()
    fns, header, in_fns = [], [], False
    for i, line in enumerate(lines):
        if not in_fns:
            header.append(line)
            if re.match(r"^Ir\s+file:function", line.strip()) and i + 1 < len(lines):
                in_fns = True
            continue
        if line.startswith("---"):
            continue
        m = FN_LINE.match(line)
        if m:
            fns.append((int(m.group(1).replace(",", "")), m.group(2).strip()))
        elif fns and not line.strip():
            break
    return header, fns


def per_request(a, b, n1, n2):
    return (b - a) / (n2 - n1)


def group_counts(counts):
    row = {"all": counts.get("total", 0)}
    for label, names in GROUPS:
        row[label] = sum(counts.get(n, 0) for n in names)
    return row


def fmt(x, digits=2):
    if abs(x) < 0.5 * 10**-digits:
        x = 0.0  # no "-0.00" from a difference of two nearly equal counts
    return f"{x:,.{digits}f}"


def run_gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def charts(img_dir, servers, syscall_rows, instr, mem, mem_conns, title_suffix):
    os.makedirs(img_dir, exist_ok=True)
    cols = ["all"] + [g for g, _ in GROUPS]
    # Syscalls: clustered bars, one cluster per column, one bar per (server, method).
    series = [(f"{s} ({m})", syscall_rows[(s, m)]) for s in servers for m in ("strace", "perf")
              if (s, m) in syscall_rows]
    dat = os.path.join(img_dir, ".wait_path_syscalls.dat")
    with open(dat, "w") as f:
        for c in cols:
            f.write('"%s" %s\n' % (c, " ".join(f"{r[c]:.4f}" for _, r in series)))
    plots = ", ".join(f"'{dat}' using {i + 2}:xtic(1) title '{t}'" + ("" if i else "")
                      for i, (t, _) in enumerate(series))
    common = ("set terminal pngcairo size 900,480 font 'sans,10' noenhanced\n"
              "set style fill solid 0.85 border -1\nset grid ytics\nset key top right\n"
              "set yrange [0:*]\n")
    run_gnuplot(common + f"set output '{img_dir}/wait_path_syscalls.png'\n"
                "set style data histograms\nset style histogram clustered gap 1\n"
                f"set title 'Syscalls per request (50 connections, 64 B ping-pong){title_suffix}'\n"
                "set ylabel 'syscalls per request'\n"
                f"plot {plots}\n")
    # Instructions and memory: one bar per server, value on top.
    for key, values, ylabel, title, digits in (
            ("instructions", instr, "instructions (Ir) per request",
             "User-space instructions per request (callgrind)", 0),
            ("memory", mem, "bytes per idle connection",
             f"Server memory per idle connection (VmRSS, {mem_conns:,} connections)", 0)):
        dat = os.path.join(img_dir, f".wait_path_{key}.dat")
        with open(dat, "w") as f:
            for i, s in enumerate(servers):
                if s in values:
                    f.write(f'{i} "{s}" {values[s]:.2f}\n')
        run_gnuplot(common + "set terminal pngcairo size 640,420 font 'sans,10' noenhanced\n"
                    f"set output '{img_dir}/wait_path_{key}.png'\nset key off\n"
                    "set boxwidth 0.5\nset xrange [-0.6:%g]\n" % (len(servers) - 0.4) +
                    f"set title '{title}{title_suffix}'\nset ylabel '{ylabel}'\nset offsets 0,0,graph 0.1,0\n"
                    f"plot '{dat}' using 1:3:xtic(2) with boxes lc rgb '#4a7ab5', "
                    f"'' using 1:3:(sprintf('%.{digits}f', $3)) with labels offset 0,0.8\n")
        os.remove(dat)
    os.remove(os.path.join(img_dir, ".wait_path_syscalls.dat"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--n1", type=int, required=True)
    ap.add_argument("--n2", type=int, required=True)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--commit", default="?")
    ap.add_argument("--date", default="?")
    ap.add_argument("--command", default="bench/wait_path.sh")
    ap.add_argument("--elapsed", default="?")
    ap.add_argument("--docs")
    ap.add_argument("--img")
    a = ap.parse_args()
    out, n1, n2 = a.out, a.n1, a.n2
    servers = a.servers.split(",")
    P = lambda *parts: os.path.join(out, "_".join(parts))  # noqa: E731

    syscall_rows, raw_counts = {}, []
    perf_skipped = os.path.exists(os.path.join(out, "perf_skipped.txt"))
    for s in servers:
        c1, c2 = parse_strace(P("strace", s, f"{n1}.txt")), parse_strace(P("strace", s, f"{n2}.txt"))
        g1, g2 = group_counts(c1), group_counts(c2)
        row = {k: per_request(g1[k], g2[k], n1, n2) for k in g1}
        row["other"] = row["all"] - sum(row[g] for g, _ in GROUPS)
        syscall_rows[(s, "strace")] = row
        raw_counts.append((s, "syscalls, strace -f -c", g1["all"], g2["all"]))
        if not perf_skipped:
            p1, p2 = parse_perf(P("perf", s, f"{n1}.csv")), parse_perf(P("perf", s, f"{n2}.csv"))
            g1, g2 = group_counts(p1), group_counts(p2)
            has_breakdown = any(k != "total" for k in p1)
            row = {k: per_request(g1[k], g2[k], n1, n2) for k in g1}
            row["other"] = row["all"] - sum(row[g] for g, _ in GROUPS) if has_breakdown else None
            if not has_breakdown:
                for g, _ in GROUPS:
                    row[g] = None
            syscall_rows[(s, "perf")] = row
            raw_counts.append((s, "syscalls, perf stat", g1["all"], g2["all"]))

    # Callgrind: R pairs; the median pair gives the figure, the range and the regime go in the tables.
    instr, instr_pairs, median_rep = {}, {}, {}
    for s in servers:
        pairs = []
        for rep in range(1, a.reps + 1):
            i1 = parse_collected(P("callgrind", s, f"{n1}_r{rep}.log"))
            i2 = parse_collected(P("callgrind", s, f"{n2}_r{rep}.log"))
            k1 = parse_calls(P("callgrind", s, f"{n1}_r{rep}.out"))
            k2 = parse_calls(P("callgrind", s, f"{n2}_r{rep}.out"))
            # Both fd-wait frames: AsyncFd::wait (a fiber's wait) and IdleLoopTask::serve (an idle loop's),
            # which switch out with jump_fcontext themselves (the reactor's wait is inline in both).
            frames = ("fiberio::AsyncFd::wait", "fiberio::detail::IdleLoopTask::serve")
            w1 = parse_calls(P("callgrind", s, f"{n1}_r{rep}.out"), caller=frames)
            w2 = parse_calls(P("callgrind", s, f"{n2}_r{rep}.out"), caller=frames)
            # The regime: how often a request made the fiber suspend on its fd (fiberio: switches out of
            # an fd-wait frame), or how often the loop called recv (the raw server, one per request
            # whatever the timing).
            calls = lambda k, w: (sum(v for n, v in w.items() if n.startswith("jump_fcontext"))  # noqa
                                  if s.startswith("fiberio-echo") else k.get("recv", 0),
                                  sum(k.get(x, 0) for x in ("epoll_wait", "epoll_pwait", "io_uring_wait_cqe_timeout",
                                                            "__io_uring_get_cqe")))
            (r1, e1), (r2, e2) = calls(k1, w1), calls(k2, w2)
            pairs.append({"rep": rep, "ir": per_request(i1, i2, n1, n2), "i1": i1, "i2": i2,
                          "recv": per_request(r1, r2, n1, n2), "epoll_wait": per_request(e1, e2, n1, n2)})
            raw_counts.append((s, f"instructions (Ir), callgrind, pair {rep}", i1, i2))
        ordered = sorted(pairs, key=lambda p: p["ir"])
        med = ordered[(len(ordered) - 1) // 2]
        instr[s], instr_pairs[s], median_rep[s] = med["ir"], pairs, med["rep"]

    mem, mem_raw = {}, {}
    for s in servers:
        kv = dict(line.split() for line in open(P("mem", f"{s}.txt")) if line.strip())
        before, during, conns = int(kv["before_kib"]), int(kv["during_kib"]), int(kv["connections"])
        mem[s] = (during - before) * 1024 / conns
        mem_raw[s] = (before, during, conns)

    # Throughput of the perf runs (full speed, N2): context only, it depends on the machine's load.
    rates = {}
    for s in servers:
        path = P("perf", s, f"{n2}.load")
        if os.path.exists(path):
            m = re.search(r"\((\d+) requests/s\)", open(path).read())
            if m:
                rates[s] = int(m.group(1))

    # Callgrind: the N2 run's top 20 as callgrind_annotate lists it, and the per-request difference.
    for s in servers:
        r = median_rep[s]
        header, fns2 = parse_annotate(P("callgrind", s, f"{n2}_r{r}.annotate"))
        _, fns1 = parse_annotate(P("callgrind", s, f"{n1}_r{r}.annotate"))
        with open(os.path.join(out, f"callgrind_top20_{s}.txt"), "w") as f:
            f.write(f"# callgrind_annotate of {s}, the {n2:,}-request run of pair {r} (the median pair; "
                    "start-up and shutdown included)\n")
            f.write("\n".join(header) + "\n")
            for ir, fn in fns2[:20]:
                f.write(f"{ir:>16,}  {fn}\n")
        d1 = dict((fn, ir) for ir, fn in fns1)
        diff = sorted(((ir - d1.get(fn, 0)) / (n2 - n1), fn) for ir, fn in fns2)
        diff.reverse()
        with open(os.path.join(out, f"callgrind_per_request_{s}.txt"), "w") as f:
            f.write(f"# {s}: Ir per request by function, pair {r}, (Ir({n2:,}) - Ir({n1:,})) / {n2 - n1:,}; "
                    f"total {instr[s]:,.0f}\n")
            for v, fn in diff[:40]:
                f.write(f"{v:>10.1f}  {fn}\n")

    cols = ["all"] + [g for g, _ in GROUPS] + ["other"]
    label = {"fiberio-echo": "`fiberio-echo --threads 1`",
             "fiberio-echo-fiber": "`fiberio-echo --threads 1 --connection-mode fiber`",
             "fiberio-echo-io_uring": "`fiberio-echo --threads 1 --backend io_uring`",
             "raw_epoll_echo": "`raw_epoll_echo`"}
    L = lambda s: label.get(s, f"`{s}`")  # noqa: E731
    md = []
    md.append(f"Measured at commit `{a.commit}` on {a.date} (UTC), N1 = {n1:,} and N2 = {n2:,} requests, "
              f"{a.connections} connections, {a.size}-byte messages, `echo_load --threads 1`; the whole run "
              f"took {a.elapsed} s. Regenerate with:")
    md.append("")
    md.append("```sh")
    md.append("meson setup build-rel -Dbuildtype=release && ninja -C build-rel")
    md.append(a.command.strip())
    md.append("```")
    md.append("")
    md.append("Syscalls per request:")
    md.append("")
    md.append("| server | counted by | " + " | ".join(cols) + " |")
    md.append("|---|---|" + "---|" * len(cols))
    for s in servers:
        for m, what in (("strace", "`strace -f -c`"), ("perf", "`perf stat`")):
            r = syscall_rows.get((s, m))
            if r is None:
                continue
            cells = []
            for c in cols:
                v = r.get(c)
                cell = "–" if v is None else fmt(v)
                cells.append(f"**{cell}**" if c == "all" else cell)
            md.append(f"| {L(s)} | {what} | " + " | ".join(cells) + " |")
    if perf_skipped:
        md.append("")
        md.append("perf: skipped (" + open(os.path.join(out, "perf_skipped.txt")).read().strip() + ").")
    md.append("")
    md.append("Instructions and memory:")
    md.append("")
    md.append(f"| server | user-space instructions per request (median of {a.reps}) | VmRSS before | with "
              f"{next(iter(mem_raw.values()))[2]:,} idle connections | bytes per idle connection |")
    md.append("|---|---|---|---|---|")
    for s in servers:
        b, d, _ = mem_raw[s]
        md.append(f"| {L(s)} | **{instr[s]:,.0f}** | {b:,} KiB | {d:,} KiB | **{mem[s]:,.0f}** |")
    md.append("")
    md.append("Each callgrind pair (the instruction count depends on whether the slowed server finds the next "
              "request already waiting: for fiberio-echo the regime column counts suspensions on the fd "
              "(switches out of `AsyncFd::wait` or `IdleLoopTask::serve`) per request, 1.00 meaning every request parked; for the raw "
              "loop it counts `recv` calls):")
    md.append("")
    md.append("| server | pair | instructions per request | fd suspensions (fiberio) or `recv` calls (raw) per request | backend waits (`epoll_wait`, io_uring `wait_cqe`) per request |")
    md.append("|---|---|---|---|---|")
    for s in servers:
        for pr in instr_pairs[s]:
            mark = " (median)" if pr["rep"] == median_rep[s] else ""
            md.append(f"| {L(s)} | {pr['rep']}{mark} | {pr['ir']:,.0f} | {fmt(pr['recv'])} | {fmt(pr['epoll_wait'])} |")
    md.append("")
    md.append("The raw counts the figures come from (N1 run, N2 run):")
    md.append("")
    md.append("| server | count | N1 run | N2 run |")
    md.append("|---|---|---|---|")
    for s, what, c1, c2 in raw_counts:
        md.append(f"| {L(s)} | {what} | {c1:,} | {c2:,} |")
    if rates:
        md.append("")
        md.append("Throughput of the perf runs (N2, full speed; depends on the machine's load, context only): " +
                  ", ".join(f"{L(s)} {r:,} requests/s" for s, r in rates.items()) + ".")
    la_before = open(os.path.join(out, "loadavg.before")).read().strip()
    la_after = open(os.path.join(out, "loadavg.after")).read().strip()
    md.append(f"Load average before and after the run: {la_before}; {la_after}.")
    top_s = servers[0]
    per_fn = open(os.path.join(out, f"callgrind_per_request_{top_s}.txt")).read().splitlines()
    md.append("")
    md.append(f"<details><summary>Where {L(top_s)}'s instructions per request go (callgrind, per function, "
              f"N2 run minus N1 run of pair {median_rep[top_s]})</summary>")
    md.append("")
    md.append("```")
    md.extend(per_fn[:21])
    md.append("```")
    md.append("")
    md.append("</details>")
    table = "\n".join(md)

    if a.img:
        md_img = ["", "![Syscalls per request](img/wait_path_syscalls.png)",
                  "![Instructions per request](img/wait_path_instructions.png)",
                  "![Bytes per idle connection](img/wait_path_memory.png)"]
        table += "\n" + "\n".join(md_img)
        charts(a.img, servers, syscall_rows, instr, mem, next(iter(mem_raw.values()))[2], f" — {a.commit}")

    with open(os.path.join(out, "wait_path.md"), "w") as f:
        f.write(table + "\n")
    print(table)

    if a.docs:
        text = open(a.docs).read()
        block = f"{BEGIN}\n{table}\n{END}"
        if BEGIN in text and END in text:
            pre, rest = text.split(BEGIN, 1)
            _, post = rest.split(END, 1)
            text = pre + block + post
        else:
            m = re.search(r"^## Echo server\s*$", text, re.M)
            if not m:
                raise SystemExit(f"wait_path.py: no '## Echo server' section in {a.docs}")
            nxt = re.search(r"^## ", text[m.end():], re.M)
            at = m.end() + nxt.start() if nxt else len(text)
            section = f"{SECTION}\n\n{INTRO}\n\n{block}\n\n"
            text = text[:at].rstrip("\n") + "\n\n" + section + text[at:]
        with open(a.docs, "w") as f:
            f.write(text)
        print(f"== wrote {a.docs}" + (f" and {a.img}/wait_path_*.png" if a.img else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
