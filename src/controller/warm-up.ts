// Issue 12, item 4: a write of the largest port the limits allow must not block the event loop for
// more than 50 ms, the first one after start included. Cold, that first write ran its steps in V8's
// interpreter: validating a 256 + 256 port (validatePortFile, zod, the IP parsers) took 56-77 ms of
// CPU in one synchronous step where a warm one takes 17-20 ms, and the first claim batch 55 ms where
// later ones take 14 (measured with the store's steps timed, 2 loaded cores). So before it listens,
// the controller rehearses those writes once: the request schemas parse a largest body, and the
// store creates, changes and re-creates a largest port on a scratch shared network inside a
// transaction it rolls back (nothing stored, no revision spent, no agent woken).
// Effects: one rolled-back write on the store.
import { randomBytes } from "node:crypto";
import { portCreate, portPatch } from "./api/schemas.ts";
import { DEFAULT_PORT_LIMITS } from "./store/core.ts";
import type { Store } from "./store/store.ts";

/** JIT state is per process: a second controller in the same process (tests) is warm already. */
let warmed = false;

/** Rehearsals: the first runs the code cold, the next ones let V8 optimise what the first ran. */
const ROUNDS = 3;

export async function warmUp(store: Store): Promise<void> {
  if (warmed) return;
  const addresses = store.options.maxAddressesPerPort ?? DEFAULT_PORT_LIMITS.addresses;
  const pairs = store.options.maxAllowedPairsPerPort ?? DEFAULT_PORT_LIMITS.allowedPairs;
  // Unique names: a rehearsal that collided with a real network or port would only fail, but must not.
  const tag = `vifguard-warm-up-${randomBytes(6).toString("hex")}`;
  const body = (n: number, mac: number) => ({
    id: `${tag}-${n}`, network: tag, tenant: `${tag}-t${mac}`, mac: `02:00:00:00:00:${mac.toString(16).padStart(2, "0")}`,
    ips: Array.from({ length: addresses }, (_, i) => `2001:db8:${n.toString(16)}::${i.toString(16)}`),
    allowed: Array.from({ length: pairs }, (_, i) => ({ ip: `2001:db8:${(n + 0x100).toString(16)}:${i.toString(16)}::/64` })),
  });
  for (let round = 0; round < ROUNDS; round++) {
    const a = body(3 * round + 1, 1);
    const b = body(3 * round + 2, 2);
    const patch = { ips: body(3 * round + 3, 1).ips, allowed: body(3 * round + 3, 1).allowed };
    // The API's own request validation, as a request would run it.
    portCreate.parse(a);
    portPatch.parse(patch);
    await store.rehearse(async (ctx) => {
      await ctx.trx.insertInto("network").values({ id: tag, tenant: tag, shared: 1, protection: "full", widest_pair: null, ranges: null, revision: ctx.revision }).execute();
      await store.ports.createIn(ctx, [a]);
      await store.ports.updateIn(ctx, a.id, patch);
      // Another tenant's port: its claim batches run against the first one's stored claims.
      await store.ports.createIn(ctx, [b]);
    });
  }
  warmed = true;
}
