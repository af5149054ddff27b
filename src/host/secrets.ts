// Secrets on disk (token files, the controller's SQLite database): refused when group or others
// may read them, since a token or the store is the keys to every port. Effects: stat, chmod.
import { chmod, stat } from "node:fs/promises";
import { VifguardError } from "../errors.ts";

/** A secret file is readable (or writable) by group or others; nothing was started. */
export class InsecureFileError extends VifguardError {
  override name = "InsecureFileError";
  readonly code = "VG_INSECURE_FILE";
  readonly file: string;
  readonly mode: number;
  constructor(file: string, what: string, mode: number, flag: string) {
    super(`${what} ${file} has mode ${modeText(mode)}: group or others can read or write it. Run \`chmod 600 ${file}\` (or start with ${flag} to only warn)`);
    this.file = file;
    this.mode = mode;
  }
}

const modeText = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/**
 * Throws InsecureFileError when `file` grants group or others any access, or, with `warnOnly`,
 * returns the warning to log loudly instead. A missing file is not this check's business.
 */
export async function checkSecretFile(file: string, what: string, options: Readonly<{ warnOnly?: boolean; flag: string }>): Promise<string | undefined> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  if ((mode & 0o077) === 0) return undefined;
  const problem = new InsecureFileError(file, what, mode, options.flag);
  if (!options.warnOnly) throw problem;
  return problem.message;
}

/** Makes `files` (those that exist) readable and writable by their owner only: for files we create. */
export async function restrictToOwner(files: readonly string[]): Promise<void> {
  for (const file of files) {
    await chmod(file, 0o600).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
}
