// One long-lived OpenFlow 1.5 connection to a bridge's management socket (<rundir>/<bridge>.mgmt).
// Effects. The driver sends its bundles here instead of spawning ovs-ofctl per change (~10 ms per
// process). The connection ends when ovs-vswitchd does; the next transaction reconnects, and every
// (re)connect sets the bridge's fragment handling to nx-match first: that setting lives in
// ovs-vswitchd's memory only, so "once per connection" is exactly "once per ovs-vswitchd".
import { connect, type Socket } from "node:net";
import {
  BUNDLE,
  BUNDLE_ATOMIC_ORDERED,
  decodeConfig,
  decodeError,
  encodeBarrier,
  encodeBundleControl,
  encodeEchoReply,
  encodeGetConfig,
  encodeHello,
  encodeSetConfig,
  FRAG_MASK,
  FRAG_NX_MATCH,
  MessageReader,
  OFP15_VERSION,
  OFPT,
  writeBundleAddHeader,
  BUNDLE_ADD_HEADER,
  type DecodedError,
} from "./openflow.ts";

/** The switch refused part of a transaction: every error it sent, each with the request it names. */
export class OpenFlowError extends Error {
  override name = "OpenFlowError";
  readonly errors: readonly DecodedError[];
  constructor(message: string, errors: readonly DecodedError[]) {
    super(message);
    this.errors = errors;
  }
}

/** The connection could not be made or ended mid-transaction (nothing is known to be applied). */
export class OpenFlowConnectionError extends Error {
  override name = "OpenFlowConnectionError";
}

/** Bytes of a bundle written at a time while the rest is encoded (a unix socket buffers ~200 kB). */
const STREAM_CHUNK = 128 * 1024;

/** The bundle was computed against an earlier connection, i.e. perhaps another ovs-vswitchd: compute it again. */
export class StaleConnectionError extends Error {
  override name = "StaleConnectionError";
}

type Waiter = { first: number; last: number; done: number; errors: DecodedError[]; resolve: (m: Buffer) => void; reject: (e: Error) => void; describe: (xid: number) => string };

export class OfConnection {
  private socket: Socket | undefined;
  private opening: Promise<Socket> | undefined;
  private nextXid = 1;
  private nextBundle = 1;
  private waiters: Waiter[] = [];
  /** How many connections were made: a new one may be to a restarted ovs-vswitchd, which has no flows. */
  connections = 0;

  constructor(readonly path: string) {}

  private xid(): number {
    const x = this.nextXid;
    this.nextXid = this.nextXid >= 0x7fffffff ? 1 : this.nextXid + 1;
    return x;
  }

  private fail(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }

  /** An idle connection must not keep the process alive (an agent exits, a test ends); a waiting one must. */
  private idle(): void {
    if (this.waiters.length === 0) this.socket?.unref();
  }

  private onMessage(socket: Socket, msg: Buffer): void {
    const type = msg.readUInt8(1);
    const xid = msg.readUInt32BE(4);
    if (type === OFPT.ECHO_REQUEST) {
      socket.write(encodeEchoReply(msg));
      return;
    }
    const w = this.waiters.find((x) => xid >= x.first && xid <= x.last);
    if (!w) return; // asynchronous messages (port status, ...) and replies nobody waits for
    if (type === OFPT.ERROR) {
      w.errors.push(decodeError(msg));
    }
    if (xid === w.done) {
      this.waiters = this.waiters.filter((x) => x !== w);
      this.idle();
      if (w.errors.length > 0) {
        const text = w.errors.map((e) => `${e.name}: ${w.describe(e.xid)}`).join("; ");
        w.reject(new OpenFlowError(text, w.errors));
      } else w.resolve(msg);
    }
  }

  private open(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.opening ??= new Promise<Socket>((resolve, reject) => {
      const socket = connect(this.path);
      const reader = new MessageReader();
      let hello = false;
      socket.setNoDelay?.(true);
      socket.on("data", (chunk: Buffer) => {
        let messages: Buffer[];
        try {
          messages = reader.push(chunk);
        } catch (error) {
          socket.destroy(error as Error);
          return;
        }
        for (const msg of messages) {
          if (!hello) {
            hello = true;
            if (msg.readUInt8(1) !== OFPT.HELLO || msg.readUInt8(0) < OFP15_VERSION) {
              socket.destroy(new OpenFlowConnectionError(`${this.path}: the bridge does not speak OpenFlow 1.5 (add OpenFlow15 to its protocols)`));
              return;
            }
            // A HELLO's version is the highest the switch allows; the bitmap we sent offered 1.5 only,
            // so a bridge without OpenFlow15 answers HELLO_FAILED, handled as any error below.
            this.socket = socket;
            this.connections++;
            resolve(socket);
            continue;
          }
          this.onMessage(socket, msg);
        }
      });
      socket.on("error", (error) => {
        const e = new OpenFlowConnectionError(`${this.path}: ${error.message}`);
        if (!hello) reject(e);
        this.fail(e);
      });
      socket.on("close", () => {
        if (this.socket === socket) this.socket = undefined;
        if (!hello) reject(new OpenFlowConnectionError(`${this.path}: closed before HELLO`));
        this.fail(new OpenFlowConnectionError(`${this.path}: connection closed (ovs-vswitchd stopped?)`));
      });
      socket.write(encodeHello(this.xid()));
    })
      .then(async (socket) => {
        await this.setFragments(socket);
        return socket;
      })
      .finally(() => {
        this.opening = undefined;
      });
    return this.opening;
  }

  /**
   * Waits for the answer to xid `last`, collecting the errors the switch sends for xids first..last;
   * `cancel` stops waiting (the messages were not all sent). The socket keeps the process alive meanwhile.
   */
  private awaitAnswer(socket: Socket, first: number, last: number, describe: (xid: number) => string): { answered: Promise<Buffer>; cancel: () => void } {
    let waiter: Waiter | undefined;
    const answered = new Promise<Buffer>((resolve, reject) => {
      waiter = { first, last, done: last, errors: [], resolve, reject, describe };
      this.waiters.push(waiter);
    });
    answered.catch(() => undefined); // it may fail before the caller awaits it
    socket.ref();
    return {
      answered,
      cancel: () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
      },
    };
  }

  /** Sends `messages` (xids first..last, the last one answered) and waits for the answer to the last. */
  private exchange(socket: Socket, messages: readonly Buffer[], first: number, describe: (xid: number) => string = () => "request"): Promise<Buffer> {
    const { answered } = this.awaitAnswer(socket, first, messages.at(-1)!.readUInt32BE(4), describe);
    socket.write(messages.length === 1 ? messages[0]! : Buffer.concat(messages));
    return answered;
  }

  /** `ovs-ofctl set-frags BRIDGE nx-match`, keeping the other config bits and miss_send_len. */
  private async setFragments(socket: Socket): Promise<void> {
    const get = this.xid();
    const reply = await this.exchange(socket, [encodeGetConfig(get)], get);
    const { flags, missSendLen } = decodeConfig(reply);
    if ((flags & FRAG_MASK) === FRAG_NX_MATCH) return;
    const set = this.xid();
    const barrier = this.xid();
    await this.exchange(socket, [encodeSetConfig(set, (flags & ~FRAG_MASK) | FRAG_NX_MATCH, missSendLen), encodeBarrier(barrier)], set);
  }

  /** Connects if need be; the connection's count (see `connections`), for bundle()'s `expect`. */
  async ready(): Promise<number> {
    await this.open();
    return this.connections;
  }

  /**
   * Sends `build(xid, headroom)` messages in one atomic, ordered bundle and commits it. Each builder
   * gets the xid its message must carry, and returns it after `headroom` bytes left for the bundle's
   * header. Resolves when the commit (and a barrier after it) is answered; rejects with every error
   * the switch sent, each described by `describe(index)`.
   *
   * The messages go out in chunks of about STREAM_CHUNK bytes as they are encoded, the event loop
   * turning between chunks so the socket drains: ovs-vswitchd decodes the first messages (on the
   * other core) while the rest are still being encoded. A builder that throws (a flow outside the
   * encoder's vocabulary) ends the connection, which discards the uncommitted bundle.
   *
   * `expect`: the connection the bundle was computed for (ready()); if it had to connect again (to
   * what may be a restarted ovs-vswitchd, without the flows the bundle assumes), nothing is sent and
   * StaleConnectionError is thrown.
   */
  async bundle(builders: readonly ((xid: number, headroom: number) => Buffer)[], describe: (index: number) => string, expect?: number): Promise<void> {
    const socket = await this.open();
    if (expect !== undefined && this.connections !== expect) throw new StaleConnectionError(`${this.path}: connected again since the bundle was computed (ovs-vswitchd restarted?)`);
    const bundleId = this.nextBundle;
    this.nextBundle = this.nextBundle >= 0x7fffffff ? 1 : this.nextBundle + 1;
    const openXid = this.xid();
    const xids = builders.map(() => this.xid());
    const commitXid = this.xid();
    const barrierXid = this.xid();
    if (barrierXid < openXid) throw new OpenFlowConnectionError("xid wrapped inside one bundle; split it"); // 2^31 messages: never in practice
    const { answered, cancel } = this.awaitAnswer(socket, openXid, barrierXid, (xid) => (xid === openXid ? "bundle open" : xid === commitXid ? "bundle commit" : describe(xid - openXid - 1)));
    let chunk: Buffer[] = [encodeBundleControl(openXid, bundleId, BUNDLE.OPEN_REQUEST, BUNDLE_ATOMIC_ORDERED)];
    let bytes = 0;
    try {
      for (let i = 0; i < builders.length; i++) {
        const message = writeBundleAddHeader(builders[i]!(xids[i]!, BUNDLE_ADD_HEADER), xids[i]!, bundleId, BUNDLE_ATOMIC_ORDERED);
        chunk.push(message);
        bytes += message.length;
        if (bytes >= STREAM_CHUNK) {
          socket.write(Buffer.concat(chunk));
          chunk = [];
          bytes = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (socket.destroyed) break; // the waiter has been failed with the reason
        }
      }
    } catch (error) {
      cancel();
      this.close();
      throw error;
    }
    chunk.push(encodeBundleControl(commitXid, bundleId, BUNDLE.COMMIT_REQUEST, BUNDLE_ATOMIC_ORDERED), encodeBarrier(barrierXid));
    if (!socket.destroyed) socket.write(Buffer.concat(chunk));
    await answered;
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
