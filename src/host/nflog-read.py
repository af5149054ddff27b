#!/usr/bin/python3
# Reads one NFLOG group (nftables `log group N`) over nfnetlink and writes it to stdout as a pcap
# stream with linktype DLT_NFLOG (239): each record is the netlink message's body after the nlmsghdr
# (nfgenmsg + NFULA_* TLVs), which is what `tcpdump -i nflog:N -w -` writes, so src/host/nflog.ts
# parses either. Why not tcpdump: Debian's tcpdump always drops to user tcpdump (with -Z root it still
# calls setgroups), which fails under vifguard-agent.service (uid 0, noroot securebits, CAP_NET_ADMIN
# only). This needs CAP_NET_ADMIN alone (binding a log group) and the standard library.
# Readiness: the pcap file header is written only once the kernel acknowledged the bind and the copy
# mode; a caller that waits for it cannot miss a frame logged afterwards.
# Usage: nflog-read.py GROUP [SNAPLEN]. Exits 1 with a line on stderr when the bind fails.
import errno
import os
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
# NFULA_CFG_* attributes and NFULNL_CFG_CMD_* commands (linux/netfilter/nfnetlink_log.h).
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
LINKTYPE_NFLOG = 239


def attribute(kind, value):
    """One netlink attribute: length and type in host order, padded to 4 bytes."""
    head = struct.pack("=HH", 4 + len(value), kind)
    return head + value + b"\0" * ((4 - len(value) % 4) % 4)


def config(sock, seq, group, attributes):
    """Sends one NFULNL_MSG_CONFIG for `group` and waits for its acknowledgement (raises on error)."""
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(group)) + b"".join(attributes)
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    sock.send(struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body)
    while True:
        data = sock.recv(65536)
        at = 0
        while at + 16 <= len(data):
            length, kind, _flags, got_seq, _pid = struct.unpack_from("=IHHII", data, at)
            if length < 16:
                break
            if kind == NLMSG_ERROR and got_seq == seq:
                (code,) = struct.unpack_from("=i", data, at + 16)
                if code != 0:
                    raise OSError(-code, os.strerror(-code))
                return
            at += (length + 3) & ~3


def main():
    group = int(sys.argv[1])
    snaplen = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    out = sys.stdout.buffer
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((0, 0))
        config(sock, 1, group, [attribute(NFULA_CFG_CMD, struct.pack("=B", NFULNL_CFG_CMD_BIND))])
        # Copy the packet, cut to snaplen (struct nfulnl_msg_config_mode: __be32 copy_range, u8 mode, pad).
        config(sock, 2, group, [attribute(NFULA_CFG_MODE, struct.pack("!IBx", snaplen, NFULNL_COPY_PACKET))])
        # Send each frame as it is logged, not batched up to 100 frames or one second (the defaults).
        config(sock, 3, group, [attribute(NFULA_CFG_QTHRESH, struct.pack("!I", 1)), attribute(NFULA_CFG_TIMEOUT, struct.pack("!I", 1))])
    except OSError as e:
        hint = " (needs CAP_NET_ADMIN; EBUSY: another process has bound this group)" if e.errno in (errno.EPERM, errno.EBUSY) else ""
        sys.stderr.write(f"nflog-read: cannot bind NFLOG group {group}: {e.strerror}{hint}\n")
        return 1
    # Ready: the pcap header (native byte order, as tcpdump writes it).
    out.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_NFLOG))
    out.flush()
    packet = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET
    while True:
        try:
            data = sock.recv(1 << 17)
        except OSError as e:
            if e.errno == errno.ENOBUFS:  # the socket overflowed: frames were lost, keep reading
                continue
            raise
        now = time.time()
        records = []
        at = 0
        while at + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, at)
            if length < 16 or at + length > len(data):
                break
            if kind == packet:
                body = data[at + 16 : at + length]
                records.append(struct.pack("=IIII", int(now), int(now % 1 * 1_000_000), len(body), len(body)) + body)
            at += (length + 3) & ~3
        if records:
            try:
                out.write(b"".join(records))
                out.flush()
            except BrokenPipeError:
                return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
