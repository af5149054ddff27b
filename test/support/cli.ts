// Runs bin/vifguard as a user would and returns what it printed, whatever its exit code.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const exec = promisify(execFile);
const VIFGUARD = new URL("../../bin/vifguard", import.meta.url).pathname;

export async function vifguard(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(VIFGUARD, args);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
