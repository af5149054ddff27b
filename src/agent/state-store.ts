// Keeps the last desired state the agent received on disk, so that a host whose source is
// unreachable or invalid keeps enforcing what it last knew, also across restarts. Effects (fs).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../host/files.ts";
import { decodeDelivery, decodeSaved, encodeSaved, type Delivery, type Desired } from "./desired.ts";

export class StateStore {
  readonly path: string;
  readonly unpluggedPath: string;
  /** Writes of each file, one after the other, in call order: the last call's content is what stays. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(stateDir: string) {
    this.path = join(stateDir, "desired.json");
    this.unpluggedPath = join(stateDir, "unplugged.json");
  }

  /** Saves a delivery that decoded cleanly (atomic: a crash leaves the old or the new file). */
  save(delivery: Delivery, nowMs: number): Promise<void> {
    return this.write(this.path, encodeSaved(delivery, nowMs));
  }

  private write(path: string, text: string): Promise<void> {
    const next = (this.writing.get(path) ?? Promise.resolve()).catch(() => undefined).then(() => writeFileAtomic(path, text));
    this.writing.set(path, next);
    return next;
  }

  /** The saved desired state, or undefined when there is none or it no longer decodes (reason in `problem`). */
  async load(): Promise<{ desired?: Desired & { savedAtMs: number }; problem?: string }> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === "ENOENT" ? {} : { problem: `${this.path}: ${(e as Error).message}` };
    }
    const saved = decodeSaved(text);
    if (!saved) return { problem: `${this.path}: not a saved desired state` };
    try {
      return { desired: { ...decodeDelivery(saved), savedAtMs: saved.savedAtMs } };
    } catch (e) {
      return { problem: (e as Error).message };
    }
  }

  /** `ports` as of this call (concurrent plugs each save the set they saw; the last call wins). */
  saveUnplugged(ports: readonly string[]): Promise<void> {
    return this.write(this.unpluggedPath, JSON.stringify([...ports].sort()) + "\n");
  }

  async loadUnplugged(): Promise<string[]> {
    try {
      const value: unknown = JSON.parse(await readFile(this.unpluggedPath, "utf8"));
      return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
    } catch {
      return [];
    }
  }
}
