// Where the agent's desired state comes from: a local port file or the controller. Types only.
import type { Delivery } from "../desired.ts";

export type SourceHandlers = Readonly<{
  /** A new delivery (not yet validated: the agent decodes it and keeps the last good one). */
  onDelivery(delivery: Delivery): void;
  /** The source could not be read; the agent keeps enforcing what it has. */
  onError(error: Error): void;
}>;

export interface DesiredSource {
  /** For logs: the file path or the controller URL. */
  readonly origin: string;
  /** Reads the current desired state now (start-up, migrate-in of a port not known yet). */
  fetch(timeoutMs: number): Promise<Delivery>;
  /** Follows changes until stop(); deliveries identical to the previous one are not repeated. */
  start(handlers: SourceHandlers): void;
  stop(): void;
}
