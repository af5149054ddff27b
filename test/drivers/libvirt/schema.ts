// Validates libvirt documents with xmllint against the installed RELAX NG schemas (libvirt0's
// /usr/share/libvirt/schemas). nwfilter.rng of libvirt 9.0 lacks arpsrcipmask/arpdstipmask, which
// libvirt's parser accepts (nwfilter_conf.c arpAttributes) and vifguard needs for CIDR address
// pairs in ARP; the copy used here adds exactly those two attributes and nothing else.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SCHEMAS = "/usr/share/libvirt/schemas";

export function hasSchemas(): boolean {
  if (!existsSync(join(SCHEMAS, "nwfilter.rng"))) return false;
  try {
    execFileSync("xmllint", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export type Validator = Readonly<{ validate(kind: "nwfilter" | "nwfilterbinding", xml: string): string | undefined; close(): void }>;

export function schemaValidator(): Validator {
  const dir = mkdtempSync(join(tmpdir(), "vg-libvirt-rng-"));
  cpSync(SCHEMAS, dir, { recursive: true });
  const rng = join(dir, "nwfilter.rng");
  const anchor = `        <attribute name="arpsrcipaddr">
          <ref name="addrIP"/>
        </attribute>
      </optional>`;
  const text = readFileSync(rng, "utf8");
  if (!text.includes("arpsrcipmask")) {
    if (!text.includes(anchor)) throw new Error("nwfilter.rng changed shape: cannot add arpsrcipmask");
    const masks = ["arpsrcipmask", "arpdstipmask"].map((n) => `\n      <optional>\n        <attribute name="${n}">\n          <ref name="addrMask"/>\n        </attribute>\n      </optional>`).join("");
    writeFileSync(rng, text.replace(anchor, anchor + masks));
  }
  let n = 0;
  return {
    validate(kind, xml) {
      const file = join(dir, `doc-${n++}.xml`);
      writeFileSync(file, xml);
      try {
        execFileSync("xmllint", ["--noout", "--relaxng", join(dir, `${kind}.rng`), file], { stdio: "pipe" });
        return undefined;
      } catch (error) {
        return String((error as { stderr?: Buffer }).stderr ?? error);
      }
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
