"""What the lab's scripts share: their arguments (one JSON line on stdin), and when to stop.

A script stops on SIGTERM or when its stdin ends: the parent closed it, or died, so a script never
outlives the test or demo that started it. Standard library only (starts in milliseconds).
"""
import json
import signal
import sys
import threading

stopping = threading.Event()


def arguments():
    """The JSON object on stdin's first line; after it, stdin's end means stop."""
    a = json.loads(sys.stdin.readline())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())

    def watch():
        while sys.stdin.readline():
            pass
        stopping.set()

    threading.Thread(target=watch, daemon=True).start()
    return a


def ready():
    """Tells the parent the script is listening or sending (call it once the socket is bound)."""
    print("ready", flush=True)


def answer(value):
    print(json.dumps(value), flush=True)
