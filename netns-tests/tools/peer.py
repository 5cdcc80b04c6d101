#!/usr/bin/python3
"""Test peers for socksgate's end-to-end tests (run inside namespaces).

Servers (run in the background, stop with SIGTERM):
  tcp-echo PORT [--log FILE]      echo every byte; one log line per connection
  udp-echo PORT [--log FILE]      echo every datagram; one log line each
  tcp-sink PORT --log FILE        read to EOF, log "<bytes> <sha256>"
  tcp-closer PORT --log FILE      echo one read, then close first (FIN);
                                  log the time of the close
  record PORT --log FILE          TCP and UDP on every address (dual-stack
                                  ::), echoing; one line per connection or
                                  datagram: "tcp|udp LOCAL-ADDR PEER-ADDR"
                                  (what a denied destination must never see)

Clients (exit 0 on success, print what they saw):
  tcp-echo-check HOST PORT [--src ADDR:PORT] [--bytes N]
        connect (from --src), send N random bytes, expect them echoed
  tcp-expect-silence HOST PORT --src ADDR:PORT [--wait S]
        connect must time out: no SYN-ACK and no RST came back
  udp-echo-check HOST PORT [--src ADDR:PORT] [--count K] [--size B]
        send K datagrams, expect each echoed byte-exact
  udp-expect-silence HOST PORT --src ADDR:PORT [--wait S]
        send a datagram; neither an answer nor an ICMP error may come back
  udp-stream HOST PORT --src ADDR:PORT --log FILE [--interval S]
        send numbered datagrams until killed or --max-time; for each
        answer log "ANSWER_TIME SEND_TIME" (the time its datagram was
        sent, matched by number, so a late answer is not taken for a
        later datagram's)
  tcp-stream HOST PORT --src ADDR:PORT --log FILE [--timeout S]
        send and read echoes until the connection breaks (no echo within
        --timeout) or --max-time; log "ANSWER_TIME SEND_TIME" per echo.
        The socket lingers 0: when the process ends it sends one RST and
        nothing more (no FIN or data retransmitted by the kernel later)
  tcp-probe HOST PORT [--src ADDR:PORT] [--bytes N] [--timeout S]
  udp-probe HOST PORT [--src ADDR:PORT] [--count K] [--timeout S]
        print one word: pass, timeout, refused (a RST to the SYN, or an
        ICMP unreachable), reset, error:...  (firewall matrices)
  socks-raw PROXY PORT HEX [--user U --password P]
        send a raw SOCKS5 request (after NO AUTH or user/pass negotiation)
        and print the reply code as two hex digits
"""
import argparse
import hashlib
import os
import signal
import socket
import struct
import sys
import threading
import time


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def log_line(path, text):
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")
            f.flush()


def serve_tcp_echo(port, logf, sink=False):
    socks = []
    for fam, addr in ((socket.AF_INET6, "::"),):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((addr, port))
        s.listen(128)
        socks.append(s)

    def handle(c, peer):
        h = hashlib.sha256()
        total = 0
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                total += len(d)
                if sink:
                    h.update(d)
                else:
                    c.sendall(d)
        except OSError:
            pass
        finally:
            if sink:
                log_line(logf, "%d %s" % (total, h.hexdigest()))
            c.close()

    s = socks[0]
    while True:
        c, peer = s.accept()
        if not sink:
            log_line(logf, "conn %s %d" % (peer[0], peer[1]))
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


def serve_tcp_closer(port, logf):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(128)
    while True:
        c, peer = s.accept()
        try:
            d = c.recv(65536)
            c.sendall(d)
        except OSError:
            pass
        c.close()
        log_line(logf, "%.6f close %s %d" % (time.time(), peer[0], peer[1]))


def serve_udp_echo(port, logf):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    while True:
        d, peer = s.recvfrom(65536)
        log_line(logf, "dgram %s %d %d" % (peer[0], peer[1], len(d)))
        s.sendto(d, peer)


def serve_record(port, logf):
    def unmap(a):
        return a[7:] if a.startswith("::ffff:") else a

    def tcp():
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        s.listen(128)
        while True:
            c, peer = s.accept()
            log_line(logf, "tcp %s %s" % (unmap(c.getsockname()[0]), unmap(peer[0])))
            try:
                c.settimeout(2)
                d = c.recv(65536)
                c.sendall(d)
            except OSError:
                pass
            c.close()

    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    u.bind(("::", port))
    threading.Thread(target=tcp, daemon=True).start()
    while True:
        d, anc, _, peer = u.recvmsg(65536, 256)
        local = "?"
        for level, kind, data in anc:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                local = socket.inet_ntop(socket.AF_INET6, data[:16])
        log_line(logf, "udp %s %s" % (unmap(local), unmap(peer[0])))
        try:
            u.sendto(d, peer)
        except OSError:
            pass


def bound_socket(host, kind, src):
    s = socket.socket(family_of(host), kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if src:
        a, p = split_hostport(src)
        s.bind((a, p))
    return s


def tcp_echo_check(a):
    s = bound_socket(a.host, socket.SOCK_STREAM, a.src)
    s.settimeout(a.timeout)
    s.connect((a.host, a.port))
    data = os.urandom(a.bytes)
    got = bytearray()

    def reader():
        while len(got) < len(data):
            d = s.recv(65536)
            if not d:
                break
            got.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    t.join(a.timeout)
    s.close()
    ok = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    print("sent %d received %d %s" % (len(data), len(got), "match" if ok else "MISMATCH"))
    return 0 if ok else 1


def tcp_expect_silence(a):
    s = bound_socket(a.host, socket.SOCK_STREAM, a.src)
    s.settimeout(a.wait)
    try:
        s.connect((a.host, a.port))
        print("connected: NOT silent")
        return 1
    except socket.timeout:
        print("timeout: silent")
        return 0
    except ConnectionRefusedError:
        print("refused (RST): NOT silent")
        return 1
    except OSError as e:
        print("error %s: NOT silent" % e)
        return 1


def udp_echo_check(a):
    s = bound_socket(a.host, socket.SOCK_DGRAM, a.src)
    s.settimeout(a.timeout)
    s.connect((a.host, a.port))
    ok = 0
    for i in range(a.count):
        d = os.urandom(a.size)
        s.send(d)
        try:
            r = s.recv(65536)
        except (socket.timeout, OSError) as e:
            print("datagram %d: %s" % (i, e))
            continue
        if r == d:
            ok += 1
    print("udp %d/%d echoed byte-exact" % (ok, a.count))
    return 0 if ok == a.count else 1


def udp_expect_silence(a):
    s = bound_socket(a.host, socket.SOCK_DGRAM, a.src)
    s.settimeout(a.wait)
    s.connect((a.host, a.port))
    s.send(b"should be dropped")
    try:
        s.recv(65536)
        print("answer received: NOT silent")
        return 1
    except socket.timeout:
        pass
    except ConnectionRefusedError:
        print("ICMP port unreachable: NOT silent")
        return 1
    # A late ICMP error is reported on the next call too.
    try:
        s.send(b"x")
    except ConnectionRefusedError:
        print("ICMP port unreachable: NOT silent")
        return 1
    print("silent")
    return 0


def udp_stream(a):
    s = bound_socket(a.host, socket.SOCK_DGRAM, a.src)
    s.connect((a.host, a.port))
    sent = {}
    n = 0
    deadline = time.time() + a.max_time
    while time.time() < deadline:
        n += 1
        sent[n] = time.time()
        try:
            s.send(b"%d" % n)
        except OSError:
            pass
        # Read every answer until the next datagram is due.
        due = sent[n] + a.interval
        while True:
            left = due - time.time()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except (socket.timeout, OSError):
                break
            t = time.time()
            try:
                k = int(d)
            except ValueError:
                continue
            if k in sent:
                log_line(a.log, "%.6f %.6f" % (t, sent.pop(k)))
    return 0


def tcp_stream(a):
    s = bound_socket(a.host, socket.SOCK_STREAM, a.src)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.settimeout(a.timeout)
    s.connect((a.host, a.port))
    deadline = time.time() + a.max_time
    try:
        while time.time() < deadline:
            t0 = time.time()
            s.sendall(b"x" * 1000)
            got = 0
            while got < 1000:
                d = s.recv(1000 - got)
                if not d:
                    raise OSError("eof")
                got += len(d)
            log_line(a.log, "%.6f %.6f" % (time.time(), t0))
            time.sleep(a.interval)
    except OSError:
        pass
    return 0


def _fate(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, ConnectionResetError):
        return "reset"
    return "error:%s" % getattr(e, "strerror", e)


def tcp_probe(a):
    """One word: pass, timeout, refused (RST to the SYN), reset, error."""
    s = bound_socket(a.host, socket.SOCK_STREAM, a.src)
    s.settimeout(a.timeout)
    data = os.urandom(a.bytes)
    try:
        s.connect((a.host, a.port))
        s.sendall(data)
        got = bytearray()
        while len(got) < len(data):
            d = s.recv(65536)
            if not d:
                raise ConnectionResetError("eof")
            got.extend(d)
        print("pass" if bytes(got) == data else "mismatch")
    except OSError as e:
        print(_fate(e))
    finally:
        s.close()
    return 0


def udp_probe(a):
    """One word: pass, timeout, refused (ICMP unreachable), error.  A
    datagram goes every timeout/count seconds; the echo of any of them
    within the timeout is a pass (a late echo of the first is not taken
    for a lost second)."""
    s = bound_socket(a.host, socket.SOCK_DGRAM, a.src)
    s.connect((a.host, a.port))
    fate = "timeout"
    sent = set()
    t0 = time.time()
    for i in range(a.count):
        d = os.urandom(a.size)
        sent.add(d)
        due = t0 + (i + 1) * a.timeout / a.count
        try:
            s.send(d)
            while True:
                left = due - time.time()
                if left <= 0:
                    break
                s.settimeout(left)
                if s.recv(65536) in sent:
                    fate = "pass"
                    break
        except OSError as e:
            fate = _fate(e)
        if fate != "timeout":
            break
    print(fate)
    return 0


def socks_raw(a):
    s = socket.create_connection((a.proxy, a.pport), timeout=a.timeout)
    if a.user:
        s.sendall(b"\x05\x01\x02")
        m = s.recv(2)
        u, p = a.user.encode(), a.password.encode()
        s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
        if s.recv(2)[1:2] != b"\x00":
            print("auth-failed")
            return 1
    else:
        s.sendall(b"\x05\x01\x00")
        m = s.recv(2)
        if m != b"\x05\x00":
            print("method %s" % m.hex())
            return 1
    s.sendall(bytes.fromhex(a.hex))
    r = s.recv(512)
    if len(r) < 2:
        print("closed")
        return 1
    print("%02x" % r[1])
    if a.hold:
        time.sleep(a.hold)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("tcp-echo", "udp-echo", "tcp-sink", "tcp-closer", "record"):
        q = sub.add_parser(name)
        q.add_argument("port", type=int)
        q.add_argument("--log")
    for name in ("tcp-echo-check", "tcp-expect-silence", "udp-echo-check",
                 "udp-expect-silence", "udp-stream", "tcp-stream",
                 "tcp-probe", "udp-probe"):
        q = sub.add_parser(name)
        q.add_argument("host")
        q.add_argument("port", type=int)
        q.add_argument("--src")
        q.add_argument("--bytes", type=int, default=100000)
        q.add_argument("--count", type=int, default=10)
        q.add_argument("--size", type=int, default=100)
        q.add_argument("--timeout", type=float, default=5.0)
        q.add_argument("--wait", type=float, default=1.5)
        q.add_argument("--interval", type=float, default=0.05)
        q.add_argument("--max-time", type=float, default=30.0)
        q.add_argument("--log")
    q = sub.add_parser("socks-raw")
    q.add_argument("proxy")
    q.add_argument("pport", type=int)
    q.add_argument("hex")
    q.add_argument("--user")
    q.add_argument("--password")
    q.add_argument("--timeout", type=float, default=5.0)
    q.add_argument("--hold", type=float, default=0)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if a.cmd == "tcp-echo":
        serve_tcp_echo(a.port, a.log)
    elif a.cmd == "tcp-sink":
        serve_tcp_echo(a.port, a.log, sink=True)
    elif a.cmd == "udp-echo":
        serve_udp_echo(a.port, a.log)
    elif a.cmd == "tcp-closer":
        serve_tcp_closer(a.port, a.log)
    elif a.cmd == "record":
        serve_record(a.port, a.log)
    else:
        fn = {"tcp-echo-check": tcp_echo_check,
              "tcp-expect-silence": tcp_expect_silence,
              "udp-echo-check": udp_echo_check,
              "udp-expect-silence": udp_expect_silence,
              "udp-stream": udp_stream,
              "tcp-stream": tcp_stream,
              "tcp-probe": tcp_probe,
              "udp-probe": udp_probe,
              "socks-raw": socks_raw}[a.cmd]
        sys.exit(fn(a))


if __name__ == "__main__":
    main()
