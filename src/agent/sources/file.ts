// Desired state from a local port file, followed for changes: effects (fs). Watches the file's
// directory (editors and `mv` replace the file, which a watch on the file itself would miss) and
// re-reads on a timer as a backstop, delivering only when the content changed.
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { Delivery } from "../desired.ts";
import type { DesiredSource, SourceHandlers } from "./source.ts";

export type FileSourceOptions = Readonly<{ path: string; pollMs?: number; debounceMs?: number }>;

export class FileSource implements DesiredSource {
  readonly origin: string;
  private readonly pollMs: number;
  private readonly debounceMs: number;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastRevision: string | undefined;
  private lastError: string | undefined;
  private stopped = false;

  constructor(options: FileSourceOptions) {
    this.origin = resolve(options.path);
    this.pollMs = options.pollMs ?? 1_000;
    this.debounceMs = options.debounceMs ?? 50;
  }

  async fetch(): Promise<Delivery> {
    const body = await readFile(this.origin, "utf8");
    const revision = createHash("sha256").update(body).digest("hex").slice(0, 16);
    return { format: "port-file", origin: this.origin, revision, body };
  }

  start(handlers: SourceHandlers): void {
    const check = (): void => {
      if (this.stopped) return;
      this.fetch().then(
        (delivery) => {
          this.lastError = undefined;
          if (delivery.revision === this.lastRevision || this.stopped) return;
          this.lastRevision = delivery.revision;
          handlers.onDelivery(delivery);
        },
        (error: Error) => {
          if (this.stopped || error.message === this.lastError) return; // say it once, not every poll
          this.lastError = error.message;
          this.lastRevision = undefined;
          handlers.onError(error);
        },
      );
    };
    const soon = (): void => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(check, this.debounceMs);
    };
    try {
      const name = basename(this.origin);
      this.watcher = watch(dirname(this.origin), (_event, file) => {
        if (file === null || file === name) soon();
      });
      this.watcher.on("error", () => undefined); // the poll carries on
    } catch {
      // no directory to watch (yet): the poll carries on
    }
    this.timer = setInterval(check, this.pollMs);
    check();
  }

  /** Tells the source which revision the agent already has, so that start() does not deliver it again. */
  seen(revision: string): void {
    this.lastRevision = revision;
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }
}
