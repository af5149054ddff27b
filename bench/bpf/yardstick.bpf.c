// The yardstick: the cheapest enforcement of vifguard's two core checks on this path, as TC-BPF.
// Not a driver: bench/packet-rate.ts loads it next to the drivers to show what any filter must cost.
//   ingress of the sender's tap:  one hash lookup of (ifindex, source MAC, IPv4 source); IPv6 and
//                                 ARP frames look up (ifindex, source MAC, IPv6 source / ARP sender);
//                                 an ARP sender MAC and an ND option's MAC must equal the source MAC,
//                                 an NA's target is looked up like a source; anything else drops
//   egress of the receiver's tap: one hash lookup of (ifindex, destination MAC), multicast passes
// Each program first pulls the bytes it reads into the linear area (bpf_skb_pull_data).
// Build: clang -O2 -g -target bpf -c yardstick.bpf.c -o yardstick.bpf.o
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct v4_key {
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
  __u32 ip;
};
struct v6_key {
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
  __u8 ip[16];
};
struct mac_key {
  __u32 ifindex;
  __u8 mac[6];
  __u8 pad[2];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct v4_key);
  __type(value, __u8);
} yard_v4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct v6_key);
  __type(value, __u8);
} yard_v6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct mac_key);
  __type(value, __u8);
} yard_mac SEC(".maps");

static __always_inline void copy_mac(__u8 *to, const __u8 *from) {
  __builtin_memcpy(to, from, 6);
}

SEC("tc")
int from_vm(struct __sk_buff *skb) {
  // Ethernet + IPv6 + an NA/NS with one option: the most any check reads (shorter frames: all of it).
  bpf_skb_pull_data(skb, skb->len < 86 ? skb->len : 86);
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return TC_ACT_SHOT;
  __u16 type = eth->h_proto;
  if (type == bpf_htons(ETH_P_IP)) {
    if (data + 14 + 20 > end) return TC_ACT_SHOT;
    struct v4_key k = { .ifindex = skb->ingress_ifindex };
    copy_mac(k.mac, eth->h_source);
    __builtin_memcpy(&k.ip, data + 14 + 12, 4);
    return bpf_map_lookup_elem(&yard_v4, &k) ? TC_ACT_OK : TC_ACT_SHOT;
  }
  if (type == bpf_htons(ETH_P_IPV6)) {
    if (data + 14 + 40 > end) return TC_ACT_SHOT;
    struct v6_key k = { .ifindex = skb->ingress_ifindex };
    copy_mac(k.mac, eth->h_source);
    __builtin_memcpy(k.ip, data + 14 + 8, 16);
    if (!bpf_map_lookup_elem(&yard_v6, &k)) return TC_ACT_SHOT;
    __u8 *icmp = data + 14 + 40;
    if (*(__u8 *)(data + 14 + 6) != 58 || (void *)(icmp + 1) > end || (icmp[0] != 135 && icmp[0] != 136)) return TC_ACT_OK;
    // NS/NA: the target bound to the source MAC too (a second lookup), and a link-layer option (if
    // one follows the target) equal to the source MAC.
    if ((void *)(icmp + 24) > end) return TC_ACT_SHOT;
    __builtin_memcpy(k.ip, icmp + 8, 16);
    if (icmp[0] == 136 && !bpf_map_lookup_elem(&yard_v6, &k)) return TC_ACT_SHOT;
    if ((void *)(icmp + 32) > end) return TC_ACT_OK;
    if ((icmp[24] == 1 || icmp[24] == 2) && (*(__u32 *)(icmp + 26) != *(__u32 *)eth->h_source || *(__u16 *)(icmp + 30) != *(__u16 *)(eth->h_source + 4))) return TC_ACT_SHOT;
    return TC_ACT_OK;
  }
  if (type == bpf_htons(ETH_P_ARP)) {
    // Sender hardware address = source MAC, and (ifindex, MAC, sender IP) bound.
    if (data + 14 + 28 > end) return TC_ACT_SHOT;
    __u8 *a = data + 14;
    if (*(__u32 *)(a + 8) != *(__u32 *)eth->h_source || *(__u16 *)(a + 12) != *(__u16 *)(eth->h_source + 4)) return TC_ACT_SHOT;
    struct v4_key k = { .ifindex = skb->ingress_ifindex };
    copy_mac(k.mac, eth->h_source);
    __builtin_memcpy(&k.ip, a + 14, 4);
    return bpf_map_lookup_elem(&yard_v4, &k) ? TC_ACT_OK : TC_ACT_SHOT;
  }
  return TC_ACT_SHOT;
}

SEC("tc")
int to_vm(struct __sk_buff *skb) {
  bpf_skb_pull_data(skb, 14);
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end) return TC_ACT_SHOT;
  if (eth->h_dest[0] & 1) return TC_ACT_OK;
  struct mac_key k = { .ifindex = skb->ifindex };
  copy_mac(k.mac, eth->h_dest);
  return bpf_map_lookup_elem(&yard_mac, &k) ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
