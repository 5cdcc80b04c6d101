#!/usr/bin/python3
"""Peers for test-connect-relay.sh (run inside namespaces).

  server LOG                 in the target: asyncio servers on
      7100 echo to EOF, then FIN
      7101 server first: sends "BANNER\\n" + 70000 bytes and FIN at once,
           then reads to EOF and logs "7101 COUNT SHA256"
      7102 reads one byte, then resets (SO_LINGER 0)
      7103 echo; logs "7103 eof|reset" when a connection ends
      7104 reads a decimal size and a newline, sends that many bytes and
           its FIN at once (the FIN rides on the last data segment)
      7105 never reads; sends 64 KiB every 20 ms for 30 s
      7106 waits 0.3 s, then reads to EOF as fast as it can, writes the
           count as text and closes
  client PROXY CASE [ARGS]   in the client; exit 0 on success, else prints why
      sizes N...             echo of N bytes each (FIN after sending)
      pipelined N...         greeting, request and N bytes in one write
      first                  7101's exchange
      target-rst             7102: the reset must reach us within 5 s
      client-rst             7103: we reset after an echo
      fin K SEED             K sessions on 7104, sizes drawn from SEED:
                             each must get every byte before the EOF
      slow K SEED            K sessions on 7104 of 3..8 MB read slowly (a
                             pause every 512 KiB): the relay's
                             back-pressure pauses the target, whose FIN
                             then comes while it is paused
      upload N               7106: sends N bytes at once and FIN, reading
                             nothing until the target's count comes back
      stall                  7105, reading nothing: after 2 s sends until
                             a send blocks 3 s, fails, or 256 MB went;
                             prints "SENT HOW" (blocked|reset|cap)
      many K T4 CTLFILE      K concurrent sessions, 1000 bytes echoed each;
                             writes CTLFILE (all open), waits for CTLFILE.go
"""
import asyncio
import hashlib
import os
import select
import socket
import struct
import sys
import threading
import time

T4 = "198.18.1.2"


def pattern(n, seed=0):
    return hashlib.shake_256(b"%d/%d" % (seed, n)).digest(n) if n else b""


# --- server -------------------------------------------------------------
def server(log):
    logf = open(log, "a", buffering=1)

    async def echo(r, w):
        while True:
            d = await r.read(65536)
            if not d:
                break
            w.write(d)
            await w.drain()
        w.write_eof()
        await w.drain()
        w.close()

    async def first(r, w):
        w.write(b"BANNER\n" + pattern(70000))
        w.write_eof()
        await w.drain()
        h, n = hashlib.sha256(), 0
        while True:
            d = await r.read(65536)
            if not d:
                break
            h.update(d)
            n += len(d)
        logf.write("7101 %d %s\n" % (n, h.hexdigest()))
        w.close()

    async def rst(r, w):
        await r.read(1)
        s = w.get_extra_info("socket")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    async def watched(r, w):
        how = "eof"
        try:
            while True:
                d = await r.read(65536)
                if not d:
                    break
                w.write(d)
                await w.drain()
        except ConnectionError:
            how = "reset"
        logf.write("7103 %s\n" % how)
        w.close()

    async def finned(r, w):
        line = await r.readline()
        try:
            n = int(line)
        except ValueError:
            w.close()
            return
        w.write(pattern(n, 4))
        w.write_eof()
        await w.drain()
        await r.read()
        w.close()

    async def stalled(r, w):
        buf = b"s" * 65536
        try:
            for _ in range(1500):
                w.write(buf)
                await asyncio.wait_for(w.drain(), 30)
                await asyncio.sleep(0.02)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        w.transport.abort()

    async def late(r, w):
        await asyncio.sleep(0.3)
        n = 0
        while True:
            d = await r.read(1 << 20)
            if not d:
                break
            n += len(d)
        w.write(b"%d" % n)
        await w.drain()
        w.close()

    async def main():
        srvs = []
        for port, h in ((7100, echo), (7101, first), (7102, rst), (7103, watched), (7104, finned),
                        (7105, stalled), (7106, late)):
            srvs.append(await asyncio.start_server(h, T4, port, backlog=2048))
        await asyncio.gather(*(s.serve_forever() for s in srvs))

    asyncio.run(main())


# --- client -------------------------------------------------------------
def socks(proxy, port, extra=b"", timeout=10):
    s = socket.create_connection((proxy, 1080), timeout=timeout)
    req = b"\x05\x01\x00" + b"\x05\x01\x00\x01" + socket.inet_aton(T4) + struct.pack(">H", port)
    s.sendall(req + extra)
    got = b""
    while len(got) < 12:
        d = s.recv(12 - len(got))
        if not d:
            raise SystemExit("proxy closed during the handshake")
        got += d
    if got[:2] != b"\x05\x00" or got[3] != 0:
        raise SystemExit("refused: %r" % got)
    return s


def read_all(s, chunk=65536):
    """Reads until EOF; returns it all."""
    out = []
    while True:
        d = s.recv(chunk)
        if not d:
            return b"".join(out)
        out.append(d)


def exchange(s, data):
    """Sends data then FIN while reading; returns all read until EOF."""
    out = []
    t = threading.Thread(target=lambda: out.append(read_all(s)))
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(30)
    if t.is_alive():
        raise SystemExit("no EOF within 30 s")
    return out[0]


def client(proxy, case, args):
    if case == "sizes":
        for n in map(int, args):
            s = socks(proxy, 7100)
            got = exchange(s, pattern(n, 1))
            if got != pattern(n, 1):
                raise SystemExit("size %d: got %d bytes back, %s" % (n, len(got), "differ" if len(got) == n else "short"))
            s.close()
    elif case == "pipelined":
        for n in map(int, args):
            data = pattern(n, 2)
            s = socks(proxy, 7100, data)
            got = exchange(s, b"")
            if got != data:
                raise SystemExit("pipelined %d: got %d bytes back" % (n, len(got)))
            s.close()
    elif case == "first":
        s = socks(proxy, 7101)
        want = b"BANNER\n" + pattern(70000)
        got = exchange(s, pattern(12345, 3))
        if got != want:
            raise SystemExit("server-first: got %d bytes, want %d" % (len(got), len(want)))
        print(hashlib.sha256(pattern(12345, 3)).hexdigest())
    elif case == "target-rst":
        s = socks(proxy, 7102)
        s.settimeout(5)
        s.sendall(b"x")
        try:
            d = s.recv(100)
            if d:
                raise SystemExit("data after the reset: %r" % d)
        except (ConnectionResetError, BrokenPipeError):
            pass
        except socket.timeout:
            raise SystemExit("the target's reset did not reach us within 5 s")
    elif case == "client-rst":
        s = socks(proxy, 7103)
        s.sendall(b"0123456789")
        got = b""
        while len(got) < 10:
            got += s.recv(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    elif case == "fin":
        import random
        k, rnd = int(args[0]), random.Random(int(args[1]))
        short = []
        for i in range(k):
            n = rnd.choice((rnd.randrange(1, 3000), rnd.randrange(3000, 70000),
                            rnd.randrange(70000, 600000)))
            s = socks(proxy, 7104)
            # The relay is in place once the reply came: ask only now.
            s.sendall(b"%d\n" % n)
            s.settimeout(30)
            got = read_all(s, 262144)
            s.close()
            if got != pattern(n, 4):
                short.append("%d: %d of %d bytes%s" % (i, len(got), n, "" if len(got) != n else " (differ)"))
        if short:
            raise SystemExit("%d of %d sessions lost data at the target's FIN: %s" % (len(short), k, "; ".join(short[:5])))
    elif case == "slow":
        import random
        k, rnd = int(args[0]), random.Random(int(args[1]))
        bad = []
        for i in range(k):
            n = rnd.randrange(3000000, 8000000)
            s = socks(proxy, 7104)
            s.sendall(b"%d\n" % n)
            got, mark = [], 0
            s.settimeout(30)
            total = 0
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got.append(d)
                total += len(d)
                if total - mark >= 524288:
                    mark = total
                    time.sleep(0.03)
            got = b"".join(got)
            s.close()
            if got != pattern(n, 4):
                bad.append("%d: %d of %d bytes%s" % (i, len(got), n, "" if len(got) != n else " (differ)"))
        if bad:
            raise SystemExit("%d of %d slow readers lost data: %s" % (len(bad), k, "; ".join(bad)))
    elif case == "upload":
        n = int(args[0])
        s = socks(proxy, 7106)
        s.settimeout(60)
        buf, sent = b"u" * (1 << 20), 0
        while sent < n:
            sent += s.send(buf[: min(len(buf), n - sent)])
        s.shutdown(socket.SHUT_WR)
        got = read_all(s)
        if got != b"%d" % n:
            raise SystemExit("upload of %d bytes: the target counted %r" % (n, got))
    elif case == "stall":
        s = socks(proxy, 7105)
        time.sleep(2)
        s.settimeout(3)
        buf, sent, how = b"c" * 65536, 0, "cap"
        try:
            while sent < 256 << 20:
                sent += s.send(buf)
        except socket.timeout:
            how = "blocked"
        except OSError:
            how = "reset"
        print(sent, how)
    elif case == "many":
        k, ctl = int(args[0]), args[1]
        conns = []
        for i in range(k):
            conns.append(socks(proxy, 7100, timeout=30))
        data = [pattern(1000, 10 + i) for i in range(k)]
        for s, d in zip(conns, data):
            s.sendall(d)
        got = [b""] * k
        pending = set(range(k))
        fdmap = {conns[i].fileno(): i for i in range(k)}
        end = time.time() + 60
        ep = select.epoll()
        for i in range(k):
            ep.register(conns[i].fileno(), select.EPOLLIN)
        while pending and time.time() < end:
            for fd, _ in ep.poll(1):
                i = fdmap[fd]
                d = conns[i].recv(65536)
                got[i] += d
                if len(got[i]) >= 1000:
                    pending.discard(i)
                    ep.unregister(fd)
        if pending:
            raise SystemExit("%d of %d sessions did not echo" % (len(pending), k))
        bad = sum(1 for i in range(k) if got[i] != data[i])
        if bad:
            raise SystemExit("%d sessions echoed wrong bytes" % bad)
        open(ctl, "w").close()
        end = time.time() + 120
        while not os.path.exists(ctl + ".go") and time.time() < end:
            time.sleep(0.05)
        for s in conns:
            s.close()
    else:
        raise SystemExit("unknown case " + case)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        client(sys.argv[2], sys.argv[3], sys.argv[4:])
