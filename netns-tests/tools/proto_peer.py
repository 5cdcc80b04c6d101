#!/usr/bin/python3
"""Peers for the per-protocol TRANSPARENT tests (test-transparent-protocols.sh).

PROTO is tcp, udp, udplite, sctp or dccp.  Every server echoes what it
receives and logs one line per received unit: "PROTO PEER-ADDR PEER-PORT
BYTES" (the test sums them: the bytes that reached the target).

  serve PROTO PORT --log FILE [--ready FILE]
        (creates the --ready file once it can receive)
  echo-check PROTO HOST PORT --src ADDR:PORT [--bytes N] [--hold S]
        [--release FILE] [--timeout S]
        send N bytes (datagrams / DATA chunks of at most 1000), expect each
        echoed byte-exact (within --timeout, default 15 s, each); print
        the result at once; with --hold, keep the flow open S seconds after
        (or until FILE exists, at most S seconds: so that its conntrack
        entry can be inspected), then end it: a TCP (or other stream) flow
        is shut down and its peer's close awaited, so that no packet of it
        is still on its way when the caller ends the association
  raw-expect-silence KIND HOST PORT --src ADDR:PORT [--wait S]
        send one crafted packet that the gateway's conntrack judges invalid
        (KIND tcp-synfin: SYN and FIN together; tcp-null: no flag) or a
        plain SYN (KIND tcp-syn, for an untracked flow), then listen: no
        TCP segment and no ICMP error may come back from HOST
  udplite-expect-silence HOST PORT --src ADDR:PORT [--wait S]
        send a UDP-Lite datagram from a kernel socket; neither an answer nor
        an ICMP error may come back

SCTP: when this kernel has no SCTP stack (no /proc/net/sctp), both ends
speak SCTP themselves over raw IP sockets (a minimal association: INIT,
INIT ACK, COOKIE ECHO, COOKIE ACK, then DATA/SACK, with correct CRC32c), so
the gateway's conntrack and NAT see real SCTP; with a kernel SCTP stack
they use ordinary SCTP sockets (a raw peer would be answered with ABORTs by
the kernel).  DCCP uses kernel sockets (kernels that still have DCCP
conntrack have DCCP sockets too).
"""
import argparse
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

IPPROTO_UDPLITE = 136
IPPROTO_SCTP = 132
IPPROTO_DCCP = 33
SOCK_DCCP = 6
SOL_DCCP = 269
DCCP_SOCKOPT_SERVICE = 2
CHUNK = 1000


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def log_line(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


# ---------------------------------------------------------------- checksums

def inet_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def pseudo(src, dst, proto, length):
    if len(src) == 16:
        return src + dst + struct.pack("!I3xB", length, proto)
    return src + dst + struct.pack("!xBH", proto, length)


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


# ----------------------------------------------------------- raw SCTP (RFC 9260)

INIT, INIT_ACK, COOKIE_ECHO, COOKIE_ACK, DATA, SACK, ABORT = 1, 2, 10, 11, 0, 3, 6


def sctp_chunk(ctype, flags, value=b""):
    c = struct.pack("!BBH", ctype, flags, 4 + len(value)) + value
    return c + b"\0" * (-len(c) % 4)


def sctp_packet(sport, dport, vtag, chunks):
    p = struct.pack("!HHII", sport, dport, vtag, 0) + b"".join(chunks)
    # The CRC32c goes on the wire least significant byte first.
    return p[:8] + struct.pack("<I", crc32c(p)) + p[12:]


def sctp_parse(p):
    """(sport, dport, vtag, [(type, flags, value)]) or None if the CRC is
    wrong or the packet malformed."""
    if len(p) < 12:
        return None
    sport, dport, vtag, ck = struct.unpack("!HHI4s", p[:12])
    if struct.pack("<I", crc32c(p[:8] + b"\0" * 4 + p[12:])) != ck:
        return None
    chunks, off = [], 12
    while off + 4 <= len(p):
        t, fl, ln = struct.unpack("!BBH", p[off:off + 4])
        if ln < 4 or off + ln > len(p):
            return None
        chunks.append((t, fl, p[off + 4:off + ln]))
        off += ln + (-ln % 4)
    return sport, dport, vtag, chunks


def init_value(tag, tsn, extra=b""):
    return struct.pack("!IIHHI", tag, 65535, 1, 1, tsn) + extra


def data_value(tsn, ssn, payload):
    return struct.pack("!IHHI", tsn, 0, ssn, 0) + payload


def sack_value(cum):
    return struct.pack("!IIHH", cum, 65535, 0, 0)


class RawIP:
    """A raw IP socket of one protocol; recv() returns (src, payload)."""

    def __init__(self, fam, proto, bind_addr=None):
        self.fam = fam
        self.s = socket.socket(fam, socket.SOCK_RAW, proto)
        if bind_addr:
            self.s.bind((bind_addr, 0))

    def fileno(self):
        return self.s.fileno()

    def send(self, dst, payload):
        self.s.sendto(payload, (dst, 0))

    def recv(self):
        d, a = self.s.recvfrom(65536)
        if self.fam == socket.AF_INET:
            d = d[(d[0] & 15) * 4:]
        return a[0], d


def ready(path):
    if path:
        open(path, "w").close()


def raw_sctp_server(port, logf, ready_file=None):
    socks = [RawIP(socket.AF_INET, IPPROTO_SCTP),
             RawIP(socket.AF_INET6, IPPROTO_SCTP)]
    ready(ready_file)
    assocs = {}  # (addr, port) -> [my_tag, peer_tag, my_tsn, ssn]
    while True:
        r, _, _ = select.select(socks, [], [])
        for s in r:
            src, p = s.recv()
            pk = sctp_parse(p)
            if pk is None or pk[1] != port:
                continue
            sport, _, vtag, chunks = pk
            key = (src, sport)
            for t, _, v in chunks:
                st = assocs.get(key)
                if t == INIT and len(v) >= 16:
                    peer_tag, _, _, _, peer_tsn = struct.unpack("!IIHHI", v[:16])
                    if st is not None and st[1] == peer_tag:
                        my_tag = st[0]  # the same INIT again: the same answer
                    else:
                        my_tag = struct.unpack("!I", os.urandom(4))[0] | 1
                        assocs[key] = [my_tag, peer_tag, 1000, 0]
                    cookie = struct.pack("!HH", 7, 12) + b"cookie\0\0"
                    s.send(src, sctp_packet(port, sport, peer_tag, [
                        sctp_chunk(INIT_ACK, 0, init_value(my_tag, 1000, cookie))]))
                elif st is None or vtag != st[0]:
                    continue
                elif t == COOKIE_ECHO:
                    s.send(src, sctp_packet(port, sport, st[1], [sctp_chunk(COOKIE_ACK, 0)]))
                elif t == DATA and len(v) >= 12:
                    tsn = struct.unpack("!I", v[:4])[0]
                    payload = v[12:]
                    log_line(logf, "sctp %s %d %d" % (src, sport, len(payload)))
                    s.send(src, sctp_packet(port, sport, st[1], [
                        sctp_chunk(SACK, 0, sack_value(tsn)),
                        sctp_chunk(DATA, 3, data_value(st[2], st[3], payload))]))
                    st[2] += 1
                    st[3] = (st[3] + 1) & 0xFFFF
                elif t == ABORT:
                    assocs.pop(key, None)


def raw_sctp_check(a, host, port, src, sport):
    fam = family_of(host)
    s = RawIP(fam, IPPROTO_SCTP, src)
    deadline = time.time() + a.timeout

    def wait_for(want, vtag, until=None):
        """Next chunk of type want from host:port, or None at until (the
        deadline): an answer is waited for, not taken as lost at once."""
        until = min(until or deadline, deadline)
        while time.time() < until:
            r, _, _ = select.select([s], [], [], max(0, min(0.5, until - time.time())))
            if not r:
                continue
            frm, p = s.recv()
            pk = sctp_parse(p)
            if frm != host or pk is None or pk[0] != port or pk[1] != sport:
                continue
            if pk[2] != vtag:
                continue
            for t, fl, v in pk[3]:
                if t == want:
                    return v
        return None

    my_tag = struct.unpack("!I", os.urandom(4))[0] | 1
    v = None
    while v is None and time.time() < deadline:
        # INIT again every 0.5 s (the server answers a repeated INIT alike).
        s.send(host, sctp_packet(sport, port, 0, [sctp_chunk(INIT, 0, init_value(my_tag, 1))]))
        v = wait_for(INIT_ACK, my_tag, time.time() + 0.5)
    if v is None:
        print("sctp: no INIT ACK")
        return 1
    peer_tag = struct.unpack("!I", v[:4])[0]
    cookie, off = None, 16
    while off + 4 <= len(v):
        pt, pl = struct.unpack("!HH", v[off:off + 4])
        if pt == 7:
            cookie = v[off + 4:off + pl]
        off += pl + (-pl % 4)
    if cookie is None:
        print("sctp: INIT ACK without a cookie")
        return 1
    s.send(host, sctp_packet(sport, port, peer_tag, [sctp_chunk(COOKIE_ECHO, 0, cookie)]))
    if wait_for(COOKIE_ACK, my_tag) is None:
        print("sctp: no COOKIE ACK")
        return 1
    data = os.urandom(a.bytes)
    got = bytearray()
    tsn = 1
    for i in range(0, len(data), CHUNK):
        part = data[i:i + CHUNK]
        s.send(host, sctp_packet(sport, port, peer_tag, [
            sctp_chunk(DATA, 3, data_value(tsn, (tsn - 1) & 0xFFFF, part))]))
        tsn += 1
        v = wait_for(DATA, my_tag)
        if v is None:
            break
        got.extend(v[12:])
        s.send(host, sctp_packet(sport, port, peer_tag, [
            sctp_chunk(SACK, 0, sack_value(struct.unpack("!I", v[:4])[0]))]))
    ok = bytes(got) == data
    print("sctp (raw) sent %d received %d %s" % (len(data), len(got), "match" if ok else "MISMATCH"),
          flush=True)
    if ok and a.hold:
        hold(a)
    s.send(host, sctp_packet(sport, port, peer_tag, [sctp_chunk(ABORT, 0)]))
    return 0 if ok else 1


def hold(a):
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        if a.release and os.path.exists(a.release):
            return
        time.sleep(0.05)


def kernel_sctp():
    return os.path.exists("/proc/net/sctp")


# ---------------------------------------------------------------- servers

def stream_server(kind, proto, port, logf, name, setup=None, ready_file=None):
    s = socket.socket(socket.AF_INET6, kind, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if setup:
        setup(s)
    s.bind(("::", port))
    s.listen(16)
    ready(ready_file)

    def handle(c, peer):
        with c:
            while True:
                try:
                    d = c.recv(65536)
                    if not d:
                        break
                    log_line(logf, "%s %s %d %d" % (name, peer[0], peer[1], len(d)))
                    c.sendall(d)
                except OSError:
                    break

    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()


def dgram_server(proto, port, logf, name, ready_file=None):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, proto)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    ready(ready_file)
    while True:
        d, peer = s.recvfrom(65536)
        log_line(logf, "%s %s %d %d" % (name, peer[0], peer[1], len(d)))
        s.sendto(d, peer)


def dccp_setup(s):
    s.setsockopt(SOL_DCCP, DCCP_SOCKOPT_SERVICE, struct.pack("!I", 42))


def serve(a):
    if a.proto == "tcp":
        stream_server(socket.SOCK_STREAM, 0, a.port, a.log, "tcp", ready_file=a.ready)
    elif a.proto == "udp":
        dgram_server(0, a.port, a.log, "udp", a.ready)
    elif a.proto == "udplite":
        dgram_server(IPPROTO_UDPLITE, a.port, a.log, "udplite", a.ready)
    elif a.proto == "sctp":
        if kernel_sctp():
            stream_server(socket.SOCK_STREAM, IPPROTO_SCTP, a.port, a.log, "sctp",
                          ready_file=a.ready)
        raw_sctp_server(a.port, a.log, a.ready)
    elif a.proto == "dccp":
        stream_server(SOCK_DCCP, IPPROTO_DCCP, a.port, a.log, "dccp", dccp_setup,
                      a.ready)


# ---------------------------------------------------------------- clients

def echo_check(a):
    src, sport = split_hostport(a.src)
    fam = family_of(a.host)
    if a.proto == "sctp" and not kernel_sctp():
        return raw_sctp_check(a, a.host, a.port, src, sport)
    kinds = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
             "udplite": (socket.SOCK_DGRAM, IPPROTO_UDPLITE),
             "sctp": (socket.SOCK_STREAM, IPPROTO_SCTP),
             "dccp": (SOCK_DCCP, IPPROTO_DCCP)}
    kind, proto = kinds[a.proto]
    s = socket.socket(fam, kind, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.proto == "dccp":
        dccp_setup(s)
    s.bind((src, sport))
    s.settimeout(a.timeout)
    s.connect((a.host, a.port))
    data = os.urandom(a.bytes)
    got = bytearray()
    try:
        for i in range(0, len(data), CHUNK):
            part = data[i:i + CHUNK]
            s.send(part)
            want = len(got) + len(part)
            while len(got) < want:
                d = s.recv(65536)
                if not d:
                    break
                got.extend(d)
    except OSError as e:
        print("%s: %s" % (a.proto, e))
    ok = bytes(got) == data
    print("%s sent %d received %d %s" % (a.proto, len(data), len(got), "match" if ok else "MISMATCH"),
          flush=True)
    if ok and a.hold:
        hold(a)
        if kind == socket.SOCK_STREAM or a.proto == "dccp":
            try:
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            except OSError:
                pass
    s.close()
    return 0 if ok else 1


def tcp_segment(src, dst, sport, dport, flags):
    seq = struct.unpack("!I", os.urandom(4))[0]
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)
    c = inet_sum(pseudo(src, dst, socket.IPPROTO_TCP, len(h)) + h)
    return h[:16] + struct.pack("!H", c) + h[18:]


def raw_expect_silence(a):
    """One crafted TCP segment to HOST:PORT; then nothing may come back."""
    src, sport = split_hostport(a.src)
    fam = family_of(a.host)
    flags = {"tcp-synfin": 0x03, "tcp-null": 0x00, "tcp-syn": 0x02}[a.kind]
    icmp = socket.IPPROTO_ICMPV6 if fam == socket.AF_INET6 else socket.IPPROTO_ICMP
    tcp = RawIP(fam, socket.IPPROTO_TCP, src)
    err = RawIP(fam, icmp)
    sb, db = socket.inet_pton(fam, src), socket.inet_pton(fam, a.host)
    tcp.send(a.host, tcp_segment(sb, db, sport, a.port, flags))
    deadline = time.time() + a.wait
    while time.time() < deadline:
        r, _, _ = select.select([tcp, err], [], [], deadline - time.time())
        for s in r:
            frm, p = s.recv()
            if frm != a.host:
                continue
            if s is tcp and len(p) >= 14 and struct.unpack("!HH", p[:4]) == (a.port, sport):
                print("%s: TCP flags 0x%02x came back: NOT silent" % (a.kind, p[13]))
                return 1
            if s is err and p[0] == (3 if fam == socket.AF_INET else 1):
                print("%s: ICMP type %d code %d came back: NOT silent" % (a.kind, p[0], p[1]))
                return 1
    print("%s: silent" % a.kind)
    return 0


def udplite_expect_silence(a):
    src, sport = split_hostport(a.src)
    s = socket.socket(family_of(a.host), socket.SOCK_DGRAM, IPPROTO_UDPLITE)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, sport))
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
    try:
        s.send(b"x")  # a late ICMP error shows here
    except ConnectionRefusedError:
        print("ICMP port unreachable: NOT silent")
        return 1
    print("udplite: silent")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("serve")
    q.add_argument("proto", choices=["tcp", "udp", "udplite", "sctp", "dccp"])
    q.add_argument("port", type=int)
    q.add_argument("--log", required=True)
    q.add_argument("--ready")
    q = sub.add_parser("echo-check")
    q.add_argument("proto", choices=["tcp", "udp", "udplite", "sctp", "dccp"])
    q.add_argument("host")
    q.add_argument("port", type=int)
    q.add_argument("--src", required=True)
    q.add_argument("--bytes", type=int, default=20000)
    q.add_argument("--hold", type=float, default=0)
    q.add_argument("--release")
    q.add_argument("--timeout", type=float, default=15.0)
    q = sub.add_parser("raw-expect-silence")
    q.add_argument("kind", choices=["tcp-synfin", "tcp-null", "tcp-syn"])
    q.add_argument("host")
    q.add_argument("port", type=int)
    q.add_argument("--src", required=True)
    q.add_argument("--wait", type=float, default=1.5)
    q = sub.add_parser("udplite-expect-silence")
    q.add_argument("host")
    q.add_argument("port", type=int)
    q.add_argument("--src", required=True)
    q.add_argument("--wait", type=float, default=1.5)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if a.cmd == "serve":
        serve(a)
    elif a.cmd == "echo-check":
        sys.exit(echo_check(a))
    elif a.cmd == "raw-expect-silence":
        sys.exit(raw_expect_silence(a))
    else:
        sys.exit(udplite_expect_silence(a))


if __name__ == "__main__":
    main()
