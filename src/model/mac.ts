// MAC addresses: strict parsing to the canonical lower-case colon form, and EUI-64 derivation. Pure.

/** A MAC in canonical form: six lower-case hex pairs separated by colons. */
export type Mac = string & { readonly __brand: "Mac" };

const MAC_TEXT = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Parses "52:54:00:12:34:56" (or dashes, any case); undefined if it is not a MAC. */
export function parseMac(text: string): Mac | undefined {
  if (!MAC_TEXT.test(text)) return undefined;
  return text.toLowerCase().replaceAll("-", ":") as Mac;
}

export function macToBytes(mac: Mac): Uint8Array {
  return Uint8Array.from(mac.split(":").map((h) => parseInt(h, 16)));
}

export function macFromBytes(bytes: Uint8Array, offset = 0): Mac {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push((bytes[offset + i] ?? 0).toString(16).padStart(2, "0"));
  return parts.join(":") as Mac;
}

/** Group bit set: multicast, including broadcast. */
export function isMulticastMac(mac: Mac): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

export function isZeroMac(mac: Mac): boolean {
  return mac === "00:00:00:00:00:00";
}

/** Modified EUI-64 interface identifier (RFC 4291 appendix A): flip the U/L bit, insert ff:fe. */
export function eui64InterfaceId(mac: Mac): Uint8Array {
  const m = macToBytes(mac);
  return Uint8Array.from([(m[0] ?? 0) ^ 0x02, m[1] ?? 0, m[2] ?? 0, 0xff, 0xfe, m[3] ?? 0, m[4] ?? 0, m[5] ?? 0]);
}
