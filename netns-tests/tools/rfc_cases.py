#!/usr/bin/python3
"""RFC 1928 UDP ASSOCIATE and BIND cases, run against any SOCKS5 server.

  rfc_cases.py PROXY PORT TARGET UDP_ECHO_PORT CONTROL_PORT

Prints one JSON object: case name -> observed result.  TARGET runs a UDP
echo server on UDP_ECHO_PORT and, on CONTROL_PORT, a TCP server that reads
"IP PORT" and connects there (for BIND).  The caller runs the BIND peer.
"""
import json
import os
import socket
import struct
import sys
import time

proxy, port, target, uport, cport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
res = {}


def n1():
    s = socket.create_connection((proxy, port), timeout=10)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    return s


def reply(s):
    h = s.recv(4)
    if len(h) < 4:
        return None, None
    alen = 4 if h[3] == 1 else 16
    rest = s.recv(alen + 2)
    fam = socket.AF_INET if alen == 4 else socket.AF_INET6
    return h[1], (socket.inet_ntop(fam, rest[:alen]), struct.unpack("!H", rest[alen:])[0])


def hdr(ip, p, frag=0):
    return b"\x00\x00" + bytes([frag]) + b"\x01" + socket.inet_aton(ip) + struct.pack("!H", p)


# UDP ASSOCIATE
c = n1()
c.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
rep, bnd = reply(c)
res["udp_reply"] = rep
res["udp_bnd_unspecified"] = bnd is not None and bnd[0] in ("0.0.0.0", "::")
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((proxy.rsplit(".", 1)[0] + ".2", 0))
o = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
o.bind((proxy.rsplit(".", 1)[0] + ".2", 0))
if bnd and bnd[0] in ("0.0.0.0", "::"):
    bnd = (proxy, bnd[1])
answered = set()   # payloads that came back, on either socket


def ask(sock, payload, frag=0, wait=None):
    """Sends one datagram with its own payload.  Without wait: True once
    its answer comes (up to 10 s, however slow the machine).  With wait:
    True if its answer did not come within that many seconds (dropped).
    Answers are told apart by payload: a late one counts for its own
    datagram, never for the next."""
    sock.sendto(hdr(target, uport, frag) + payload, bnd)
    end = time.time() + (wait if wait else 10)
    while payload not in answered:
        left = end - time.time()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            r = sock.recv(4000)
        except (socket.timeout, OSError):
            break
        if r[:3] == b"\x00\x00\x00" and len(r) >= 64:
            answered.add(r[-64:])
    return (payload in answered) != bool(wait)


d_echo, d_frag, d_other, d_alive = (os.urandom(64) for _ in range(4))
res["udp_echo"] = ask(u, d_echo)
res["udp_frag_dropped"] = ask(u, d_frag, frag=1, wait=1.5)
res["udp_other_port_dropped"] = ask(o, d_other, wait=1.5)
res["udp_alive_after"] = ask(u, d_alive)
# A late answer to a datagram that should have been dropped.
res["udp_frag_dropped"] = res["udp_frag_dropped"] and d_frag not in answered
res["udp_other_port_dropped"] = res["udp_other_port_dropped"] and d_other not in answered
c.close()

# BIND: expected peer (the target) connects back
c = n1()
c.sendall(b"\x05\x02\x00\x01" + socket.inet_aton(target) + b"\x00\x00")
rep, bnd = reply(c)
res["bind_first_reply"] = rep
if rep == 0:
    ctl = socket.create_connection((target, cport), timeout=10)
    ip = bnd[0] if bnd[0] not in ("0.0.0.0", "::") else proxy
    ctl.sendall(("%s %d\n" % (ip, bnd[1])).encode())
    c.settimeout(10)
    rep2, peer = reply(c)
    res["bind_second_reply"] = rep2
    res["bind_second_names_peer"] = peer is not None and peer[0] == target
    try:
        res["bind_data"] = c.recv(100) == b"from-target"
    except OSError:
        res["bind_data"] = False
c.close()

# BIND: another host connects first
c = n1()
c.sendall(b"\x05\x02\x00\x01" + socket.inet_aton(target) + b"\x00\x00")
rep, bnd = reply(c)
if rep == 0:
    ip = bnd[0] if bnd[0] not in ("0.0.0.0", "::") else proxy
    try:
        x = socket.create_connection((ip, bnd[1]), timeout=10)
        c.settimeout(1.5)
        try:
            rep2, peer = reply(c)
            res["bind_other_host_refused"] = rep2 is None or rep2 != 0
        except socket.timeout:
            res["bind_other_host_refused"] = True
        x.close()
    except OSError:
        res["bind_other_host_refused"] = True
c.close()
print(json.dumps(res, sort_keys=True))
