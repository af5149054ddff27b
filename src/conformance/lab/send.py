"""Sends raw frames out of one interface.

Arguments: {"iface", "frames": [hex], "count": how many in all (cycling through frames; default each
frame once; 0: until stopped), "gapMs": the schedule's interval (0: as fast as it can)}. Prints
"ready" once its socket is bound, then {"sent": n, "failed": k} (k: sends the kernel refused).
"""
import socket
import time

from labio import answer, arguments, ready, stopping

a = arguments()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((a["iface"], 0))
frames = [bytes.fromhex(h) for h in a["frames"]]
count = a.get("count", len(frames))
gap = a.get("gapMs", 0) / 1000
ready()
sent = failed = 0
t0 = time.monotonic()
while frames and not stopping.is_set() and (count == 0 or sent + failed < count):
    try:
        s.send(frames[(sent + failed) % len(frames)])
        sent += 1
    except OSError:
        failed += 1
    if gap:
        # On a schedule, not gap after gap: a slow send does not stretch the stream.
        d = t0 + (sent + failed) * gap - time.monotonic()
        if d > 0:
            stopping.wait(d)
answer({"sent": sent, "failed": failed})
