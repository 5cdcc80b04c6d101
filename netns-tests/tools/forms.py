#!/usr/bin/python3
"""A raw SOCKS5 client for destination-form tests (test-policy-forms.sh).

A destination SPEC is "ip:ADDR" (ATYP X'01'/X'04') or "name:TEXT" (ATYP
X'03', TEXT as written: a name, or an address literal sent as a name),
optionally followed by "@PORT" (else the command's PORT).  One output
line per SPEC, in order:

  connect PROXY PORT SPEC...      "SPEC REP [echo-ok|echo-bad]" (a CONNECT
                                  each; on X'00' bytes are sent and must
                                  come back)
  bind PROXY SPEC...              "SPEC REP" (first reply of a BIND each;
                                  DST.PORT 0 unless given)
  bind-wait PROXY SPEC            one BIND: "bound REP ADDR PORT", then
                                  "second REP ADDR" (or "second closed")
                                  when a peer connects, then "data TEXT"
                                  (4 bytes the peer sent)
  udp PROXY CLIENT-IP PORT [--answers K] SPEC...
                                  one UDP ASSOCIATE; a datagram to each
                                  SPEC:PORT; "SPEC answered|silent": the
                                  echoes that came back until the last K
                                  specs (the allowed controls) were all
                                  answered, up to 15 s; without K, within
                                  2 s (a test of silence alone)
  tp PROXY PTCL SRC-IP SPORT PORT SPEC...
                                  a TRANSPARENT request each (source port
                                  SPORT, SPORT+1, ...); "SPEC REP
                                  [echo-ok|no-echo]" (on X'00' a datagram
                                  (UDP) or bytes (TCP) go through BND;
                                  the echo may take 10 s)
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s5raw  # noqa: E402


def enc(spec, port):
    if "@" in spec:
        spec, _, p = spec.rpartition("@")
        port = int(p)
    kind, _, v = spec.partition(":")
    if kind == "ip":
        return s5raw.addr(v, port)
    n = v.encode()
    return b"\x03" + bytes([len(n)]) + n + struct.pack("!H", port)


def reply(n1):
    h = s5raw.recv_exact(n1, 4)
    alen = {1: 4, 4: 16}.get(h[3])
    if alen is None:
        alen = s5raw.recv_exact(n1, 1)[0]
    a = s5raw.recv_exact(n1, alen)
    p = struct.unpack("!H", s5raw.recv_exact(n1, 2))[0]
    if h[3] in (1, 4):
        a = socket.inet_ntop(socket.AF_INET if h[3] == 1 else socket.AF_INET6, a)
    return h[1], a, p


def request(proxy, body):
    n1 = socket.create_connection((proxy, 1080), timeout=15)
    n1.sendall(b"\x05\x01\x00")
    assert s5raw.recv_exact(n1, 2) == b"\x05\x00"
    n1.sendall(body)
    try:
        rep, a, p = reply(n1)
    except OSError:
        return n1, None, None, None
    return n1, rep, a, p


def hexrep(rep):
    return "closed" if rep is None else "%02x" % rep


def connect(proxy, port, specs):
    for spec in specs:
        n1, rep, _, _ = request(proxy, b"\x05\x01\x00" + enc(spec, port))
        what = ""
        if rep == 0:
            d = os.urandom(100)
            n1.sendall(d)
            try:
                what = " echo-ok" if s5raw.recv_exact(n1, len(d)) == d else " echo-bad"
            except OSError:
                what = " echo-bad"
        n1.close()
        print("%s %s%s" % (spec, hexrep(rep), what), flush=True)


def bind(proxy, specs):
    for spec in specs:
        n1, rep, _, _ = request(proxy, b"\x05\x02\x00" + enc(spec, 0))
        n1.close()
        print("%s %s" % (spec, hexrep(rep)), flush=True)


def bind_wait(proxy, spec):
    n1, rep, a, p = request(proxy, b"\x05\x02\x00" + enc(spec, 0))
    print("bound %s %s %s" % (hexrep(rep), a, p), flush=True)
    if rep != 0:
        return
    n1.settimeout(30)
    try:
        rep, a, _ = reply(n1)
    except OSError:
        print("second closed", flush=True)
        return
    print("second %s %s" % (hexrep(rep), a), flush=True)
    try:
        print("data %s" % s5raw.recv_exact(n1, 4).decode(), flush=True)
    except OSError:
        print("data none", flush=True)


def udp(proxy, client_ip, port, specs, answers=None):
    n1, rep, a, p = request(proxy, b"\x05\x03\x00" + s5raw.addr(client_ip, 0))
    if rep != 0:
        for spec in specs:
            print("%s no-association-%s" % (spec, hexrep(rep)))
        return
    u = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((client_ip, 0))
    tokens = {}
    for i, spec in enumerate(specs):
        tok = b"form-%d-" % i + os.urandom(8).hex().encode()
        tokens[tok] = spec
        u.sendto(b"\x00\x00\x00" + enc(spec, port) + tok, (a, p))
    got = set()
    u.settimeout(0.2)
    # With K controls: until they are all answered (a slow echo is not a
    # missing one), then 0.2 s for any other; silence is counted by the
    # daemon too (the session's "N denied").
    controls = set(specs[len(specs) - answers:]) if answers else set()
    end = time.monotonic() + (15 if answers else 2)
    while time.monotonic() < end and len(got) < len(specs):
        if answers and controls <= got:
            end = min(end, time.monotonic() + 0.2)
            controls = set()
        try:
            r = u.recv(2000)
        except socket.timeout:
            continue
        for tok in tokens:
            if r.endswith(tok):
                got.add(tokens[tok])
    for spec in specs:
        print("%s %s" % (spec, "answered" if spec in got else "silent"), flush=True)
    n1.close()


def tp(proxy, ptcl, src_ip, sport, port, specs):
    fam = socket.AF_INET6 if ":" in src_ip else socket.AF_INET
    for i, spec in enumerate(specs):
        sp = sport + i
        body = (b"\x05\x04\x00" + enc(spec, port) + bytes([ptcl]) +
                s5raw.addr(src_ip, sp))
        if ptcl == 17:
            s = socket.socket(fam, socket.SOCK_DGRAM)
        else:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src_ip, sp))
        s.settimeout(10)
        n1, rep, a, p = request(proxy, body)
        what = ""
        if rep == 0:
            d = os.urandom(100)
            try:
                if ptcl == 17:
                    s.sendto(d, (a, p))
                    what = " echo-ok" if s.recv(2000) == d else " echo-bad"
                else:
                    s.connect((a, p))
                    s.sendall(d)
                    what = " echo-ok" if s5raw.recv_exact(s, len(d)) == d else " echo-bad"
            except OSError:
                what = " no-echo"
        s.close()
        n1.close()
        print("%s %s%s" % (spec, hexrep(rep), what), flush=True)


def main():
    cmd, proxy, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "connect":
        connect(proxy, int(rest[0]), rest[1:])
    elif cmd == "bind":
        bind(proxy, rest)
    elif cmd == "bind-wait":
        bind_wait(proxy, rest[0])
    elif cmd == "udp":
        answers = None
        if rest[2] == "--answers":
            answers = int(rest[3])
            del rest[2:4]
        udp(proxy, rest[0], int(rest[1]), rest[2:], answers)
    elif cmd == "tp":
        tp(proxy, int(rest[0]), rest[1], int(rest[2]), int(rest[3]), rest[4:])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
