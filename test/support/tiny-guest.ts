// Tiny real guests for libvirt tests: the host's Debian kernel and an initramfs built at test time
// from /usr/bin/busybox (with the libraries ldd names) and the e1000 module, a domain XML for
// libvirt's QEMU driver (TCG), and a shell on the guest's serial port over a unix socket.
// Effects: files in a test's directory, processes through host/run, a socket.
//
// Boot under TCG is dominated by decompressing the kernel inside the emulator (13 s of 21 s on a
// loaded 2-core host): the guest boots the kernel's ELF image instead (PVH entry, CONFIG_PVH=y in
// Debian's kernels), extracted from the bzImage's xz payload here, which halves the boot.
import { chmod, copyFile, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { run } from "../../src/host/run.ts";

export type GuestImage = Readonly<{ kernel: string; initrd: string; release: string }>;

/** The newest /boot/vmlinuz-6.1.0-*-amd64 whose modules are installed, or undefined. */
export async function findKernel(): Promise<{ path: string; release: string } | undefined> {
  const names = (await readdir("/boot").catch(() => [] as string[])).filter((n) => /^vmlinuz-6\.1\.0-\d+-amd64$/.test(n));
  const modules = new Set(await readdir("/lib/modules").catch(() => [] as string[]));
  const release = (n: string): string => n.slice("vmlinuz-".length);
  const usable = names.filter((n) => modules.has(release(n))).sort((a, b) => Number(/-(\d+)-amd64$/.exec(b)![1]) - Number(/-(\d+)-amd64$/.exec(a)![1]));
  return usable[0] ? { path: join("/boot", usable[0]), release: release(usable[0]) } : undefined;
}

// The guest's /init: its address from the kernel command line (vg.ip=), then a shell on ttyS0.
// VG-READY (with the guest's uptime) tells the host the shell is about to read the console and eth0 carries frames.
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
insmod /e1000.ko
for a in $(cat /proc/cmdline); do case $a in vg.ip=*) ip=\${a#vg.ip=};; esac; done
sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip link set lo up; ip link set eth0 up; [ -n "$ip" ] && ip addr add "$ip" dev eth0
# Until e1000 reports carrier, eth0 has no queue: what the guest sends is dropped without an error.
for i in $(seq 100); do grep -q up /sys/class/net/eth0/operstate && break; sleep 0.1; done
echo VG-READY $(cut -d' ' -f1 /proc/uptime)
exec setsid cttyhack sh
`;

/** Builds `dir`/vmlinux (the kernel's ELF image) and `dir`/initrd.gz. Needs xz, cpio, gzip, ldd. */
export async function buildGuestImage(dir: string, kernel: { path: string; release: string }): Promise<GuestImage> {
  const root = join(dir, "initramfs");
  await mkdir(join(root, "bin"), { recursive: true });
  for (const d of ["proc", "sys", "dev", "tmp"]) await mkdir(join(root, d), { recursive: true });
  await copyFile("/usr/bin/busybox", join(root, "bin/busybox"));
  await chmod(join(root, "bin/busybox"), 0o755);
  const libs = (await run("ldd", ["/usr/bin/busybox"])).stdout.match(/\/\S+/g) ?? [];
  for (const lib of libs) {
    await mkdir(join(root, dirname(lib)), { recursive: true });
    await copyFile(lib, join(root, lib)); // copyFile follows symbolic links: the library itself lands under the link's name
  }
  await copyFile(`/lib/modules/${kernel.release}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko`, join(root, "e1000.ko"));
  await writeFile(join(root, "init"), INIT, { mode: 0o755 });
  const initrd = join(dir, "initrd.gz");
  await run("sh", ["-c", `cd "${root}" && find . | cpio -o -H newc --quiet | gzip -1 > "${initrd}"`]);
  // The bzImage's payload is one xz stream: everything from its magic on decompresses to vmlinux.
  const bz = await readFile(kernel.path);
  const at = bz.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) throw new Error(`${kernel.path}: no xz payload (this helper expects Debian's xz-compressed kernels)`);
  const vmlinux = join(dir, "vmlinux");
  await run("sh", ["-c", `tail -c +${at + 1} "${kernel.path}" | xz -dc 2>/dev/null > "${vmlinux}"; test -s "${vmlinux}"`]);
  return { kernel: vmlinux, initrd, release: kernel.release };
}

export type GuestSpec = Readonly<{ name: string; mac: string; ipCidr: string; bridge: string; image: GuestImage; console: string; consoleLog: string }>;

/** A persistent domain: TCG, 128 MiB, an e1000 NIC (no option ROM) on a Linux bridge, libvirt names the tap. */
export function domainXml(g: GuestSpec): string {
  return `<domain type='qemu'>
  <name>${g.name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${g.image.kernel}</kernel>
    <initrd>${g.image.initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 vg.ip=${g.ipCidr}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='bridge'>
      <source bridge='${g.bridge}'/>
      <mac address='${g.mac}'/>
      <model type='e1000'/>
      <rom enabled='no'/>
    </interface>
    <serial type='unix'>
      <source mode='bind' path='${g.console}'/>
      <log file='${g.consoleLog}' append='off'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** Waits until the guest's console log shows VG-READY; resolves with the guest's uptime then (seconds). */
export async function waitReady(consoleLog: string, timeoutMs: number): Promise<number> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    const text = await readFile(consoleLog, "utf8").catch(() => "");
    const m = /VG-READY (\d+\.\d+)/.exec(text);
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the guest did not boot within ${timeoutMs} ms; its console (${consoleLog}) ends with:\n${(await readFile(consoleLog, "utf8").catch(() => "")).slice(-600)}`);
}

/** The guest's shell on its serial port: one command at a time, its output and exit status. */
export class GuestShell {
  #socket: Socket;
  #buffer = "";
  #n = 0;
  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (this.#buffer += chunk));
    socket.on("error", () => undefined);
  }

  static async open(path: string): Promise<GuestShell> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path);
      s.once("connect", () => resolve(s));
      s.once("error", reject);
    });
    const shell = new GuestShell(socket);
    await shell.run("stty -echo"); // the tty would echo each command into the output
    return shell;
  }

  /** Runs `command` in the guest's shell; resolves with what it printed and its exit status. */
  async run(command: string, timeoutMs = 30_000): Promise<{ code: number; output: string }> {
    const n = ++this.#n;
    const start = this.#buffer.length;
    // The marker is computed by the shell, so an echoed command line never matches it.
    this.#socket.write(`${command}; echo "@@END-${n}-$?@@"\n`);
    const marker = new RegExp(`@@END-${n}-(\\d+)@@`);
    const until = performance.now() + timeoutMs;
    for (;;) {
      const m = marker.exec(this.#buffer.slice(start));
      if (m) {
        const output = this.#buffer.slice(start, start + m.index).replace(/\r/g, "");
        return { code: Number(m[1]), output };
      }
      if (performance.now() > until) throw new Error(`guest command timed out after ${timeoutMs} ms: ${command}\n${this.#buffer.slice(start).slice(-600)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}
