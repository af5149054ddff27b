// What each driver needs at start, and the message when a capability is missing (pure parts of src/agent/privileges.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { missingCapabilities, missingCapabilityError, neededCapabilities, parseCapabilities } from "../../src/agent/privileges.ts";

const NET_ADMIN = 1n << 12n;

test("nftables and libvirt need CAP_NET_ADMIN, ovs none; driver.netns adds CAP_SYS_ADMIN", () => {
  const caps = (driver: "nftables" | "libvirt" | "ovs", netns?: string) => neededCapabilities(driver, { prefix: "vifguard", ...(netns && { netns }) }).map((n) => n.capability);
  assert.deepEqual(caps("nftables"), ["CAP_NET_ADMIN"]);
  assert.deepEqual(caps("libvirt"), ["CAP_NET_ADMIN"]);
  assert.deepEqual(caps("ovs"), []);
  assert.deepEqual(caps("nftables", "hv"), ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
});

test("CapEff is read from /proc/<pid>/status text", () => {
  assert.equal(parseCapabilities("Name:\tnode\nCapInh:\t0000000000001000\nCapEff:\t0000000000001000\n"), NET_ADMIN);
  assert.equal(parseCapabilities("CapEff:\t000001ffffffffff\n"), (1n << 41n) - 1n);
  assert.equal(parseCapabilities("Name:\tnode\n"), undefined);
});

test("a missing capability gives one message naming it, why, and how to grant it", () => {
  const needed = neededCapabilities("nftables", { prefix: "vifguard" });
  assert.deepEqual(missingCapabilities(needed, NET_ADMIN), []);
  assert.equal(missingCapabilityError("nftables", [], NET_ADMIN, 0), undefined);
  const error = missingCapabilityError("nftables", missingCapabilities(needed, 0n), 0n, 0)!;
  assert.equal(error.code, "VG_MISSING_PRIVILEGE");
  assert.deepEqual(error.capabilities, ["CAP_NET_ADMIN"]);
  assert.match(error.message, /^the nftables driver needs CAP_NET_ADMIN, which this process does not have \(uid 0, effective capabilities: none\)/);
  assert.match(error.message, /nft changes the bridge table over netlink/);
  assert.match(error.message, /AmbientCapabilities=CAP_NET_ADMIN and CapabilityBoundingSet=CAP_NET_ADMIN/);
  const two = missingCapabilityError("nftables", missingCapabilities(neededCapabilities("nftables", { prefix: "v", netns: "hv" }), 0n), 0n, 1000)!;
  assert.deepEqual(two.capabilities, ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
  assert.match(two.message, /needs CAP_NET_ADMIN and CAP_SYS_ADMIN/);
});
