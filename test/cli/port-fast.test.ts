// The hooks' short path (src/cli/port-fast.ts): plain lifecycle calls parsed by hand, everything else left to the full program.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePortCall } from "../../src/cli/port-fast.ts";
import { parseDevicePairs } from "../../src/cli/port-send.ts";

test("parsePortCall() takes plain lifecycle calls and leaves help, typos and other verbs to the program", () => {
  const cases: [string, unknown][] = [
    ["plug 52:54:00:00:00:01", { op: "plug", ids: ["52:54:00:00:00:01"], flags: { socket: undefined, timeout: "30000", json: false, waitReady: undefined, device: [] } }],
    ["plug a b --socket /run/x.sock --timeout 500 --json", { op: "plug", ids: ["a", "b"], flags: { socket: "/run/x.sock", timeout: "500", json: true, waitReady: undefined, device: [] } }],
    ["plug a --socket=/run/x.sock --device 52:54:00:00:00:01=vnet3 --device=52:54:00:00:00:02=vnet4", { op: "plug", ids: ["a"], flags: { socket: "/run/x.sock", timeout: "30000", json: false, waitReady: undefined, device: ["52:54:00:00:00:01=vnet3", "52:54:00:00:00:02=vnet4"] } }],
    ["migrate-in a --no-wait-ready", { op: "migrate-in", ids: ["a"], flags: { socket: undefined, timeout: "30000", json: false, waitReady: false, device: [] } }],
    ["unplug vnet3", { op: "unplug", ids: ["vnet3"], flags: { socket: undefined, timeout: "30000", json: false, waitReady: undefined, device: [] } }],
    ["plug --help", undefined],
    ["plug a -h", undefined],
    ["plug", undefined],
    ["plug a --sokcet /x", undefined],
    ["plug a --socket", undefined],
    ["unplug a --device 52:54:00:00:00:01=vnet3", undefined],
    ["plug a --no-wait-ready", undefined],
    ["status", undefined],
    ["", undefined],
  ];
  for (const [argv, want] of cases) assert.deepEqual(parsePortCall(argv.split(" ").filter(Boolean)), want, argv);
});

test("parseDevicePairs() reads MAC=DEVICE (MAC in any case) and refuses anything else, naming the value", () => {
  assert.deepEqual(parseDevicePairs(["52:54:00:AA:00:01=vnet3", "52-54-00-00-00-02=tap-1.0"]), { "52:54:00:aa:00:01": "vnet3", "52:54:00:00:00:02": "tap-1.0" });
  for (const bad of ["vnet3", "52:54:00:00:00:01=", "52:54:00:00:01=vnet3", "52:54:00:00:00:01=a/b", "52:54:00:00:00:01=a-very-long-device-name"]) {
    assert.throws(() => parseDevicePairs([bad]), new RegExp(`--device ${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: expected MAC=DEVICE`), bad);
  }
});
