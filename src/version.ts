// vifguard's version: the one in package.json (the CLI's --version, the API document's info.version).
// Read at load time, from src/ in a checkout and from dist/ when installed (both one level down).
import { createRequire } from "node:module";

export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
