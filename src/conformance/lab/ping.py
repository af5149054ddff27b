"""ICMP echo requests to one address on a schedule, every reply's round trip recorded.

Arguments: {"dst", "intervalMs"}. Prints "ready" once its socket is open; when stopped, waits 1 s
for late replies, then prints {"sent": [epoch ms of each request], "rtt": {seq: ms}}. Its own
pinger, not ping(8): the send time of every request, answered or not, places each loss in time.
"""
import os
import select
import socket
import struct
import time

from labio import answer, arguments, ready, stopping

a = arguments()
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xFFFF
sent, rtt = [], {}


def csum(b):
    if len(b) % 2:
        b += b"\0"
    n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    n = (n >> 16) + (n & 0xFFFF)
    n += n >> 16
    return ~n & 0xFFFF


def receive(wait):
    r, _, _ = select.select([s], [], [], max(0, wait))
    while r:
        data = s.recv(2048)
        icmp = data[(data[0] & 15) * 4:]
        if len(icmp) >= 8 and icmp[0] == 0:
            i, q = struct.unpack("!HH", icmp[4:8])
            if i == ident and q < len(sent) and q not in rtt:
                rtt[q] = time.time() * 1000 - sent[q]
        r, _, _ = select.select([s], [], [], 0)


ready()
t0 = time.time()
while not stopping.is_set():
    q = len(sent)
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, q & 0xFFFF) + b"vifguard-ping...."
    pkt = hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
    sent.append(time.time() * 1000)
    try:
        s.sendto(pkt, (a["dst"], 0))
    except OSError:
        pass
    while not stopping.is_set() and time.time() < t0 + len(sent) * a["intervalMs"] / 1000:
        receive(t0 + len(sent) * a["intervalMs"] / 1000 - time.time())
end = time.time() + 1
while time.time() < end:
    receive(end - time.time())
answer({"sent": sent, "rtt": rtt})
