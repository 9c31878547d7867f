#!/usr/bin/env python3
"""File: bench/service_bench.py — measures one `mailbridge run` holding N IMAP mailboxes.

Called by bench/run_service_bench.sh with a running private Dovecot (MB_DOVECOT_MAX_CLIENTS
raised) and writes one JSON object of results. Steps, each bounded by a deadline:

1. writes a configuration with N mailboxes (users bench0001…, IMAPS with the harness CA,
   after = "leave") and `[service] metrics` on a free loopback port, and starts
   `mailbridge run`;
2. waits until the metrics say every mailbox holds an IDLE connection
   (mailbridge_imap_idle_connections == N) — the start-up time;
3. resident memory (VmRSS) and idle CPU (utime+stime over --idle-seconds);
4. appends --appends messages, one every --spacing seconds, each to a random mailbox over
   IMAPS, and polls the store (SQLite, read-only) for the ticket with that message's
   subject: append → ticket latency, p50 and p99;
5. stops the service with SIGTERM and records how long it took to exit.
"""
import argparse
import imaplib
import json
import os
import random
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path, n, env, metrics_port, store):
    lines = [
        "[store]", f'path = "{store}"', "",
        "[service]", f'metrics = "127.0.0.1:{metrics_port}"', "",
    ]
    for i in range(1, n + 1):
        lines += [
            "[[mailbox]]", f'name = "bench{i:04d}"', 'type = "imap"', 'host = "localhost"',
            f"port = {env['MB_IMAPS_PORT']}", 'security = "tls"', 'auth = "password"',
            f'user = "bench{i:04d}"', 'password = "env:MB_BENCH_PASSWORD"',
            'folder = "INBOX"', 'after = "leave"', 'poll_interval = "10m"',
            'project = "BENCH"', f'tls = {{ ca_file = "{env["MB_CA_FILE"]}" }}', "",
        ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def metric(port, name):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def proc_stat(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    threads = int(fields[17])
    return rss * 1024, ticks / os.sysconf("SC_CLK_TCK"), threads


def append(env, user, subject, ctx):
    msg = (f"From: Requester <req@example.com>\r\nTo: {user}@example.com\r\n"
           f"Subject: {subject}\r\nMessage-ID: <{subject}@bench>\r\n"
           "Date: Mon, 07 Dec 2026 12:00:00 +0000\r\n\r\nA benchmark message.\r\n")
    with imaplib.IMAP4_SSL("localhost", int(env["MB_IMAPS_PORT"]), ssl_context=ctx,
                           timeout=30) as imap:
        imap.login(user, env["MB_PASSWORD"])
        imap.append("INBOX", None, None, msg.encode())
        imap.logout()


def ticket_seen(db, subject):
    row = db.execute("SELECT 1 FROM tickets WHERE subject = ?", (subject,)).fetchone()
    return row is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailbridge", required=True)
    ap.add_argument("--dovecot-env", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--spacing", type=float, default=0.1)
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--start-timeout", type=float, default=600)
    args = ap.parse_args()

    env = dict(l.strip().split("=", 1) for l in open(args.dovecot_env) if "=" in l)
    os.makedirs(args.work, exist_ok=True)
    store = os.path.join(args.work, "store.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store + suffix):
            os.remove(store + suffix)
    cfg = os.path.join(args.work, "mailbridge.toml")
    metrics_port = free_port()
    write_config(cfg, args.mailboxes, env, metrics_port, store)
    child_env = dict(os.environ, MB_BENCH_PASSWORD=env["MB_PASSWORD"])
    log = open(os.path.join(args.work, "run.log"), "w")
    started = time.monotonic()
    proc = subprocess.Popen([args.mailbridge, "--config", cfg, "--log-level", "warn", "run"],
                            stdout=log, stderr=log, env=child_env)
    result = {"mailboxes": args.mailboxes}
    try:
        deadline = started + args.start_timeout
        while True:
            if proc.poll() is not None:
                sys.exit(f"service_bench: mailbridge run exited with {proc.returncode}; "
                         f"see {log.name}")
            idle = metric(metrics_port, "mailbridge_imap_idle_connections")
            if idle is not None and idle >= args.mailboxes:
                break
            if time.monotonic() > deadline:
                sys.exit(f"service_bench: only {idle} of {args.mailboxes} mailboxes idle "
                         f"after {args.start_timeout} s")
            time.sleep(0.5)
        result["startup_s"] = round(time.monotonic() - started, 2)

        rss0, cpu0, threads = proc_stat(proc.pid)
        t0 = time.monotonic()
        time.sleep(args.idle_seconds)
        rss1, cpu1, _ = proc_stat(proc.pid)
        elapsed = time.monotonic() - t0
        result.update({
            "rss_bytes": rss1, "rss_per_mailbox_bytes": rss1 // args.mailboxes,
            "threads": threads,
            "idle_cpu_percent": round(100 * (cpu1 - cpu0) / elapsed, 3),
        })

        ctx = ssl.create_default_context(cafile=env["MB_CA_FILE"])
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5,
                             check_same_thread=False)  # read by the watcher thread only
        rng = random.Random(1)
        latencies, lock, pending = [], threading.Lock(), {}
        stop = threading.Event()

        def watcher():
            while not stop.is_set() or pending:
                with lock:
                    items = list(pending.items())
                for subject, t_append in items:
                    if ticket_seen(db, subject):
                        with lock:
                            latencies.append(time.monotonic() - t_append)
                            del pending[subject]
                time.sleep(0.02)
                if stop.is_set() and time.monotonic() > stop_deadline[0]:
                    break

        stop_deadline = [float("inf")]
        w = threading.Thread(target=watcher)
        w.start()
        for k in range(args.appends):
            user = f"bench{rng.randint(1, args.mailboxes):04d}"
            subject = f"svcbench-{k}-{user}"
            append(env, user, subject, ctx)
            with lock:
                pending[subject] = time.monotonic()
            time.sleep(args.spacing)
        stop_deadline[0] = time.monotonic() + 30
        stop.set()
        w.join()
        lost = len(pending)
        latencies.sort()
        result.update({
            "appends": args.appends, "not_imported_within_30s": lost,
            "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_p99_s": round(latencies[min(len(latencies) - 1,
                                                 int(0.99 * len(latencies)))], 3)
            if latencies else None,
            "latency_max_s": round(latencies[-1], 3) if latencies else None,
        })
    finally:
        t_stop = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        result["sigterm_exit_s"] = round(time.monotonic() - t_stop, 2)
        result["exit_code"] = proc.returncode
    print(json.dumps(result))


if __name__ == "__main__":
    main()
