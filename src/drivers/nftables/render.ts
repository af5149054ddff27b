// The nft text of vifguard's table, in two rooms: the skeleton (sets, maps, shared chains) and the
// transactions that add, replace or remove ports' elements. Pure.
export * from "./skeleton.ts";
export * from "./transaction.ts";
