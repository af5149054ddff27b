// Typed errors with stable codes: tests, the CLI and (later) the API match on `code`.

/** Base class of every error vifguard raises on purpose. */
export abstract class VifguardError extends Error {
  abstract readonly code: string;
}

/** One problem found in some input: where (a field path), what was given, and what is accepted. */
export type Issue = Readonly<{ path: string; value: unknown; expected: string }>;

export function formatIssue(issue: Issue): string {
  return `${issue.path}: got ${JSON.stringify(issue.value) ?? "nothing"}, expected ${issue.expected}`;
}

/** A port file could not be loaded; nothing of it was used. */
export class PortFileError extends VifguardError {
  override name = "PortFileError";
  readonly code = "VG_PORT_FILE_INVALID";
  readonly file: string;
  readonly issues: readonly Issue[];
  constructor(file: string, issues: readonly Issue[]) {
    super(`Cannot load ${file} (nothing of it was applied):\n  ${issues.map(formatIssue).join("\n  ")}`);
    this.file = file;
    this.issues = issues;
  }
}

/** A command-line argument or option is wrong. */
export class UsageError extends VifguardError {
  override name = "UsageError";
  readonly code = "VG_USAGE";
}

/** A pcap file could not be read. */
export class CaptureError extends VifguardError {
  override name = "CaptureError";
  readonly code = "VG_CAPTURE_INVALID";
}

/** The driver's dataplane is missing or unusable on this host. */
export class DriverUnavailableError extends VifguardError {
  override name = "DriverUnavailableError";
  readonly code = "VG_DRIVER_UNAVAILABLE";
  readonly driver: string;
  constructor(driver: string, message: string, options?: { cause?: unknown }) {
    super(`${driver} driver unavailable: ${message}`, options);
    this.driver = driver;
  }
}

/** Installing rules failed; the dataplane keeps what it had before the batch. */
export class ApplyError extends VifguardError {
  override name = "ApplyError";
  readonly code = "VG_APPLY_FAILED";
  readonly driver: string;
  readonly ports: readonly string[];
  readonly command: string;
  readonly stderr: string;
  constructor(init: { driver: string; ports: readonly string[]; command: string; stderr: string; cause?: unknown }) {
    const which = init.ports.length > 5 ? `${init.ports.slice(0, 5).join(", ")} and ${init.ports.length - 5} more` : init.ports.join(", ");
    super(`${init.driver}: applying ports [${which}] failed: ${init.command}: ${init.stderr.trim()}`, { cause: init.cause });
    this.driver = init.driver;
    this.ports = init.ports;
    this.command = init.command;
    this.stderr = init.stderr;
  }
}

/** Marks code that validated data can never reach. */
export function assertNever(value: never): never {
  throw new Error(`unreachable: ${JSON.stringify(value)}`);
}
