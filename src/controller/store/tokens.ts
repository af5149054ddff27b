// Tokens: random secrets for admins, tenants and agents, stored only as a hash. Effects: the store, randomness.
import { randomBytes } from "node:crypto";
import { notFound, type StoreCore } from "./core.ts";
import { tokenView, type Role, type TokenView } from "./rows.ts";

export class Tokens {
  constructor(private readonly core: StoreCore) {}

  create(init: Readonly<{ role: Role; tenant?: string | null; host?: string | null; name?: string }>, hash: (secret: string) => string): Promise<{ token: string; view: TokenView }> {
    const secret = `vg_${randomBytes(32).toString("base64url")}`;
    const id = randomBytes(6).toString("hex");
    return this.core.write(async ({ trx, revision }) => {
      const row = { id, hash: hash(secret), role: init.role, tenant: init.tenant ?? null, host: init.host ?? null, name: init.name ?? "", created_ms: this.core.now(), revision };
      await trx.insertInto("token").values(row).execute();
      return { token: secret, view: tokenView(row) };
    });
  }

  async list(): Promise<TokenView[]> {
    return (await this.core.db.selectFrom("token").selectAll().orderBy("created_ms").orderBy("id").execute()).map(tokenView);
  }

  async find(hash: string): Promise<TokenView | undefined> {
    const row = await this.core.db.selectFrom("token").selectAll().where("hash", "=", hash).executeTakeFirst();
    return row && tokenView(row);
  }

  delete(id: string): Promise<void> {
    return this.core.write(async ({ trx }) => {
      const deleted = await trx.deleteFrom("token").where("id", "=", id).executeTakeFirst();
      if (deleted.numDeletedRows === 0n) throw notFound("token", id);
    });
  }
}
