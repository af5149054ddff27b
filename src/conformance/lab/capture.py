"""Watches the frames that arrive at one interface (never those it sends; with "outgoing", only those it sends).

Arguments: {"iface": a name, or null for every interface of the namespace, also ones made later;
"match": [[kind, hex], ...] with kind "contains", "startswith" or "equals"; "keep": also return every
frame; "timeoutS": stop by itself after this long (null: when stopped); "until": stop by itself once a frame
of this match (its index) arrived, e.g. a control frame sent after the others; "outgoing": count what the
host sends out of the interface instead, e.g. what a tap carries into the VM behind it}. Prints "ready" once its
socket is bound (from then on nothing that arrives is missed), then {"counts": [frames per match],
"frames": [hex] (with keep)} after reading what was still queued.
"""
import select
import socket
import time

from labio import answer, arguments, ready, stopping

a = arguments()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
if a.get("iface"):
    s.bind((a["iface"], 0))
match = [(kind, bytes.fromhex(h)) for kind, h in a.get("match", [])]
keep = a.get("keep", False)
outgoing = a.get("outgoing", False)
counts = [0] * len(match)
frames = []
TESTS = {"contains": lambda raw, b: b in raw, "startswith": lambda raw, b: raw.startswith(b), "equals": lambda raw, b: raw == b}


def take(raw, addr):
    if (addr[2] == socket.PACKET_OUTGOING) != outgoing:
        return
    for i, (kind, b) in enumerate(match):
        if TESTS[kind](raw, b):
            counts[i] += 1
    if keep:
        frames.append(raw.hex())


ready()
deadline = time.monotonic() + a["timeoutS"] if a.get("timeoutS") else None
until = a.get("until")
while not stopping.is_set() and (deadline is None or time.monotonic() < deadline) and (until is None or counts[until] == 0):
    r, _, _ = select.select([s], [], [], 0.05)
    if r:
        take(*s.recvfrom(65535))
while True:
    try:
        take(*s.recvfrom(65535, socket.MSG_DONTWAIT))
    except BlockingIOError:
        break
answer({"counts": counts, **({"frames": frames} if keep else {})})
