// The hooks' path: `vifguard port plug|unplug|migrate-in|migrate-out ID... [options]` parsed here by
// hand, so that a hook's call loads neither the command-line library nor any other subcommand (each
// VM start pays for it). Anything this does not recognise (--help, a typo) goes to the full program,
// which explains it. Effects (through port-send.ts).
import { VifguardError } from "../errors.ts";
import type { LifecycleOp } from "../agent/lifecycle.ts";
import type { PortFlags } from "./port-send.ts";

const VERBS: readonly LifecycleOp[] = ["plug", "unplug", "migrate-in", "migrate-out"];

type Parsed = Readonly<{ op: LifecycleOp; ids: string[]; flags: PortFlags }>;

/** `argv` after "port"; undefined when it is not a plain lifecycle call (then the full program parses it). Pure. */
export function parsePortCall(argv: readonly string[]): Parsed | undefined {
  const op = VERBS.find((v) => v === argv[0]);
  if (!op) return undefined;
  const ids: string[] = [];
  const device: string[] = [];
  let socket: string | undefined;
  let timeout = "30000";
  let json = false;
  let waitReady: boolean | undefined;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    if (name === "--socket") socket = value() ?? "";
    else if (name === "--timeout") timeout = value() ?? "";
    else if (name === "--device") {
      if (op !== "plug" && op !== "migrate-in") return undefined;
      const v = value();
      if (v === undefined) return undefined;
      device.push(v);
    } else if (arg === "--json") json = true;
    else if (arg === "--no-wait-ready" && op === "migrate-in") waitReady = false;
    else if (arg.startsWith("-")) return undefined;
    else ids.push(arg);
    if (socket === "" || timeout === "") return undefined;
  }
  if (ids.length === 0) return undefined;
  return { op, ids, flags: { socket, timeout, json, waitReady, device } };
}

/** Runs a plain lifecycle call; undefined when `argv` is not one. Resolves with the exit code, as main() does. */
export async function runPortCall(argv: readonly string[]): Promise<number | undefined> {
  const call = parsePortCall(argv);
  if (!call) return undefined;
  try {
    await (await import("./port-send.ts")).sendPort(call.op, call.ids, call.flags);
    return 0;
  } catch (error) {
    if (!(error instanceof VifguardError)) throw error;
    console.error(`vifguard: ${error.message}`);
    return error.code === "VG_USAGE" ? 2 : 1;
  }
}
