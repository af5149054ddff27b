// The controller's errors: each has a stable code, and the API maps codes to HTTP statuses in one
// table. The JSON body is {code, message, issues: [{path, value, expected}]}, like every Issue.
import { formatIssue, VifguardError, type Issue } from "../errors.ts";

export type ApiErrorCode =
  | "VG_INVALID" // malformed input: names the field
  | "VG_UNAUTHENTICATED" // no or unknown bearer token
  | "VG_FORBIDDEN" // the token's role may not do this
  | "VG_NOT_FOUND"
  | "VG_CONFLICT" // the request contradicts stored state (id taken, network in use, …)
  | "VG_ADDRESS_CLAIMED" // another tenant's port holds the address, prefix or MAC on that network
  | "VG_MISSING_GUARDS" // the host's driver lacks a guard the port's level needs (refuseMissingGuards)
  | "VG_TOO_LARGE"; // the body exceeds the size limit

export const HTTP_STATUS: Readonly<Record<ApiErrorCode, 400 | 401 | 403 | 404 | 409 | 413>> = {
  VG_INVALID: 400,
  VG_UNAUTHENTICATED: 401,
  VG_FORBIDDEN: 403,
  VG_NOT_FOUND: 404,
  VG_CONFLICT: 409,
  VG_ADDRESS_CLAIMED: 409,
  VG_MISSING_GUARDS: 409,
  VG_TOO_LARGE: 413,
};

/** A request the controller refuses; nothing of it was stored. */
export class ApiError extends VifguardError {
  override name = "ApiError";
  readonly code: ApiErrorCode;
  readonly issues: readonly Issue[];
  constructor(code: ApiErrorCode, message: string, issues: readonly Issue[] = []) {
    super(issues.length > 0 ? `${message}:\n  ${issues.map(formatIssue).join("\n  ")}` : message);
    this.code = code;
    this.issues = issues;
  }
  /** The short message, without the issue lines (they are in `issues`). */
  get summary(): string {
    return this.message.split(":\n")[0] ?? this.message;
  }
}

/** The controller configuration file is not valid. */
export class ControllerConfigError extends VifguardError {
  override name = "ControllerConfigError";
  readonly code = "VG_CONTROLLER_CONFIG_INVALID";
  readonly issues: readonly Issue[];
  constructor(file: string, issues: readonly Issue[]) {
    super(`Cannot load ${file}:\n  ${issues.map(formatIssue).join("\n  ")}`);
    this.issues = issues;
  }
}
