#!/usr/bin/python3
"""Attacks on socksgated and the legitimate client that measures them, for
the abuse-resistance tests (run inside namespaces).  Every attack loop is
bounded in count and in time.

Legitimate client:
  probe PROXY PORT --src ADDR --dst IP:PORT [--user U --password P]
        [--udp [--name NAME]] [--count N] [--interval S] [--timeout S]
      N sessions from ADDR, one every S seconds (each in its own thread,
      so a slow one does not delay the next): CONNECT to DST and an echo (or UDP
      ASSOCIATE and one datagram echoed, to DST's address or to NAME).
      Prints JSON: ok, failed, latency median/p90/max in seconds (from the
      TCP connect to the echo).

Attacks (print JSON summaries).  Each runs --duration seconds and, given
--stop-file F, on until F exists (at most --max-duration seconds): a test
stops it once its measurements are done, so that however slowly its
helpers start on a loaded machine, they run during the attack.  Given
--ready-file F, the attack creates F once it is in full swing (and at
least --ready-after seconds old): the test starts measuring then.
  auth-flood PROXY PORT --src ADDR --user U --password P
        --concurrency C --duration S --max-attempts N
      C connections at a time, each offering RFC 1929 with a wrong
      password, reading the answer, closing, and starting over.  With
      --min-failures N it does not stop (before --max-duration) until N
      wrong passwords were answered: how fast they come depends on the
      CPU the daemon's password workers get.
  slowloris PROXY PORT --src ADDR --sockets N --duration S --max-connects M
      N sockets, each sending a SOCKS5 greeting and request one byte per
      second; a socket the daemon closes is opened again.
  hold-assoc PROXY PORT --src ADDR --dst IP:PORT --count N --first-port P
        --hold S [--release-file F]
      N TRANSPARENT associations (ADDR:P+i -> DST), one after the other,
      held for S seconds (or until F exists, at most S seconds); prints
      reply codes, the first BND and the setup latency (connect to reply)
      median/p90/max.
  udp-flood DST_IP DST_PORT --src ADDR --count N --duration S [--rate R]
      N datagrams from ADDR, as fast as possible or R a second.
  udp-hold PROXY PORT --src ADDR --dst IP:PORT --denied IP:PORT
        [--denied-count N] [--duration S] [--hold S] [--release-file F]
      One UDP ASSOCIATE: an echo from DST through it ("ready" once it
      came), N datagrams to the denied destination within S seconds, an
      echo again after --hold seconds (with F: once F exists, at most
      --hold seconds); prints JSON.
  udp-names PROXY PORT --src ADDR --count N --duration S [--rate R]
        [--suffix SUFFIX | --same NAME] [--port P]
      One UDP ASSOCIATE; datagrams to ever new names (rN.SUFFIX) or to one
      name, as fast as possible or R a second.
Server:
  dns-server ADDR PORT --count-file F [--answer NAME=IPv4 ...]
      A tiny DNS server: A for the names given, NXDOMAIN otherwise (NODATA
      for other types of a known name).  Writes the number of queries it
      received to F every 0.2 s.
"""
import argparse
import asyncio
import ipaddress
import json
import os
import resource
import signal
import socket
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s5raw import addr, recv_exact, transparent_request  # noqa: E402


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hostport(s):
    h, _, p = s.rpartition(":")
    return h.strip("[]"), int(p)


def fam(h):
    return socket.AF_INET6 if ":" in h else socket.AF_INET


def summary(lat):
    if not lat:
        return {"median": None, "p90": None, "max": None}
    lat = sorted(lat)
    return {"median": round(statistics.median(lat), 3),
            "p90": round(lat[min(len(lat) - 1, int(len(lat) * 0.9))], 3),
            "max": round(lat[-1], 3)}


class Window:
    """How long an attack runs: --duration seconds, then on until
    --stop-file exists (looked for every 50 ms), at most --max-duration."""

    def __init__(self, a, more=None):
        self.a = a
        self.more = more  # a condition that keeps it going too
        self.t0 = time.monotonic()
        self.looked = 0.0
        self.stopped = False
        self.ready = False

    def elapsed(self):
        return time.monotonic() - self.t0

    def running(self):
        el = self.elapsed()
        if el < self.a.duration:
            return True
        if el >= self.a.max_duration:
            return False
        if self.more and self.more():
            return True
        if self.stopped or not self.a.stop_file:
            return False
        now = time.monotonic()
        if now - self.looked >= 0.05:
            self.looked = now
            self.stopped = os.path.exists(self.a.stop_file)
        return not self.stopped

    def report(self, d):
        """Adds the attack's seconds, and whether the stop file ended it
        (not --max-duration): then it lasted as long as the test wanted."""
        d["seconds"] = round(self.elapsed(), 2)
        d["stopped"] = self.stopped
        return d

    def mark_ready(self, cond=True):
        """Creates --ready-file once cond holds and the attack is at least
        --ready-after seconds old."""
        if self.ready or not cond or self.elapsed() < self.a.ready_after:
            return
        self.ready = True
        if self.a.ready_file:
            open(self.a.ready_file, "w").close()


def pace(win, sent, rate):
    """Keeps a flood at rate datagrams a second (0: as fast as it can)."""
    if rate and sent % 100 == 0:
        ahead = sent / rate - win.elapsed()
        if ahead > 0:
            time.sleep(ahead)


def window_args(q, duration):
    q.add_argument("--duration", type=float, default=duration)
    q.add_argument("--stop-file")
    q.add_argument("--max-duration", type=float, default=60.0)
    q.add_argument("--ready-file")
    q.add_argument("--ready-after", type=float, default=0.0)


def released(path, t0, hold):
    """Waits until path exists (if given) or hold seconds from t0 passed."""
    while time.monotonic() - t0 < hold:
        if path and os.path.exists(path):
            return
        time.sleep(0.05)


# --- the legitimate client ------------------------------------------------

def negotiate(s, user, password):
    if user:
        s.sendall(b"\x05\x01\x02")
        if recv_exact(s, 2) != b"\x05\x02":
            raise OSError("method")
        u, p = user.encode(), password.encode()
        s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
        if recv_exact(s, 2)[1] != 0:
            raise OSError("auth-failed")
    else:
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2) != b"\x05\x00":
            raise OSError("method")


def read_reply(s):
    head = recv_exact(s, 4)
    if head[1] != 0:
        raise OSError("rep %02x" % head[1])
    n = {1: 4, 4: 16}.get(head[3])
    if n is None:
        n = recv_exact(s, 1)[0]
    rest = recv_exact(s, n + 2)
    if head[3] == 1:
        return socket.inet_ntop(socket.AF_INET, rest[:4]), struct.unpack("!H", rest[4:])[0]
    if head[3] == 4:
        return socket.inet_ntop(socket.AF_INET6, rest[:16]), struct.unpack("!H", rest[16:])[0]
    return None, struct.unpack("!H", rest[-2:])[0]


def probe_once(a):
    dst, dport = hostport(a.dst)
    t0 = time.perf_counter()
    s = socket.socket(fam(a.proxy), socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    try:
        s.bind((a.src, 0))
        s.connect((a.proxy, a.pport))
        negotiate(s, a.user, a.password)
        if not a.udp:
            s.sendall(b"\x05\x01\x00" + addr(dst, dport))
            read_reply(s)
            s.sendall(b"probe-1234567890")
            if recv_exact(s, 16) != b"probe-1234567890":
                raise OSError("echo")
            return time.perf_counter() - t0
        s.sendall(b"\x05\x03\x00" + addr(a.src, 0))
        bnd, bport = read_reply(s)
        u = socket.socket(fam(bnd), socket.SOCK_DGRAM)
        u.settimeout(0.25)
        try:
            u.bind((a.src, 0))
            if a.name:
                n = a.name.encode()
                hdr = b"\x00\x00\x00\x03" + bytes([len(n)]) + n + struct.pack("!H", dport)
            else:
                hdr = b"\x00\x00\x00" + addr(dst, dport)
            # The first datagram may wait for a name lookup: send again
            # every 0.25 s until the echo comes or the probe times out.
            while time.perf_counter() - t0 < a.timeout:
                u.sendto(hdr + b"udp-probe", (bnd, bport))
                try:
                    d, _ = u.recvfrom(2048)
                except socket.timeout:
                    continue
                if d.endswith(b"udp-probe"):
                    return time.perf_counter() - t0
            raise OSError("no udp echo")
        finally:
            u.close()
    finally:
        s.close()


def probe(a):
    """Probe i starts at i * interval whatever the others do (a thread
    each), so that a slow answer does not postpone the next probe."""
    import threading
    lat, errors = [], {}
    lock = threading.Lock()

    def run():
        try:
            dt = probe_once(a)
            with lock:
                lat.append(dt)
        except OSError as e:
            k = str(e) or type(e).__name__
            with lock:
                errors[k] = errors.get(k, 0) + 1

    start = time.perf_counter()
    threads = []
    for i in range(a.count):
        wait = start + i * a.interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    out = {"ok": len(lat), "failed": a.count - len(lat), "errors": errors}
    out.update(summary(lat))
    print(json.dumps(out))
    return 0


# --- attacks --------------------------------------------------------------

async def open_from(src, host, port):
    loop = asyncio.get_running_loop()
    s = socket.socket(fam(host), socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((src, 0))
    try:
        await loop.sock_connect(s, (host, port))
    except OSError:
        s.close()
        raise
    return await asyncio.open_connection(sock=s)


async def auth_flood(a):
    st = {"attempts": 0, "answered_failure": 0, "answered_success": 0,
          "closed": 0, "errors": 0}
    win = Window(a, lambda: st["answered_failure"] < a.min_failures)
    stop = asyncio.Event()
    u, p = a.user.encode(), a.password.encode()
    msg = bytes([1, len(u)]) + u + bytes([len(p)]) + p

    async def watch():
        while win.running():
            win.mark_ready(st["attempts"] >= a.concurrency and
                           st["answered_failure"] >= 3)
            await asyncio.sleep(0.05)
        stop.set()

    async def until_stop(aw):
        """aw's result, or TimeoutError once the attack is over (a
        connection waits for its answer as long as the attack lasts)."""
        op = asyncio.ensure_future(aw)
        end = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({op, end}, return_when=asyncio.FIRST_COMPLETED)
        if op in done:
            end.cancel()
            return op.result()
        op.cancel()
        raise asyncio.TimeoutError()

    async def worker():
        while not stop.is_set() and st["attempts"] < a.max_attempts:
            st["attempts"] += 1
            w = None
            try:
                r, w = await until_stop(open_from(a.src, a.proxy, a.pport))
                w.write(b"\x05\x01\x02" + msg)
                ans = await until_stop(r.readexactly(4))
                if ans[3] == 0:
                    st["answered_success"] += 1
                else:
                    st["answered_failure"] += 1
            except asyncio.IncompleteReadError:
                st["closed"] += 1
            except (OSError, asyncio.TimeoutError):
                st["errors"] += 1
                await asyncio.sleep(0.05)
            finally:
                if w:
                    w.close()

    await asyncio.gather(watch(), *(worker() for _ in range(a.concurrency)))
    win.report(st)
    st["failures_per_s"] = round(st["answered_failure"] / st["seconds"], 2)
    print(json.dumps(st))


async def slowloris(a):
    # A greeting and a CONNECT request to 198.18.1.2:80, one byte a second:
    # 13 bytes take longer than the handshake timeout.
    msg = b"\x05\x01\x00" + b"\x05\x01\x00\x01" + bytes([198, 18, 1, 2]) + b"\x00\x50"
    st = {"connects": 0, "connect_errors": 0, "closed_by_daemon": 0,
          "closed_within_1s": 0, "held_peak": 0}
    held = [0]
    win = Window(a)

    async def one():
        while win.running() and st["connects"] < a.max_connects:
            st["connects"] += 1
            t0 = time.monotonic()
            try:
                r, w = await asyncio.wait_for(
                    open_from(a.src, a.proxy, a.pport), 5)
            except (OSError, asyncio.TimeoutError):
                st["connect_errors"] += 1
                await asyncio.sleep(0.2)
                continue
            held[0] += 1
            st["held_peak"] = max(st["held_peak"], held[0])
            try:
                for i in range(10 ** 6):
                    if not win.running():
                        break
                    w.write(msg[i % len(msg):i % len(msg) + 1])
                    try:
                        d = await asyncio.wait_for(r.read(64), 1.0)
                        if d == b"":
                            raise ConnectionResetError()
                    except asyncio.TimeoutError:
                        pass
            except (OSError, ConnectionError):
                st["closed_by_daemon"] += 1
                if time.monotonic() - t0 < 1.0:
                    st["closed_within_1s"] += 1
                    # as slowloris tools do: come back, a little later
                    await asyncio.sleep(0.1)
            finally:
                held[0] -= 1
                w.close()

    async def watch():
        # In full swing once every socket has been opened.
        while win.running():
            win.mark_ready(st["connects"] >= a.sockets)
            await asyncio.sleep(0.05)

    await asyncio.gather(watch(), *(one() for _ in range(a.sockets)))
    win.report(st)
    print(json.dumps(st))


def hold_assoc(a):
    dst, dport = hostport(a.dst)
    codes, held, lat, bound = {}, [], [], None
    for i in range(a.count):
        try:
            t0 = time.perf_counter()
            s = socket.socket(fam(a.proxy), socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind((a.src, 0))
            s.connect((a.proxy, a.pport))
            negotiate(s, None, None)
            s.sendall(transparent_request(a.proto, a.src, a.first_port + i, dst, dport))
            head = recv_exact(s, 4)
            rest = recv_exact(s, (4 if head[3] == 1 else 16) + 2)
            lat.append(time.perf_counter() - t0)
            k = "%02x" % head[1]
            if head[1] == 0:
                held.append(s)
                if bound is None:
                    f = socket.AF_INET if head[3] == 1 else socket.AF_INET6
                    bound = [socket.inet_ntop(f, rest[:-2]),
                             struct.unpack("!H", rest[-2:])[0]]
            else:
                s.close()
        except OSError as e:
            k = "error:" + (str(e) or type(e).__name__)
        codes[k] = codes.get(k, 0) + 1
    out = {"codes": codes, "bound": bound}
    out.update(summary(lat))
    print(json.dumps(out), flush=True)
    released(a.release_file, time.monotonic(), a.hold)
    for s in held:
        s.close()
    return 0


def udp_flood(a):
    dst, dport = a.dst, a.dport
    s = socket.socket(fam(dst), socket.SOCK_DGRAM)
    s.bind((a.src, a.sport))
    win = Window(a)
    sent = 0
    while sent < a.count and win.running():
        try:
            s.sendto(b"flood-%d" % sent, (dst, dport))
            sent += 1
        except OSError:
            time.sleep(0.001)
        win.mark_ready()
        pace(win, sent, a.rate)
    print(json.dumps(win.report({"sent": sent})))
    return 0


def udp_names(a):
    s = socket.socket(fam(a.proxy), socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((a.src, 0))
    s.connect((a.proxy, a.pport))
    negotiate(s, None, None)
    s.sendall(b"\x05\x03\x00" + addr(a.src, 0))
    bnd, bport = read_reply(s)
    u = socket.socket(fam(bnd), socket.SOCK_DGRAM)
    u.bind((a.src, 0))
    win = Window(a)
    sent = 0
    while sent < a.count and win.running():
        n = (a.same or "r%d.%s" % (sent, a.suffix)).encode()
        try:
            u.sendto(b"\x00\x00\x00\x03" + bytes([len(n)]) + n +
                     struct.pack("!H", a.port) + b"x", (bnd, bport))
            sent += 1
        except OSError:
            time.sleep(0.001)
        win.mark_ready()
        pace(win, sent, a.rate)
        if a.gap:
            time.sleep(a.gap)
    print(json.dumps(win.report({"sent": sent})))
    s.close()
    return 0


def udp_hold(a):
    """One UDP ASSOCIATE: an echo through it, then datagrams to a denied
    destination, a pause, and an echo again (it must still relay)."""
    dst, dport = hostport(a.dst)
    bad, bport_bad = hostport(a.denied)
    s = socket.socket(fam(a.proxy), socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((a.src, 0))
    s.connect((a.proxy, a.pport))
    negotiate(s, None, None)
    s.sendall(b"\x05\x03\x00" + addr(a.src, 0))
    bnd, bport = read_reply(s)
    u = socket.socket(fam(bnd), socket.SOCK_DGRAM)
    u.bind((a.src, 0))

    def echo(tag):
        """An echo through the association: sent again every second, up
        to 10 s (a slow answer is not a missing one)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            u.sendto(b"\x00\x00\x00" + addr(dst, dport) + tag, (bnd, bport))
            end = time.monotonic() + 1
            while time.monotonic() < end:
                u.settimeout(max(0.01, end - time.monotonic()))
                try:
                    if u.recvfrom(2048)[0].endswith(tag):
                        return True
                except socket.timeout:
                    break
        return False
    out = {"echo_before": echo(b"hold-before")}
    print("ready", flush=True)
    t0 = time.monotonic()
    deadline = t0 + a.duration
    sent = 0
    while sent < a.denied_count and time.monotonic() < deadline:
        try:
            u.sendto(b"\x00\x00\x00" + addr(bad, bport_bad) + b"x", (bnd, bport))
            sent += 1
        except OSError:
            time.sleep(0.001)
    out["denied_sent"] = sent
    released(a.release_file, t0, a.hold)
    out["echo_after"] = echo(b"hold-after")
    print(json.dumps(out), flush=True)
    s.close()
    return 0


# --- a DNS server ---------------------------------------------------------

def dns_server(a):
    answers = {}
    for x in a.answer or []:
        n, ip = x.split("=")
        answers[n.lower().rstrip(".")] = ipaddress.ip_address(ip).packed
    s = socket.socket(fam(a.addr), socket.SOCK_DGRAM)
    s.bind((a.addr, a.port))
    s.settimeout(0.2)
    count = [0]
    stop = [False]

    def dump():
        with open(a.count_file + ".tmp", "w") as f:
            f.write("%d\n" % count[0])
        os.replace(a.count_file + ".tmp", a.count_file)

    def term(*_):
        stop[0] = True
    signal.signal(signal.SIGTERM, term)
    last = 0.0
    dump()
    while not stop[0]:
        now = time.monotonic()
        if now - last >= 0.2:
            dump()
            last = now
        try:
            q, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        except OSError:
            continue
        count[0] += 1
        if len(q) < 17:
            continue
        i, labels = 12, []
        while i < len(q) and q[i] != 0 and len(labels) < 64:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
            i += 1 + q[i]
        qend = i + 5
        if qend > len(q):
            continue
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        name = ".".join(labels).lower()
        question = q[12:qend]
        known = answers.get(name)
        if known is None:
            flags, an, body = 0x8183, 0, b""  # NXDOMAIN
        elif qtype == 1:
            flags, an = 0x8180, 1
            body = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + known
        else:
            flags, an, body = 0x8180, 0, b""  # NODATA
        resp = q[:2] + struct.pack("!HHHHH", flags, 1, an, 0, 0) + question + body
        try:
            s.sendto(resp, peer)
        except OSError:
            pass
    dump()
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)

    def proxy_args(q):
        q.add_argument("proxy")
        q.add_argument("pport", type=int)
        q.add_argument("--src", required=True)

    q = sub.add_parser("probe")
    proxy_args(q)
    q.add_argument("--dst", required=True)
    q.add_argument("--user")
    q.add_argument("--password")
    q.add_argument("--udp", action="store_true")
    q.add_argument("--name")
    q.add_argument("--count", type=int, default=10)
    q.add_argument("--interval", type=float, default=0.5)
    q.add_argument("--timeout", type=float, default=15.0)
    q = sub.add_parser("auth-flood")
    proxy_args(q)
    q.add_argument("--user", required=True)
    q.add_argument("--password", required=True)
    q.add_argument("--concurrency", type=int, default=200)
    window_args(q, 10.0)
    q.add_argument("--max-attempts", type=int, default=100000)
    q.add_argument("--min-failures", type=int, default=0)
    q = sub.add_parser("slowloris")
    proxy_args(q)
    q.add_argument("--sockets", type=int, default=2000)
    window_args(q, 15.0)
    q.add_argument("--max-connects", type=int, default=200000)
    q = sub.add_parser("hold-assoc")
    proxy_args(q)
    q.add_argument("--dst", required=True)
    q.add_argument("--proto", type=int, default=17)
    q.add_argument("--count", type=int, default=100)
    q.add_argument("--first-port", type=int, default=30000)
    q.add_argument("--hold", type=float, default=5.0)
    q.add_argument("--release-file")
    q = sub.add_parser("udp-flood")
    q.add_argument("dst")
    q.add_argument("dport", type=int)
    q.add_argument("--src", required=True)
    q.add_argument("--sport", type=int, default=0)
    q.add_argument("--count", type=int, default=100000)
    q.add_argument("--rate", type=float, default=0)
    window_args(q, 10.0)
    q = sub.add_parser("udp-hold")
    proxy_args(q)
    q.add_argument("--dst", required=True)
    q.add_argument("--denied", required=True)
    q.add_argument("--denied-count", type=int, default=50000)
    q.add_argument("--duration", type=float, default=10.0)
    q.add_argument("--hold", type=float, default=12.0)
    q.add_argument("--release-file")
    q = sub.add_parser("udp-names")
    proxy_args(q)
    q.add_argument("--count", type=int, default=200000)
    q.add_argument("--rate", type=float, default=0)
    window_args(q, 10.0)
    q.add_argument("--suffix", default="flood.test")
    q.add_argument("--same")
    q.add_argument("--port", type=int, default=7000)
    q.add_argument("--gap", type=float, default=0.0)
    q = sub.add_parser("dns-server")
    q.add_argument("addr")
    q.add_argument("port", type=int)
    q.add_argument("--count-file", required=True)
    q.add_argument("--answer", action="append")
    a = p.parse_args()
    raise_nofile()
    if a.cmd == "probe":
        return probe(a)
    if a.cmd == "auth-flood":
        asyncio.run(auth_flood(a))
        return 0
    if a.cmd == "slowloris":
        asyncio.run(slowloris(a))
        return 0
    if a.cmd == "hold-assoc":
        return hold_assoc(a)
    if a.cmd == "udp-flood":
        return udp_flood(a)
    if a.cmd == "udp-hold":
        return udp_hold(a)
    if a.cmd == "udp-names":
        return udp_names(a)
    if a.cmd == "dns-server":
        return dns_server(a)
    return 2


if __name__ == "__main__":
    sys.exit(main())
