"""Raw SOCKS5 helpers shared by the test and benchmark tools (Python)."""
import ipaddress
import struct


def addr(a, port):
    """ATYP . ADDR . PORT for a numeric IPv4 or IPv6 address."""
    ip = ipaddress.ip_address(a)
    return bytes([1 if ip.version == 4 else 4]) + ip.packed + struct.pack("!H", port)


def transparent_request(proto, src, sport, dst, dport):
    """A TRANSPARENT request (CMD X'04') for (proto, src:sport -> dst:dport)."""
    return b"\x05\x04\x00" + addr(dst, dport) + bytes([proto]) + addr(src, sport)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise OSError("closed")
        b += d
    return b
