// vifguard's TC-BPF dataplane: the reference evaluator (src/policy/evaluate.ts) as one BPF object.
// from_vm runs at a tap's clsact ingress (frames the VM sends), to_vm at its egress (frames to the VM).
// The driver (driver.ts) fills the maps below, keyed by the tap's ifindex; a tap the program is
// attached to without a port entry drops everything (fail closed). Every check reads the frame with
// bpf_skb_load_bytes, so frames whose bytes are not linear (AF_PACKET, GSO) need no pull, and lengths
// come from the headers (IPv4 total length, IPv6 payload length) as in the reference: padding and
// trailers are never read as header bytes. Variable-length walks (IPv6 extension headers, ND options)
// run under bpf_loop, bounded by the packet, so there is no depth limit.
// Build: clang -O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu -c vifguard.bpf.c
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

// Drop reasons: the index of each guard in GUARDS (src/policy/guards.ts).
enum {
  MAC_SPOOF = 0,
  ARP_SPOOF = 1,
  IPV4_SPOOF = 2,
  IPV6_SPOOF = 3,
  ND_SPOOF = 4,
  RA_GUARD = 5,
  REDIRECT_GUARD = 6,
  DHCP_SERVER_GUARD = 7,
  DHCPV6_SERVER_GUARD = 8,
  IPV6_FRAGMENT = 9,
  VLAN = 10,
  ETHERTYPE = 11,
  MALFORMED = 12,
  NOT_FOR_THIS_PORT = 13,
  ALLOW = 255,
};

enum { LEVEL_OFF = 0, LEVEL_MAC = 1, LEVEL_FULL = 2 };
// Port flags: the port has bindings shorter than a host address, so a miss in the exact hash also
// asks the LPM trie (ports without any skip it).
enum { FLAG_V4_PREFIXES = 1, FLAG_V6_PREFIXES = 2 };

struct port {
  __u8 level;
  __u8 flags;
  __u8 pad[2];
  char id[252]; // the port's id (UTF-8, zero-padded), for the driver (observe, counters); never read here
};
struct mac_key {
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
};
// A port's MAC: the port's level and flags ride along, so the fast path needs no vg_ports lookup.
struct mac_value {
  __u8 level;
  __u8 flags;
};
struct v4_key {
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
  __u8 ip[4];
};
struct v6_key {
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
  __u8 ip[16];
};
struct lpm4_key {
  __u32 prefixlen; // 64 (ifindex, MAC, pad) + the prefix length
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
  __u8 ip[4];
};
struct lpm6_key {
  __u32 prefixlen;
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
  __u8 ip[16];
};
struct count_key {
  __u32 ifindex;
  __u32 reason;
};
struct count {
  __u64 packets;
  __u64 bytes;
};
struct pattern {
  char name[16];
};

#define MAX_PORTS (1 << 20)

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_PORTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u32);
  __type(value, struct port);
} vg_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_PORTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct mac_key);
  __type(value, struct mac_value);
} vg_macs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_PORTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct v4_key);
  __type(value, __u8);
} vg_bind4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_PORTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct v6_key);
  __type(value, __u8);
} vg_bind6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, MAX_PORTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm4_key);
  __type(value, __u8);
} vg_lpm4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, MAX_PORTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm6_key);
  __type(value, __u8);
} vg_lpm6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_PORTS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct count_key);
  __type(value, struct count);
} vg_counts SEC(".maps");

// The fail-closed device patterns (interface names, or prefixes ending in '*'): the driver attaches
// the program to matching devices; the program itself only needs "no port entry: drop".
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct pattern);
  __type(value, __u8);
} vg_failclosed SEC(".maps");

#define ETH_HLEN 14
#define be16(p) ((__u16)(((__u16)(p)[0] << 8) | (p)[1]))

static __always_inline int same_mac(const __u8 *a, const __u8 *b) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static __always_inline int bound4(__u32 ifindex, __u8 flags, const __u8 *mac, const __u8 *ip) {
  struct v4_key k = { .ifindex = ifindex };
  __builtin_memcpy(k.mac, mac, 6);
  __builtin_memcpy(k.ip, ip, 4);
  if (bpf_map_lookup_elem(&vg_bind4, &k)) return 1;
  if (!(flags & FLAG_V4_PREFIXES)) return 0;
  struct lpm4_key l = { .prefixlen = 64 + 32, .ifindex = ifindex };
  __builtin_memcpy(l.mac, mac, 6);
  __builtin_memcpy(l.ip, ip, 4);
  return bpf_map_lookup_elem(&vg_lpm4, &l) != 0;
}

static __always_inline int bound6(__u32 ifindex, __u8 flags, const __u8 *mac, const __u8 *ip) {
  struct v6_key k = { .ifindex = ifindex };
  __builtin_memcpy(k.mac, mac, 6);
  __builtin_memcpy(k.ip, ip, 16);
  if (bpf_map_lookup_elem(&vg_bind6, &k)) return 1;
  if (!(flags & FLAG_V6_PREFIXES)) return 0;
  struct lpm6_key l = { .prefixlen = 64 + 128, .ifindex = ifindex };
  __builtin_memcpy(l.mac, mac, 6);
  __builtin_memcpy(l.ip, ip, 16);
  return bpf_map_lookup_elem(&vg_lpm6, &l) != 0;
}

// --- IPv6: the extension-header walk and the ND option walk (parseIpv6, parseIcmpv6 in frame.ts) ---

struct walk6 {
  struct __sk_buff *skb;
  __u32 next; // next header
  __u32 off;  // from the start of the IPv6 header
  __u32 end;  // 40 + payload length
  __u32 frag_offset;
  __u8 frag_seen;
  __u8 frag_more;
  __u8 truncated; // the chain ran past the payload
  __u8 nonfirst;  // a fragment header with offset ≠ 0: the walk ends, no upper layer
};

static int walk6_step(__u64 index, void *ctx) {
  struct walk6 *w = ctx;
  __u32 next = w->next;
  if (next != 0 && next != 43 && next != 44 && next != 60) return 1;
  __u8 b[4] = {};
  if (next == 44) {
    if (w->off + 8 > w->end) {
      w->truncated = 1;
      return 1;
    }
    if (bpf_skb_load_bytes(w->skb, ETH_HLEN + w->off, b, 4) < 0) {
      w->truncated = 1;
      return 1;
    }
    __u16 field = be16(b + 2);
    w->frag_seen = 1;
    w->frag_offset = field & 0xfff8;
    w->frag_more = field & 1;
    if (w->frag_offset != 0) {
      w->nonfirst = 1;
      return 1;
    }
    w->next = b[0];
    w->off += 8;
    return 0;
  }
  if (w->off + 2 > w->end || bpf_skb_load_bytes(w->skb, ETH_HLEN + w->off, b, 2) < 0) {
    w->truncated = 1;
    return 1;
  }
  __u32 length = ((__u32)b[1] + 1) * 8;
  if (w->off + length > w->end) {
    w->truncated = 1;
    return 1;
  }
  w->next = b[0];
  w->off += length;
  return 0;
}

struct walknd {
  struct __sk_buff *skb;
  __u32 o;   // the option's offset, from the start of the IPv6 header
  __u32 end; // the end of the message
  __u8 src[6];
  __u8 foreign; // an SLL/TLL option names another MAC (or is too short to name one)
  __u8 bad;     // an option of length 0 or past the message
};

static int walknd_step(__u64 index, void *ctx) {
  struct walknd *w = ctx;
  if (w->o >= w->end) return 1;
  __u8 b[8] = {};
  if (w->o + 2 > w->end || bpf_skb_load_bytes(w->skb, ETH_HLEN + w->o, b, 2) < 0) {
    w->bad = 1;
    return 1;
  }
  __u32 length = (__u32)b[1] * 8;
  if (length == 0 || w->o + length > w->end) {
    w->bad = 1;
    return 1;
  }
  if ((b[0] == 1 || b[0] == 2) && !w->foreign) {
    // data is length - 2 bytes; fewer than 6 cannot name the source MAC (length ≥ 8 here, so always 6)
    if (bpf_skb_load_bytes(w->skb, ETH_HLEN + w->o + 2, b + 2, 6) < 0 || !same_mac(b + 2, w->src)) w->foreign = 1;
  }
  w->o += length;
  return 0;
}

struct ipv6_facts {
  __u8 malformed; // the IPv6 header itself is unreadable (frame.malformed)
  __u8 has_upper; // the walk reached the upper layer
  __u8 icmp;      // an ICMPv6 header of at least 4 bytes
  __u8 type;      // its type
  __u32 upper;
  __u32 off;         // the upper layer's offset from the IPv6 header
  __u32 upper_len;   // end - off
  __u32 end;
  struct walk6 w;
};

static __always_inline void parse6(struct __sk_buff *skb, const __u8 *ip, __u32 l3len, struct ipv6_facts *f) {
  if (l3len < 40 || (ip[0] >> 4) != 6) {
    f->malformed = 1;
    return;
  }
  __u32 end = 40 + be16(ip + 4);
  if (l3len < end) {
    f->malformed = 1;
    return;
  }
  f->end = end;
  f->w.skb = skb;
  f->w.next = ip[6];
  f->w.off = 40;
  f->w.end = end;
  __u32 next = ip[6];
  // Most frames carry no extension header: no loop at all.
  if (next == 0 || next == 43 || next == 44 || next == 60) bpf_loop((end - 40) / 8 + 1, walk6_step, &f->w, 0);
  if (f->w.truncated || f->w.nonfirst) return;
  f->has_upper = 1;
  f->upper = f->w.next;
  f->off = f->w.off;
  f->upper_len = end - f->w.off;
  if (f->upper == 58 && f->upper_len >= 4) {
    __u8 t = 0;
    if (f->off == 40) { // no extension header: the type is in the head already read
      f->icmp = 1;
      f->type = ip[40];
    } else if (bpf_skb_load_bytes(skb, ETH_HLEN + f->off, &t, 1) == 0) {
      f->icmp = 1;
      f->type = t;
    }
  }
}

// An SLL/TLL option of an RS, NS or NA that names another MAC (foreign), or a bad option.
static __always_inline void nd_options(struct __sk_buff *skb, const struct ipv6_facts *f, const __u8 *src, struct walknd *n) {
  __u32 start = f->type == 133 ? 8 : 24;
  n->skb = skb;
  n->end = f->end;
  __builtin_memcpy(n->src, src, 6);
  if (f->upper_len < start) {
    n->bad = 1;
    return;
  }
  n->o = f->off + start;
  // Most messages carry one or two options: walked by direct calls, the rest (if any) under bpf_loop.
  if (walknd_step(0, n) || walknd_step(1, n)) return;
  bpf_loop((n->end - n->o) / 8 + 1, walknd_step, n, 0);
}

static __always_inline int is_nd(__u8 type) {
  return type == 133 || type == 135 || type == 136;
}

static __always_inline int ipv6_full(struct __sk_buff *skb, __u32 ifindex, __u8 flags, const __u8 *h, __u32 len) {
  struct ipv6_facts f = {};
  const __u8 *ip = h + ETH_HLEN;
  parse6(skb, ip, len - ETH_HLEN, &f);
  if (f.malformed) return MALFORMED;
  int first_fragment = f.w.frag_seen && f.w.frag_offset == 0 && f.w.frag_more;
  int upper_missing = first_fragment && f.has_upper && f.upper != 59 && f.upper_len == 0;
  int incomplete = f.has_upper && ((f.upper == 17 && f.upper_len < 4) || (f.upper == 58 && !f.icmp));
  if (f.w.truncated || upper_missing || incomplete) {
    if (first_fragment || (f.w.truncated && f.w.frag_seen && f.w.frag_offset == 0)) return IPV6_FRAGMENT;
    return MALFORMED;
  }
  const __u8 *src = ip + 8;
  const __u8 *dst = ip + 24;
  const __u8 *mac = h + 6;
  int unspecified = 1;
#pragma unroll
  for (int i = 0; i < 16; i++)
    if (src[i]) unspecified = 0;
  if (unspecified) {
    int solicited = dst[0] == 0xff && dst[1] == 0x02 && dst[11] == 1 && dst[12] == 0xff;
#pragma unroll
    for (int i = 2; i < 11; i++)
      if (dst[i]) solicited = 0;
    int dad = f.icmp && f.type == 135 && solicited;
    int mld = f.icmp && (f.type == 131 || f.type == 143);
    if (!dad && !mld) return IPV6_SPOOF;
  } else if (!bound6(ifindex, flags, mac, src)) {
    return IPV6_SPOOF;
  }
  if (f.w.nonfirst) return ALLOW;
  if (f.icmp) {
    if (f.type == 134) return RA_GUARD;
    if (f.type == 137) return REDIRECT_GUARD;
    if (f.type == 136 || (f.type == 135 && unspecified)) {
      __u8 target[16];
      if (f.upper_len < 24 || bpf_skb_load_bytes(skb, ETH_HLEN + f.off + 8, target, 16) < 0) return ND_SPOOF;
      if (!bound6(ifindex, flags, mac, target)) return ND_SPOOF;
    }
    if (is_nd(f.type)) {
      struct walknd n = {};
      nd_options(skb, &f, mac, &n);
      if (n.foreign || n.bad) return ND_SPOOF;
    }
  }
  if (f.upper == 17) {
    __u8 b[4];
    const __u8 *ports = ip + 40;
    if (f.off != 40) {
      if (bpf_skb_load_bytes(skb, ETH_HLEN + f.off, b, 4) < 0) return MALFORMED;
      ports = b;
    }
    if (be16(ports) == 547 || be16(ports + 2) == 546) return DHCPV6_SERVER_GUARD;
  }
  return ALLOW;
}

static __always_inline int ipv4_full(struct __sk_buff *skb, __u32 ifindex, __u8 flags, const __u8 *h, __u32 len) {
  const __u8 *ip = h + ETH_HLEN;
  __u32 l3len = len - ETH_HLEN;
  if (l3len < 20) return MALFORMED;
  __u32 ihl = (ip[0] & 0x0f) * 4;
  __u32 total = be16(ip + 2);
  if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || l3len < total) return MALFORMED;
  __u32 fragment_offset = (be16(ip + 6) & 0x1fff) * 8;
  __u8 protocol = ip[9];
  int has_ports = 0;
  __u16 sport = 0, dport = 0;
  if (fragment_offset == 0 && (protocol == 17 || protocol == 6) && total - ihl >= 4) {
    __u8 b[4];
    const __u8 *ports = ip + 20; // no options: in the head already read
    if (ihl != 20) {
      if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl, b, 4) < 0) return MALFORMED;
      ports = b;
    }
    has_ports = 1;
    sport = be16(ports);
    dport = be16(ports + 2);
  }
  if (protocol == 17 && fragment_offset == 0 && !has_ports) return MALFORMED;
  const __u8 *src = ip + 12;
  const __u8 *dst = ip + 16;
  if (!(src[0] | src[1] | src[2] | src[3]) && (dst[0] & dst[1] & dst[2] & dst[3]) == 0xff && protocol == 17 && sport == 68 && dport == 67) return ALLOW;
  if (!bound4(ifindex, flags, h + 6, src)) return IPV4_SPOOF;
  if (protocol == 17 && has_ports && (sport == 67 || dport == 68)) return DHCP_SERVER_GUARD;
  return ALLOW;
}

static __always_inline int arp_full(__u32 ifindex, __u8 flags, const __u8 *h, __u32 len) {
  const __u8 *a = h + ETH_HLEN;
  __u32 l3len = len - ETH_HLEN;
  if (l3len < 8) return MALFORMED;
  if (a[4] != 6 || a[5] != 4) return ARP_SPOOF;
  if (l3len < 28) return MALFORMED;
  if (be16(a) != 1 || be16(a + 2) != 0x0800) return ARP_SPOOF;
  if (!same_mac(a + 8, h + 6)) return ARP_SPOOF;
  if (!(a[14] | a[15] | a[16] | a[17])) return ALLOW;
  return bound4(ifindex, flags, h + 6, a + 14) ? ALLOW : ARP_SPOOF;
}

// QEMU's announce-self is the only RARP a VM may send.
static __always_inline int rarp_full(const __u8 *h, __u32 len) {
  const __u8 *a = h + ETH_HLEN;
  __u32 l3len = len - ETH_HLEN;
  if (l3len < 8) return MALFORMED;
  if (a[4] != 6 || a[5] != 4) return ETHERTYPE;
  if (l3len < 28) return MALFORMED;
  int broadcast = (h[0] & h[1] & h[2] & h[3] & h[4] & h[5]) == 0xff;
  int zero = !(a[14] | a[15] | a[16] | a[17] | a[24] | a[25] | a[26] | a[27]);
  if (broadcast && be16(a) == 1 && be16(a + 2) == 0x0800 && be16(a + 6) == 3 && same_mac(a + 8, h + 6) && same_mac(a + 18, h + 6) && zero) return ALLOW;
  return ETHERTYPE;
}

// Level mac: the MAC side only (ARP sender hardware address, ND link-layer options), untagged frames.
static __always_inline int mac_level(struct __sk_buff *skb, const __u8 *h, __u32 len, __u16 type) {
  if (type == 0x0806) {
    const __u8 *a = h + ETH_HLEN;
    __u32 l3len = len - ETH_HLEN;
    if (l3len < 8 || a[4] != 6) return ALLOW;
    if (a[5] != 4) return (h[6] | h[7] | h[8] | h[9] | h[10] | h[11]) ? ARP_SPOOF : ALLOW; // the reference zeroes sha it cannot read
    if (l3len < 28) return ALLOW;
    return same_mac(a + 8, h + 6) ? ALLOW : ARP_SPOOF;
  }
  if (type == 0x86dd) {
    struct ipv6_facts f = {};
    parse6(skb, h + ETH_HLEN, len - ETH_HLEN, &f);
    if (f.malformed || !f.icmp || !is_nd(f.type)) return ALLOW;
    struct walknd n = {};
    nd_options(skb, &f, h + 6, &n);
    return n.foreign ? ND_SPOOF : ALLOW;
  }
  return ALLOW;
}

#define HEAD 60 // Ethernet, the IPv6 header and 6 bytes beyond (or IPv4 + UDP ports, or ARP): what the fast paths read

static __always_inline int judge(struct __sk_buff *skb, __u32 ifindex, __u8 level, __u8 flags, const __u8 *h, __u32 len) {
  __u16 type = be16(h + 12);
  // A tag the device took out of the frame (VLAN RX offload: veth, most NICs) is in skb->vlan_*.
  if (skb->vlan_present || type == 0x8100 || type == 0x88a8 || type == 0x9100) return level == LEVEL_FULL ? VLAN : ALLOW;
  if (level != LEVEL_FULL) return mac_level(skb, h, len, type);
  if (type <= 1500) return ETHERTYPE;
  switch (type) {
  case 0x0800:
    return ipv4_full(skb, ifindex, flags, h, len);
  case 0x86dd:
    return ipv6_full(skb, ifindex, flags, h, len);
  case 0x0806:
    return arp_full(ifindex, flags, h, len);
  case 0x8035:
    return rarp_full(h, len);
  default:
    return ETHERTYPE;
  }
}

static __always_inline void count(__u32 ifindex, __u32 reason, __u32 len) {
  struct count_key k = { .ifindex = ifindex, .reason = reason };
  struct count *c = bpf_map_lookup_elem(&vg_counts, &k);
  if (c) {
    __sync_fetch_and_add(&c->packets, 1);
    __sync_fetch_and_add(&c->bytes, len);
    return;
  }
  struct count first = { .packets = 1, .bytes = len };
  bpf_map_update_elem(&vg_counts, &k, &first, BPF_NOEXIST);
}

SEC("tc")
int from_vm(struct __sk_buff *skb) {
  __u32 ifindex = skb->ifindex;
  __u32 len = skb->len;
  __u8 h[HEAD];
  if (len >= HEAD) {
    if (bpf_skb_load_bytes(skb, 0, h, HEAD) < 0) return TC_ACT_SHOT;
  } else {
    __builtin_memset(h, 0, HEAD); // the reference reads what a short frame lacks as absent: checked by length below
    if (len < ETH_HLEN || bpf_skb_load_bytes(skb, 0, h, len < HEAD ? len : HEAD) < 0) len = 0;
  }
  int verdict;
  struct mac_key mk = { .ifindex = ifindex };
  __builtin_memcpy(mk.mac, h + 6, 6);
  struct mac_value *m = len && !(h[6] & 1) ? bpf_map_lookup_elem(&vg_macs, &mk) : 0;
  if (m) {
    verdict = judge(skb, ifindex, m->level, m->flags, h, len);
  } else {
    // Not one of the port's MACs (or a group MAC, or a frame shorter than a header): which port, if any?
    struct port *p = bpf_map_lookup_elem(&vg_ports, &ifindex);
    if (!p) return TC_ACT_SHOT; // attached without a port: fail closed
    if (p->level == LEVEL_OFF) return TC_ACT_OK;
    verdict = len ? MAC_SPOOF : MALFORMED;
  }
  if (verdict == ALLOW) return TC_ACT_OK;
  count(ifindex, verdict, skb->len);
  return TC_ACT_SHOT;
}

SEC("tc")
int to_vm(struct __sk_buff *skb) {
  __u32 ifindex = skb->ifindex;
  struct mac_key k = { .ifindex = ifindex };
  if (bpf_skb_load_bytes(skb, 0, k.mac, 6) == 0 && bpf_map_lookup_elem(&vg_macs, &k)) return TC_ACT_OK; // addressed to the port
  struct port *p = bpf_map_lookup_elem(&vg_ports, &ifindex);
  if (!p) return TC_ACT_SHOT;
  if (p->level == LEVEL_OFF || (k.mac[0] & 1)) return TC_ACT_OK;
  count(ifindex, NOT_FOR_THIS_PORT, skb->len);
  return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
