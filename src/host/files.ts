// Reading and writing files for the CLI and agent: effects. Writes are atomic (temp + rename).
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { PortFileError } from "../errors.ts";
import { parsePortFile } from "../model/port-file.ts";
import type { PortFile } from "../model/types.ts";

/** Reads and validates a port file; any problem (missing, unreadable, invalid) is a PortFileError. */
export async function readPortFile(path: string): Promise<PortFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String((cause as Error).message);
    throw new PortFileError(path, [{ path: "(file)", value: path, expected: `a readable YAML or JSON port file (${reason})` }]);
  }
  return parsePortFile(text, path);
}

let writes = 0;

/**
 * Writes `data` to `path` so that a reader sees the old or the new content, never half of it.
 * Concurrent writes (of one process or several) each use their own temporary file: with the pid
 * alone, two writes in one process truncated and renamed each other's file (ENOENT on rename).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}-${++writes}`;
  const file = await open(temp, "w", mode);
  try {
    await file.writeFile(data);
    await file.sync(); // the content is on disk before the rename makes it visible
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const directory = await open(dirname(path), "r");
  try {
    await directory.sync(); // and the rename itself survives a crash
  } finally {
    await directory.close();
  }
}
