#!/usr/bin/python3
"""Association end latencies (run in the client namespace).

  assoc_latency.py fin PROXY PORT SRC DST:PORT COUNT FIRST_SPORT
      DST runs a server that echoes one read then closes (FIN).  For each
      of COUNT associations: set it up, connect SRC:sport -> BND, send,
      read the echo and the target's FIN, then time until the server
      closes N1.  Prints JSON with the latency median/p99/max in ms.

  assoc_latency.py teardown PROXY PORT SRC DST:PORT COUNT FIRST_SPORT EVENTS
      For each association: set it up, send one UDP datagram through it
      (a conntrack entry appears), close N1 and note the time.  EVENTS is
      the output of `conntrack -E -e DESTROY -o timestamp` in the gateway;
      the latency is from closing N1 to the entry's DESTROY event.
"""
import json
import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netns-tests", "tools"))
from s5raw import recv_exact, transparent_request  # noqa: E402


def open_assoc(proxy, port, proto, src, sport, dst, dport):
    n1 = socket.create_connection((proxy, port), timeout=5)
    n1.sendall(b"\x05\x01\x00")
    recv_exact(n1, 2)
    n1.sendall(transparent_request(proto, src, sport, dst, dport))
    head = recv_exact(n1, 4)
    if head[1] != 0:
        raise OSError("refused %d" % head[1])
    alen = 4 if head[3] == 1 else 16
    rest = recv_exact(n1, alen + 2)
    fam = socket.AF_INET if alen == 4 else socket.AF_INET6
    bnd = socket.inet_ntop(fam, rest[:alen])
    return n1, bnd, struct.unpack("!H", rest[alen:])[0]


def pct(v, p):
    v = sorted(v)
    return round(v[min(len(v) - 1, int((len(v) - 1) * p))], 3) if v else None


def main():
    mode, proxy, port, src, dst = sys.argv[1:6]
    port = int(port)
    dhost, dport = dst.rsplit(":", 1)
    count, first = int(sys.argv[6]), int(sys.argv[7])
    if count > 5000:
        sys.exit("bounded: count <= 5000")
    lat = []
    closes = {}
    for i in range(count):
        sport = first + i
        if mode == "fin":
            n1, bnd, bport = open_assoc(proxy, port, 6, src, sport, dhost, int(dport))
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            c.bind((src, sport))
            c.settimeout(5)
            c.connect((bnd, bport))
            c.sendall(b"x")
            while c.recv(100):
                pass
            t_fin = time.time()
            n1.settimeout(5)
            try:
                while n1.recv(100):
                    pass
            except OSError:
                pass
            lat.append((time.time() - t_fin) * 1000)
            c.close()
            n1.close()
        else:
            n1, bnd, bport = open_assoc(proxy, port, 17, src, sport, dhost, int(dport))
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((src, sport))
            u.settimeout(2)
            u.sendto(b"x", (bnd, bport))
            try:
                u.recv(100)
            except OSError:
                pass
            closes[sport] = time.time()
            n1.close()
            u.close()
            time.sleep(0.005)
    if mode == "teardown":
        time.sleep(1)
        pat = re.compile(r"^\[(\d+\.\d+)\].*?\budp\b.*?sport=(\d+) ")
        for line in open(sys.argv[8]):
            m = pat.match(line.strip())
            if m and int(m.group(2)) in closes:
                sp = int(m.group(2))
                lat.append((float(m.group(1)) - closes.pop(sp)) * 1000)
    print(json.dumps({"mode": mode, "count": count, "measured": len(lat),
                      "latency_ms": {"median": pct(lat, 0.5), "p99": pct(lat, 0.99),
                                     "max": pct(lat, 1.0)}}))


if __name__ == "__main__":
    main()
