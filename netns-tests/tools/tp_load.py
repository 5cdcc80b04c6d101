#!/usr/bin/python3
"""Opens many TRANSPARENT associations against socksgated, concurrently.

  tp_load.py PROXY PORT --src ADDR --dst ADDR:PORT --count N --concurrency C
             [--proto 6] [--first-port P] [--hold SECONDS] [--json]

Each worker opens N1, negotiates NO AUTH, asks TRANSPARENT for
(PROTO, ADDR:P+i -> DST) and measures the time from sending the request to
receiving the reply.  Without --hold the association is closed right away
(N1 closed); with --hold every association stays open until all are up and
SECONDS have passed.  Prints a summary (or JSON): successes, reply codes,
latency median/p99 in ms, and setups per second.
"""
import argparse
import json
import os
import queue
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s5raw import recv_exact, transparent_request  # noqa: E402


def one(a, i, results, held):
    sport = a.first_port + i
    dst, dport = a.dst.rsplit(":", 1)
    dst = dst.strip("[]")
    try:
        s = socket.create_connection((a.proxy, a.port), timeout=10)
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2) != b"\x05\x00":
            raise OSError("method")
        req = transparent_request(a.proto, a.src, sport, dst, int(dport))
        t0 = time.perf_counter()
        s.sendall(req)
        head = recv_exact(s, 4)
        rest = recv_exact(s, (4 if head[3] == 1 else 16) + 2)
        dt = time.perf_counter() - t0
        rep = head[1]
        results.put((rep, dt))
        if a.hold and rep == 0:
            held.append(s)
        else:
            s.close()
    except OSError as e:
        results.put((-1, 0.0))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("proxy")
    p.add_argument("port", type=int)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--proto", type=int, default=6)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--first-port", type=int, default=30000)
    p.add_argument("--hold", type=float, default=0)
    p.add_argument("--release-file", help="with --hold: stop holding once this file exists")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.count > 60000 or a.concurrency > 1000 or a.hold > 600:
        sys.exit("bounded: count <= 60000, concurrency <= 1000, hold <= 600")
    results = queue.Queue()
    held = []
    todo = queue.Queue()
    for i in range(a.count):
        todo.put(i)

    def worker():
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            one(a, i, results, held)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    codes = {}
    lat = []
    while not results.empty():
        rep, dt = results.get()
        codes[rep] = codes.get(rep, 0) + 1
        if rep == 0:
            lat.append(dt * 1000)
    lat.sort()
    out = {
        "count": a.count,
        "concurrency": a.concurrency,
        "ok": codes.get(0, 0),
        "codes": {str(k): v for k, v in codes.items()},
        "elapsed_s": round(elapsed, 3),
        "setups_per_s": round(a.count / elapsed, 1) if elapsed else 0,
        "latency_ms_median": round(lat[len(lat) // 2], 3) if lat else None,
        "latency_ms_p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3) if lat else None,
    }
    if a.hold:
        deadline = time.time() + a.hold
        while time.time() < deadline:
            if a.release_file and os.path.exists(a.release_file):
                break
            time.sleep(0.2)
        for s in held:
            s.close()
    if a.json:
        print(json.dumps(out))
    else:
        print(" ".join("%s=%s" % kv for kv in out.items()))
    sys.exit(0 if out["ok"] == a.count else 1)


if __name__ == "__main__":
    main()
