// The bpf driver's entry point: its module (the registry's entry) and what tests and benches use.
import { z } from "zod";
import type { DriverModule } from "../contract.ts";
import { BPF_CAPABILITIES, BpfDriver, DEFAULT_BPFFS, DEFAULT_CACHE, type BpfDriverOptions } from "./driver.ts";

export { BPF_CAPABILITIES, BPF_LIMITATIONS, BpfDriver, DEFAULT_BPFFS, type BpfDriverOptions } from "./driver.ts";
export { compileBpf, compileFailClosed, portEntries } from "./compile.ts";

export function createBpfDriver(options: BpfDriverOptions = {}): BpfDriver {
  return new BpfDriver(options);
}

const absolute = (what: string) => z.string().regex(/^\/[^\0]*$/, { message: `an absolute path (${what})` });

export const bpfModule: DriverModule = {
  name: "bpf",
  description: "TC-BPF programs on each tap (clsact ingress/egress) with hash-map lookups (KVM/Linux bridge hosts; clang, bpftool)",
  capabilities: BPF_CAPABILITIES,
  settings: z.strictObject({
    bpffs: absolute(`where a bpffs holds the pinned programs and maps, default ${DEFAULT_BPFFS}`).optional(),
    cacheDir: absolute(`where the built object is cached, default ${DEFAULT_CACHE}`).optional(),
  }),
  options: [
    { flag: "--bpffs", key: "bpffs", description: `bpffs mount point for pinned programs and maps (default ${DEFAULT_BPFFS})` },
    { flag: "--bpf-cache", key: "cacheDir", description: `where the object built with clang is cached (default ${DEFAULT_CACHE})` },
  ],
  sandbox: "linux-bridge",
  privileges: () => ({
    capabilities: [
      { capability: "CAP_NET_ADMIN", why: "tc attaches the programs to the taps" },
      { capability: "CAP_SYS_ADMIN", why: "loads BPF programs and maps and mounts a bpffs" },
    ],
    sockets: [],
  }),
  create: (settings) => createBpfDriver(settings as BpfDriverOptions),
};
