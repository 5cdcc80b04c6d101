#!/usr/bin/python3
"""Drives the real kernel agent (socksgated -a FD) with hand-made kmsg
messages, as a compromised session process could send them, and prints
what came back as JSON.  Run inside the gateway namespace.

The layouts are daemon/kmsg.h's (host order, x86-64/aarch64 alignment;
kmsg.c asserts the sizes this file assumes).

usage: kagent.py DAEMON CONFIG LOG G4 C4 T4 OTHER_LOCAL_ADDRESS
"""
import array
import json
import os
import socket
import struct
import subprocess
import sys
import time

VERSION = 1
(OPEN, CLOSE, TERMINATE, LIST, STATS, WELCOME, READY, ENDED, RESULT, INFO,
 LIST_END, STATS_REPLY) = range(1, 13)
AF_INET, AF_INET6 = 2, 10
END_N1_CLOSED, END_OPERATOR = 0, 4


def hdr(t, size, version=VERSION):
    return struct.pack("=HHI", version, t, size)


def kaddr(ip, port, family=AF_INET):
    raw = socket.inet_pton(socket.AF_INET if family == AF_INET else socket.AF_INET6, ip)
    return struct.pack("=BBH16s", family, 0, port, raw)


def open_msg(tag, proto, src, bnd, dst, user=b"", family=AF_INET, version=VERSION):
    body = struct.pack("=QQB7x", tag, 1000 + tag, proto)
    body += kaddr(src[0], src[1]) + kaddr(bnd[0], bnd[1]) + kaddr(dst[0], dst[1])
    body += kaddr(src[0], 5555)
    body += user.ljust(256, b"\0")[:256]
    msg = hdr(OPEN, 8 + len(body), version) + body
    if family != AF_INET:  # forge the family of S
        msg = msg[:32] + bytes([family]) + msg[33:]
    return msg


def terminate_msg(ident, why=END_OPERATOR):
    return hdr(TERMINATE, 16) + struct.pack("=II", ident, why)


def close_msg(tag, why=END_N1_CLOSED):
    return hdr(CLOSE, 24) + struct.pack("=QII", tag, why, 0)


def query(t):
    return hdr(t, 8)


class Agent:
    def __init__(self, daemon, config, log):
        self.pending = []
        self.s, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.logf = open(log, "ab")
        fd = theirs.fileno()
        self.p = subprocess.Popen([daemon, "-f", "-c", config, "-a", str(fd)],
                                  pass_fds=(fd,), stdout=self.logf, stderr=self.logf)
        theirs.close()
        self.s.settimeout(20)

    def recv(self):
        """One message: a packet may carry several, back to back."""
        while not self.pending:
            pkt = self.s.recv(65536)
            if not pkt:
                raise EOFError("agent closed the channel")
            off = 0
            while off < len(pkt):
                v, t, size = struct.unpack_from("=HHI", pkt, off)
                assert v == VERSION and 8 <= size <= len(pkt) - off, (v, t, size)
                self.pending.append((t, pkt[off:off + size]))
                off += size
        return self.pending.pop(0)

    def send(self, m):
        self.s.send(m)

    def ready(self):
        t, m = self.recv()
        assert t == READY, t
        tag, ident, rep = struct.unpack_from("=QIB", m, 8)
        fam, _, port, ip = struct.unpack_from("=BBH16s", m, 24)
        return {"tag": tag, "id": ident, "rep": rep, "port": port}

    def result(self):
        events = []
        while True:
            t, m = self.recv()
            if t == RESULT:
                return struct.unpack_from("=i", m, 8)[0], events
            if t == ENDED:
                tag, why = struct.unpack_from("=QI", m, 8)
                events.append({"ended": tag, "why": why})
                continue
            raise AssertionError("unexpected type %d" % t)

    def list_answer(self):
        tags = []
        while True:
            t, m = self.recv()
            if t == LIST_END:
                return tags
            assert t == INFO, "unexpected type %d before LIST_END" % t
            tags.append(struct.unpack_from("=Q", m, 8)[0])

    def list(self):
        """INFO tags until LIST_END: also proves that nothing else (an
        answer to a refused message) was queued before."""
        self.send(query(LIST))
        tags = []
        while True:
            t, m = self.recv()
            if t == LIST_END:
                return sorted(tags)
            assert t == INFO, "unexpected type %d before LIST_END" % t
            tags.append(struct.unpack_from("=Q", m, 8)[0])


def assoc4():
    """Elements of the agent's assoc4 set, as the kernel has them."""
    j = json.loads(subprocess.run(["nft", "-j", "list", "set", "inet", "socksgate", "assoc4"],
                                  check=True, capture_output=True).stdout)
    return sum(len(o.get("set", {}).get("elem", [])) for o in j["nftables"])


def main():
    daemon, config, log, g4, c4, t4 = sys.argv[1:7]
    out = {}
    a = Agent(daemon, config, log)
    t, m = a.recv()
    assert t == WELCOME, t
    out["available"] = m[8]
    bnd = (g4, 0)
    dst = (t4, 7000)
    # A good request.
    a.send(open_msg(1, 17, (c4, 42001), bnd, dst, b"alice"))
    out["good"] = a.ready()
    # BND.PORT of the session's choosing (out of relay-ports).
    a.send(open_msg(2, 17, (c4, 42002), (g4, 22), dst))
    out["port22"] = a.ready()
    # Loopback destination.
    a.send(open_msg(3, 17, (c4, 42003), bnd, ("127.0.0.1", 7000)))
    out["loopback"] = a.ready()
    # A PTCL the configuration does not enable (GRE).
    a.send(open_msg(4, 47, (c4, 42004), bnd, dst))
    out["gre"] = a.ready()
    # A BND address that is not the gateway's.
    a.send(open_msg(5, 17, (c4, 42005), ("198.18.1.77", 0), dst))
    out["foreign_bnd"] = a.ready()
    # BND: loopback; a local address the daemon does not listen on (no
    # relay-address is set: only the listen addresses may be BND).
    a.send(open_msg(6, 17, (c4, 42006), ("127.0.0.1", 0), dst))
    out["loopback_bnd"] = a.ready()
    a.send(open_msg(7, 17, (c4, 42007), (sys.argv[7], 0), dst))
    out["unlisted_bnd"] = a.ready()
    # A foreign mark: no association of ours has this id.
    a.send(terminate_msg(0x00abcdef))
    out["foreign_id"] = a.result()[0]
    # Too many: max-associations 3, the good one among them.
    answers = []
    for tag in range(10, 14):
        a.send(open_msg(tag, 17, (c4, 42000 + tag), bnd, dst))
    for _ in range(10, 14):
        answers.append(a.ready())
    out["flood"] = sorted(r["rep"] for r in answers)
    out["flood_ports"] = sorted(r["port"] for r in answers if r["rep"] == 0)
    live = sorted(r["tag"] for r in answers if r["rep"] == 0)
    out["kernel_assoc4"] = assoc4()
    # Operator close of the good one: answer 0 and its end.
    a.send(terminate_msg(out["good"]["id"]))
    rc, ev = a.result()
    if not ev:  # the end may follow the answer
        t, m = a.recv()
        assert t == ENDED
        tag, why = struct.unpack_from("=QI", m, 8)
        ev = [{"ended": tag, "why": why}]
    out["terminate_own"] = {"rc": rc, "events": ev}
    # Malformed messages get no answer at all.
    good = open_msg(20, 17, (c4, 42020), bnd, dst)
    garbage = [
        b"\x01\x00\x01",                          # shorter than a header
        open_msg(21, 17, (c4, 42021), bnd, dst, version=2),
        hdr(99, 8),                               # unknown type
        good[:-1],                                # one byte short
        good + b"\0",                             # one byte long
        open_msg(22, 17, (c4, 42022), bnd, dst, family=1),  # AF_UNIX
        open_msg(23, 17, (c4, 42023), bnd, dst, b"eve\nforged log line"),
        open_msg(24, 17, (c4, 42024), bnd, dst, b"x" * 256),  # no NUL
        hdr(READY, 48) + b"\0" * 40,              # the agent's own type
        close_msg(7, why=1),                      # a reason not the session's
        open_msg(0, 17, (c4, 42025), bnd, dst),   # tag 0
        open_msg(live[0], 17, (c4, 42026), bnd, dst),  # a tag in use
    ]
    for g in garbage:
        a.send(g)
    out["garbage_sent"] = len(garbage)
    out["listed_after_garbage"] = a.list()
    out["live_tags"] = live
    # A descriptor passed along (a compromised session process could pass
    # a socket whose close blocks): refused by the kernel (SO_PASSRIGHTS)
    # or closed at once by the agent.
    r, w = os.pipe()
    try:
        a.s.sendmsg([query(LIST)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array("i", [r]))])
        out["fd_passing"] = "sent"
        a.list_answer()
    except PermissionError:
        out["fd_passing"] = "refused by the kernel"
    os.close(r)
    os.close(w)
    # A packet of 4,000 LISTs: answered from at most one conntrack dump a
    # second, not 4,000.
    t0 = time.monotonic()
    a.send(query(LIST) * 4000)
    for _ in range(4000):
        a.list_answer()
    out["list_flood_s"] = round(time.monotonic() - t0, 3)
    out["listed_after_flood"] = a.list()
    # Close one: an unknown tag is ignored, a known one ends.
    a.send(close_msg(12345))
    a.send(close_msg(live[0]))
    out["listed_after_close"] = a.list()
    a.s.close()  # the session process "dies"
    out["exit"] = a.p.wait(timeout=60)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
