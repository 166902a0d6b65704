// VM templates (issue 18): one guest booted once to the point where its agent waits, its state
// saved; every later VM of the same inputs is restored from it instead of booted, its memory
// mapped copy-on-write from the template's. docs/design/vm-templates.md says why it is built
// this way (9p, not virtiofs; a sealed memfd; the generic kernel) and what clones share.
//
//   <cache>/templates/<key>/           appears whole (renamed from .build-<key>-*) or not at all
//       ram                            the guest's memory at the save (sparse), 0444
//       state                          QEMU's device state (the migration stream without RAM)
//       manifest.json                  every input, and each file's size and sha256
//   <cache>/templates/<key>.lock       flock: one builder per key; a second waits and uses its work
//   <cache>/templates/<key>.holder     pid of the stockade-template-hold that keeps the memfd
//
// A template is checked before every restore (manifest, inputs, sizes, the state's hash) and
// its memory once per holder (hashed from the sealed memfd the clones map): anything that does
// not match is renamed away and removed, and the template is built again; it is never restored.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync,
  readFileSync, readlinkSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { mark } from '../log/timing';
import { StockadeError, isStockadeError } from '../errors';
import { packageRoot } from '../native/paths';
import { flockAsync, flockSync } from '../native/addon';
import { layoutFrom } from '../cgroups/layout';
import { tcgClockArgs } from './accel';
import { resolveAccel } from './accel-probe';
import { defaultCacheDir, ensureGuestAssets, type GuestAssetOptions, type GuestAssets } from './assets';
import { VmError } from './errors';
import { killVm, startJailed, within, type Jailed } from './host-processes';
import { JAIL_INITRAMFS, JAIL_KERNEL, jailSteps, makeQemuJail } from './jail';
import type { KernelFlavour } from './kernel';
import { GUEST_MODULES } from './modules';
import { Qmp } from './qmp';
import { GUEST_ROOT, GUEST_SHARE, Vm, bootVm, guestShares, shareEntries, type BootOptions } from './vm';
import { AGENT_PORT, GUEST_KERNEL_ARGS, qemuBinary, rbindBinary, rbindStep, requireVmm, shareServerWrap, vmmUser } from './vmm';

/** Bump when the layout or the machine below changes: templates of the old one are rebuilt. */
const FORMAT = 2;

/**
 * Debian's generic kernel: the cloud kernel is built without 9p (CONFIG_NET_9P is not set), and
 * a template's root cannot be virtiofs (see the design note).
 */
export const TEMPLATE_KERNEL: KernelFlavour = {
  metapackage: 'linux-image-amd64',
  pattern: /Depends:\s+(linux-image-[0-9][^\s]*[0-9]-amd64)\s*$/m,
  modules: [...GUEST_MODULES, '9pnet_virtio', '9p'],
};

/** QEMU's fds in a template's VM: agent channel, QMP, device state (restore), guest memory. */
const FD = { AGENT: 3, QMP: 4, STATE: 5, RAM: 6 } as const;
/**
 * The 9p tag, and where the share appears in QEMU's jail: the directory that holds the root at
 * `root` and each bind source at `b0`, `b1`, ..., as virtiofsd's share does in a cold VM.
 */
const ROOT_TAG = 'rootfs';
const JAIL_SHARE = '/share';
/** What a clone's QEMU may do to files: serve the root as virtiofsd would, nothing else (virtiofsd keeps more). */
const FILE_CAPS = '+chown,+dac_override,+fowner,+fsetid';
/**
 * The same where a share is id-mapped (do --bind SRC:rw): without CAP_FSETID the kernel clears a
 * setuid or setgid bit QEMU's writes or chowns of a file there would have kept.
 */
const MAPPED_FILE_CAPS = '+chown,+dac_override,+fowner';

export interface TemplateOptions {
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** Where the kernel and initramfs come from (the cache by default); the kernel is always TEMPLATE_KERNEL. */
  readonly assets?: Omit<GuestAssetOptions, 'flavour' | 'compressed'>;
  /** Extra kernel command line words (part of the key). */
  readonly kernelArgs?: readonly string[];
  readonly bootTimeoutMs?: number;
  readonly runParent?: string;
  readonly debug?: (line: string) => void;
  /** The directory templates live in (<cache>/templates by default). */
  readonly templateDir?: string;
}

export interface TemplateManifest {
  readonly format: number;
  readonly key: string;
  readonly inputs: Record<string, string | number>;
  readonly ram: { readonly bytes: number; readonly sha256: string };
  readonly state: { readonly bytes: number; readonly sha256: string };
  readonly builtAt: string;
  readonly buildMs: number;
  /**
   * The stockade install that built it (its package root): a prune judges only its own install's
   * templates old by its inputs; another install's (another worktree, another version) may be
   * current for that one, and goes only once unused for long (FOREIGN_UNUSED_MS). Absent in
   * templates built before it was recorded: taken as the pruning install's.
   */
  readonly install?: string;
}

/** How long another install's template is kept unused (no restore touched its `<key>.used`) before a prune removes it. */
export const FOREIGN_UNUSED_MS = 7 * 24 * 3600 * 1000;

export interface Template {
  readonly key: string;
  readonly dir: string;
  readonly manifest: TemplateManifest;
  readonly assets: GuestAssets;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly kernelArgs: readonly string[];
  /** True when this call built it (false: it was there, or another process built it while we waited). */
  readonly built: boolean;
}

function templatesDir(cacheDir: string): string {
  return join(cacheDir, 'templates');
}

export function holderBinary(): string {
  return process.env['STOCKADE_TEMPLATE_HOLD'] ?? join(packageRoot(), 'build', 'Release', 'stockade-template-hold');
}

/** QEMU's version line and its binary's size and time: a QEMU upgrade makes other templates. */
function qemuIdentity(): string {
  const qemu = qemuBinary();
  const st = statSync(qemu);
  return `${qemu}:${st.size}:${st.mtimeMs}:${st.ino}`;
}

/** The machine: the same for the save and every restore, but for the memory's sharing and -incoming. */
function machineArgs(assets: GuestAssets, memoryMiB: number, cpus: number, kernelArgs: readonly string[], accel: 'kvm' | 'tcg', restore: boolean): string[] {
  const cmdline = [...GUEST_KERNEL_ARGS, ...kernelArgs].join(' ');
  return [
    '-M', 'microvm,memory-backend=mem,x-option-roms=off',
    '-accel', accel === 'tcg' ? `tcg,tb-size=${process.env['STOCKADE_VM_TB_MIB'] ?? 32}` : 'kvm',
    '-cpu', accel === 'kvm' ? 'host' : 'max',
    '-m', `${memoryMiB}M`,
    '-smp', String(cpus),
    // Saved: QEMU writes the memory to the template's file (shared), and x-ignore-shared keeps it
    // out of the stream. Restored: the sealed memfd mapped privately, so what the clone writes is
    // its own and what it never writes stays the one page every clone maps.
    '-object', `memory-backend-file,id=mem,size=${memoryMiB}M,mem-path=/proc/self/fd/${FD.RAM},share=${restore ? 'off' : 'on'}`,
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-global', 'virtio-mmio.force-legacy=false',
    // A clone's kernel is in the template's memory already. Given -kernel, QEMU reads the whole
    // bzImage into a buffer of its own for the firmware to load at boot (8 MB of every clone's
    // memory, never read again: a clone never boots; a reboot ends it, -no-reboot).
    ...(restore ? [] : ['-kernel', JAIL_KERNEL, '-initrd', JAIL_INITRAMFS, '-append', cmdline]),
    '-serial', 'stdio',
    '-device', 'virtio-serial-device,max_ports=2',
    '-chardev', `socket,id=agent,fd=${FD.AGENT}`,
    '-device', `virtserialport,chardev=agent,name=${AGENT_PORT}`,
    '-chardev', `socket,id=qmp,fd=${FD.QMP}`,
    '-mon', 'chardev=qmp,mode=control',
    // The share: 9p, served by QEMU from the directory its jail shows at /share (empty while the
    // template is built: the guest mounts it only after a restore, and 9p blocks migration once
    // mounted). Its binds are other file systems (remap: inode numbers of two of them stay
    // apart in the guest instead of colliding). No balloon: QEMU 7.2 discards a freed page of a private file mapping by punching
    // a hole in the file, which the seal refuses; and no virtio-rng (REFRESH reseeds at once).
    '-fsdev', `local,id=root,path=${JAIL_SHARE},security_model=passthrough,multidevs=remap`,
    '-device', `virtio-9p-device,fsdev=root,mount_tag=${ROOT_TAG}`,
    '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    ...(restore ? ['-incoming', 'defer'] : []),
  ];
}

/**
 * QEMU's jail for a template's VM: the one of src/vm/jail.ts (its own namespaces, /usr, the
 * kernel and initramfs read-only, three devices, its /proc, chroot), plus /share: for a clone,
 * the container's root and bind sources bound into it as a cold VM's virtiofsd binds them
 * (stockade-rbind: recursive, read-only on every submount where asked); empty for the build.
 * The share's binds come first, so that a bind of the host's / (`do`) holds none of the jail's.
 */

/**
 * QEMU's command line in its jail. `share`: a clone's (the root and bind sources, bound into the
 * jail's /share), or undefined for the template's build (an empty /share).
 */
function jailedTemplateQemu(runDir: string, assets: GuestAssets, share: BootOptions | undefined, uid: number, qemuArgs: readonly string[]): string[] {
  const jail = makeQemuJail(runDir, false);
  const dir = join(jail, JAIL_SHARE.slice(1));
  mkdirSync(dir, { mode: 0o755 });
  // The same skeleton and binds as a cold VM's share (vm.ts): b0, b1, ... are the binds' guest names there too.
  // QEMU's 9p makes a file as its own uid, then chowns it to the guest's: an id-mapped share maps
  // that uid to itself too (a file whose chown was refused stays QEMU's, never root's).
  const entries = (share === undefined ? [] : shareEntries(share, dir)).map((e) => e.idmap === undefined ? e : {
    ...e, idmap: { uidMap: `${e.idmap.uidMap}${uid} ${uid} 1\n`, gidMap: `${e.idmap.gidMap}${uid} ${uid} 1\n` },
  });
  // A clone's QEMU is the share's file server: the four capabilities that takes (three, and
  // NO_SETID_RULES, where a share is id-mapped), kept across its exec as ambient ones, under a uid
  // of its own; the build's QEMU gets none.
  const fileCaps = entries.some((e) => e.idmap !== undefined) ? MAPPED_FILE_CAPS : FILE_CAPS;
  const caps = share !== undefined ? [`--inh-caps=-all,${fileCaps}`, `--ambient-caps=-all,${fileCaps}`, `--bounding-set=-all,${fileCaps}`] : ['--inh-caps=-all', '--bounding-set=-all'];
  return [
    '/usr/bin/setpriv', '--pdeathsig', 'KILL',
    '/usr/bin/unshare', '--net', '--ipc', '--uts', '--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private',
    // The share's entries first (stockade-rbind's recursive or id-mapped binds), then the jail's own
    // mounts; an id-mapped share's filter is loaded outside the jail, where its loader is, and holds
    // across chroot and setpriv.
    rbindBinary(), ...entries.flatMap(rbindStep(dir)),
    ...jailSteps(jail, assets.kernel, assets.initramfs, false, shareServerWrap(entries)),
    '/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...caps, '--no-new-privs', '--pdeathsig', 'KILL',
    qemuBinary(), ...qemuArgs,
  ];
}

function sha256File(path: string): { bytes: number; sha256: string } {
  const fd = openSync(path, 'r');
  try {
    return hashFd(fd);
  } finally {
    closeSync(fd);
  }
}

function hashFd(fd: number): { bytes: number; sha256: string } {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  for (let n; (n = readSync(fd, buf, 0, buf.length, bytes)) > 0; bytes += n) h.update(buf.subarray(0, n));
  return { bytes, sha256: h.digest('hex') };
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Everything a template depends on; its hash is the key. */
function templateInputs(assets: GuestAssets, memoryMiB: number, cpus: number, accel: 'kvm' | 'tcg', kernelArgs: readonly string[]): Record<string, string | number> {
  return {
    format: FORMAT,
    qemu: qemuIdentity(),
    guest: assets.key,
    kernel: assets.kernel,
    release: assets.release,
    memoryMiB,
    cpus,
    accel,
    machine: machineArgs(assets, memoryMiB, cpus, kernelArgs, accel, false).join(' '),
  };
}

interface Resolved {
  readonly assets: GuestAssets;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly accel: 'kvm' | 'tcg';
  readonly kernelArgs: readonly string[];
  readonly inputs: Record<string, string | number>;
  readonly key: string;
  readonly cacheDir: string;
}

async function resolveTemplate(opts: TemplateOptions): Promise<Resolved> {
  requireVmm();
  const memoryMiB = opts.memoryMiB ?? 256;
  const cpus = opts.cpus ?? 1;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64 || memoryMiB > 65536) throw new StockadeError('USAGE', `vm template: memory of ${memoryMiB} MiB is out of range (64 to 65536)`, { field: 'memoryMiB' });
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new StockadeError('USAGE', `vm template: ${cpus} vCPUs is out of range (1 to 64)`, { field: 'cpus' });
  const cacheDir = opts.assets?.cacheDir ?? defaultCacheDir();
  let assets: GuestAssets;
  try {
    assets = ensureGuestAssets({ ...opts.assets, cacheDir, flavour: TEMPLATE_KERNEL });
  } catch (e) {
    throw new VmError('ASSETS', `vm template: ${isStockadeError(e) ? e.message : String(e)}`, {}, { cause: e });
  }
  const accel = (await resolveAccel(assets, cacheDir)).accel;
  // The agent of a build zeroes the guest's free pages before its HELLO (native/agent/main.c):
  // the saved memory then holds only pages the guest uses, which every clone maps.
  const kernelArgs = ['stockade_template=1', ...(accel === 'tcg' ? tcgClockArgs() : []), ...(opts.kernelArgs ?? [])];
  const inputs = templateInputs(assets, memoryMiB, cpus, accel, kernelArgs);
  const key = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 32);
  return { assets, memoryMiB, cpus, accel, kernelArgs, inputs, key, cacheDir };
}

/** The key of the template these options make (without building it). */
export async function templateKey(opts: TemplateOptions = {}): Promise<string> {
  return (await resolveTemplate(opts)).key;
}

/** Why the template in dir may not be restored, or undefined when it may (the memory is checked by the holder). */
export function templateFault(dir: string, r: { key: string; inputs: Record<string, string | number> }): string | undefined {
  let m: TemplateManifest;
  try {
    m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as TemplateManifest;
  } catch (e) {
    return `its manifest cannot be read: ${(e as Error).message}`;
  }
  if (m.format !== FORMAT || m.key !== r.key) return `its manifest is of format ${m.format} and key ${m.key}`;
  for (const [k, v] of Object.entries(r.inputs)) if (m.inputs?.[k] !== v) return `it was made with another ${k} (${String(m.inputs?.[k])})`;
  for (const f of ['ram', 'state'] as const) {
    let size: number;
    try {
      size = statSync(join(dir, f)).size;
    } catch {
      return `its ${f} file is missing`;
    }
    if (size !== m[f]?.bytes) return `its ${f} file has ${size} bytes, the manifest says ${m[f]?.bytes}`;
  }
  return undefined;
}

/** Renames a bad template away (a holder watching it leaves) and removes it. */
function discard(dir: string, why: string, debug: (l: string) => void): void {
  const trash = `${dir}.trash-${randomBytes(4).toString('hex')}`;
  debug(`vm template: ${dir} discarded: ${why}`);
  try {
    renameSync(dir, trash);
  } catch {
    return;
  }
  rmSync(trash, { recursive: true, force: true });
}

async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const fd = openSync(path, 'a', 0o600);
  try {
    await flockAsync(fd, 'ex');
    return await fn();
  } finally {
    closeSync(fd);
  }
}

/**
 * The template for these inputs: the one in the cache if it checks out, else built now. Two
 * callers at once (processes or not) build it once: the second waits on the key's lock and
 * finds the first one's template.
 */
export async function buildTemplate(opts: TemplateOptions = {}): Promise<Template> {
  const r = await resolveTemplate(opts);
  const debug = opts.debug ?? ((): void => undefined);
  const root = opts.templateDir ?? templatesDir(r.cacheDir);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const dir = join(root, r.key);
  const done = (built: boolean): Template => ({
    key: r.key, dir, assets: r.assets, memoryMiB: r.memoryMiB, cpus: r.cpus, kernelArgs: r.kernelArgs, built,
    manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as TemplateManifest,
  });
  const t = await withLock(join(root, `${r.key}.lock`), async () => {
    if (existsSync(dir)) {
      const why = templateFault(dir, r);
      if (why === undefined) return done(false);
      discard(dir, why, debug);
    }
    // What a builder that died left (under this lock no other one is at work on this key).
    for (const name of readdirSync(root)) {
      if (name.startsWith(`.build-${r.key}-`) || name.startsWith(`${r.key}.trash-`)) rmSync(join(root, name), { recursive: true, force: true });
    }
    const work = mkdtempSync(join(root, `.build-${r.key}-`));
    try {
      await saveTemplate(r, work, opts);
      renameSync(work, dir);
      syncFile(root);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    debug(`vm template: built ${dir}`);
    return done(true);
  });
  // A new template is what makes old ones old (another QEMU, guest or kernel): they go now.
  if (t.built) await pruneTemplates(opts).catch((e: unknown) => debug(`vm template: prune failed: ${e instanceof Error ? e.message : String(e)}`));
  return t;
}

/** Boots the template's guest to its agent's first answer and saves it into work/. */
async function saveTemplate(r: Resolved, work: string, opts: TemplateOptions): Promise<void> {
  const debug = opts.debug ?? ((): void => undefined);
  const t0 = performance.now();
  chmodSync(work, 0o755);
  const ramPath = join(work, 'ram');
  const statePath = join(work, 'state');
  const user = vmmUser();
  // The file QEMU writes the guest's memory to: its own while it runs, root's and read-only after.
  writeFileSync(ramPath, '', { mode: 0o600 });
  const ramFd = openSync(ramPath, 'r+');
  const runDir = mkdtempSync(join(opts.runParent ?? tmpdir(), 'stockade-vm-template-'));
  let qemu: Jailed | undefined;
  let qmp: Qmp | undefined;
  let vm: Vm | undefined;
  try {
    // Sized here, sparse: pages the guest never touched stay holes, in the file and in the memfd.
    ftruncateSync(ramFd, r.memoryMiB * 1024 * 1024);
    chownSync(ramPath, user.uid, user.gid);
    const argv = jailedTemplateQemu(runDir, r.assets, undefined, user.uid, machineArgs(r.assets, r.memoryMiB, r.cpus, r.kernelArgs, r.accel, false));
    debug(`vm template: ${argv.join(' ')}`);
    qemu = startJailed('qemu', argv, ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'ignore', ramFd]);
    vm = new Vm(runDir, qemu, undefined, user.uid, 30000, { accel: r.accel, reason: 'template' }, r.assets);
    qmp = new Qmp(qemu.child.stdio[FD.QMP] as Socket);
    const failed = vm.ended.then((e) => {
      throw e ?? new VmError('DESTROYED', 'vm: destroyed while the template was built');
    });
    failed.catch(() => undefined);
    await Promise.race([vm.client.hello(opts.bootTimeoutMs ?? 120000), failed]);
    debug(`vm template: agent ready after ${(performance.now() - t0).toFixed(0)} ms`);
    await qmp.execute('qmp_capabilities');
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    // The stream comes to us over a socket in QEMU's jail: its seccomp filter forbids exec:, and
    // QEMU 7.2 has no file: migration.
    const jailRoot = join(runDir, 'qemu-root');
    const sockPath = join(jailRoot, 'save.sock');
    const stateFd = openSync(statePath, 'w', 0o644);
    const received = new Promise<void>((resolve, reject) => {
      const srv = createServer((s) => {
        srv.close();
        s.on('data', (d: Buffer) => {
          try {
            writeSync(stateFd, d);
          } catch (e) {
            reject(e as Error);
          }
        });
        s.on('end', () => resolve());
        s.on('error', reject);
      });
      srv.on('error', reject);
      srv.listen(sockPath, () => chmodSync(sockPath, 0o666));
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    await qmp.execute('stop');
    await qmp.execute('migrate', { uri: 'unix:/save.sock' });
    await qmp.migrationDone(60000);
    await Promise.race([received, failed]);
    fsyncSync(stateFd);
    closeSync(stateFd);
    await qmp.execute('quit').catch(() => undefined);
    await within(qemu.exited, 5000);
    fsyncSync(ramFd);
    chownSync(ramPath, 0, 0);
    chmodSync(ramPath, 0o444);
    const manifest: TemplateManifest = {
      format: FORMAT, key: r.key, inputs: r.inputs,
      ram: sha256File(ramPath), state: sha256File(statePath),
      builtAt: new Date().toISOString(), buildMs: Math.round(performance.now() - t0),
      install: packageRoot(),
    };
    writeFileSync(join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
    for (const f of ['manifest.json', 'state', '.']) syncFile(join(work, f));
  } finally {
    qmp?.close();
    closeSync(ramFd);
    if (vm !== undefined) await vm.destroy();
    else {
      await killVm([qemu], user.uid, runDir);
      rmSync(runDir, { recursive: true, force: true });
    }
  }
}

function holderAlive(pid: number, key: string): boolean {
  try {
    return readlinkSync(`/proc/${pid}/fd/3`) === `/memfd:stockade-template-${key} (deleted)`;
  } catch {
    return false;
  }
}

/** The cgroup every holder lives in, in each mounted hierarchy (at its root): made on need. */
export const HOLDER_CGROUP = 'stockade-vm-templates';

/** sh -c SCRIPT sh CGROUP-DIR... -- HOLDER ARGS...: joins each cgroup it can, then becomes the holder (same pid). */
export const HOLDER_SCRIPT = [
  'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" 2>/dev/null || true; shift; done',
  'shift',
  'exec "$@"',
].join('\n');

export function holderCgroups(): string[] {
  let layout: ReturnType<typeof layoutFrom>;
  try {
    layout = layoutFrom(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  } catch {
    return [];
  }
  const dirs: string[] = [];
  for (const h of [...layout.v1, ...(layout.unified === undefined ? [] : [layout.unified])]) {
    const dir = join(h.mountpoint, HOLDER_CGROUP);
    try {
      if (!existsSync(dir)) {
        mkdirSync(dir);
        // A new v1 cpuset has no cpus or mems, and nothing joins it until both are set.
        if (h.version === 1 && h.controllers.includes('cpuset')) {
          for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, f), readFileSync(join(h.mountpoint, f), 'utf8').trim());
        }
      }
      dirs.push(dir);
    } catch { /* a hierarchy it cannot write: the holder stays in the caller's cgroup there */ }
  }
  return dirs;
}

/**
 * An fd of the template's sealed memfd (the caller closes it): from its holder, started (and the
 * memory's hash checked against the manifest) when none runs.
 */
async function templateMemory(t: Template, debug: (l: string) => void): Promise<number> {
  const pidFile = join(t.dir, '..', `${t.key}.holder`);
  // Its last use, for another install's prune (which keeps a template of ours until unused for long).
  try {
    writeFileSync(join(t.dir, '..', `${t.key}.used`), '');
  } catch { /* a cache we cannot write: its age is then its build's */ }
  const take = (pid: number): number | undefined => {
    if (!holderAlive(pid, t.key)) return undefined;
    try {
      return openSync(`/proc/${pid}/fd/3`, 'r');
    } catch {
      return undefined;
    }
  };
  const known = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : 'NaN');
  const fd = Number.isInteger(known) ? take(known) : undefined;
  if (fd !== undefined) return fd;
  return withLock(join(t.dir, '..', `${t.key}.lock`), async () => {
    const again = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : 'NaN');
    const fd2 = Number.isInteger(again) ? take(again) : undefined;
    if (fd2 !== undefined) return fd2;
    // Into a cgroup of the templates' own before it copies a page: not the caller's (a test run's,
    // a service's, a container's), which would be charged its pages and could not go while it lives.
    const child = spawn('/bin/sh', ['-c', HOLDER_SCRIPT, 'sh', ...holderCgroups(), '--', holderBinary(), join(t.dir, 'ram'), t.key], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const ok = await new Promise<boolean>((resolve) => {
      child.stdout.on('end', () => resolve(out.startsWith('ready')));
      child.once('error', () => resolve(false));
    });
    if (!ok || child.pid === undefined) {
      child.kill('SIGKILL');
      throw new VmError('TEMPLATE', `vm template: its memory could not be held: ${out.trim() || 'the holder did not start'}`);
    }
    child.stderr.destroy();
    child.unref();
    const mem = openSync(`/proc/${child.pid}/fd/3`, 'r');
    const h = hashFd(mem);
    if (h.sha256 !== t.manifest.ram.sha256 || h.bytes !== t.manifest.ram.bytes) {
      closeSync(mem);
      child.kill('SIGKILL');
      throw new VmError('TEMPLATE', `vm template: its memory does not match its manifest (sha256 ${h.sha256.slice(0, 12)}, expected ${t.manifest.ram.sha256.slice(0, 12)})`);
    }
    writeFileSync(pidFile, String(child.pid));
    debug(`vm template: memory held by pid ${child.pid}`);
    return mem;
  });
}

export interface RestoreOptions extends Omit<BootOptions, 'assets' | 'kernelArgs'> {
  readonly template: Template;
  /** The guest's hostname (a random one by default). */
  readonly hostname?: string;
  /** @internal Leave the clone its template's entropy, clock and name: only for the test that shows why REFRESH is sent. */
  readonly twin?: true;
}

/**
 * A VM restored from a template over opts.rootfs and opts.binds: not booted, its memory the
 * template's (copy-on-write), its entropy, clock and hostname its own before the share is
 * mounted. Returns the same Vm as bootVm (the same guest paths: the root at GUEST_ROOT, each
 * bind source at GUEST_SHARE/bN). Throws VmError TEMPLATE when the template does not check out,
 * BOOT_TIMEOUT when the clone is not refreshed within opts.bootTimeoutMs (60 s).
 */
export async function restoreVm(opts: RestoreOptions): Promise<Vm> {
  const t = opts.template;
  const debug = opts.debug ?? ((): void => undefined);
  const t0 = performance.now();
  if (!existsSync(opts.rootfs)) throw new VmError('ASSETS', `vm: rootfs ${opts.rootfs} does not exist`, { path: opts.rootfs });
  const fault = templateFault(t.dir, { key: t.key, inputs: t.manifest.inputs });
  if (fault !== undefined) throw new VmError('TEMPLATE', `vm template ${t.key}: ${fault}`);
  const statePath = join(t.dir, 'state');
  const stateFd = openSync(statePath, 'r');
  let memFd: number | undefined;
  const runDir = mkdtempSync(join(opts.runParent ?? tmpdir(), 'stockade-vm-'));
  const user = vmmUser();
  let qemu: Jailed | undefined;
  let vm: Vm | undefined;
  let qmp: Qmp | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    mark('restore: template checked');
    const st = hashFd(stateFd);
    if (st.sha256 !== t.manifest.state.sha256) throw new VmError('TEMPLATE', `vm template ${t.key}: its state does not match its manifest`);
    memFd = await templateMemory(t, debug);
    mark('restore: memory held');
    const accel = t.manifest.inputs['accel'] === 'kvm' ? 'kvm' : 'tcg';
    const argv = jailedTemplateQemu(runDir, t.assets, opts, user.uid, machineArgs(t.assets, t.memoryMiB, t.cpus, t.kernelArgs, accel, true));
    debug(`vm: ${argv.join(' ')}`);
    qemu = startJailed('qemu', argv, ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', stateFd, memFd]);
    mark('restore: qemu spawned');
    vm = new Vm(runDir, qemu, undefined, user.uid, opts.requestTimeoutMs ?? 30000, { accel, reason: `restored from template ${t.key}` }, t.assets);
    vm.shares = guestShares(opts);
    // The jail's unshare is in QEMU's mount namespace, which keeps the host's root (QEMU is chrooted in it).
    const jailShare = join(runDir, 'qemu-root', JAIL_SHARE.slice(1));
    if (qemu.child.pid !== undefined) vm.shareServer = { pid: qemu.child.pid, inNamespace: jailShare, onHost: jailShare };
    const failed = vm.ended.then((e) => {
      throw e ?? new VmError('DESTROYED', 'vm: destroyed during restore');
    });
    failed.catch(() => undefined);
    // The boot timeout of a cold VM, over the whole restore: QEMU's start to the clone refreshed.
    const timeoutMs = opts.bootTimeoutMs ?? 60000;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new VmError('BOOT_TIMEOUT', `vm: the restore from template ${t.key} did not finish within ${timeoutMs} ms`)), timeoutMs);
    });
    qmp = new Qmp(qemu.child.stdio[FD.QMP] as Socket);
    const q = qmp;
    const v = vm;
    // The greeting comes once QEMU has made its chardevs, before its machine; the first answer once its main loop runs.
    void q.greeted.then(() => mark('restore: qemu chardevs up (qmp greeting)'));
    let mounted: Promise<unknown> | undefined;
    await Promise.race([(async (): Promise<void> => {
      // QMP serves its commands in the order they came: sent together, they cost one wait, not three.
      const negotiated = q.execute('qmp_capabilities');
      const ignoreShared = q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
      const incoming = q.execute('migrate-incoming', { uri: `fd:${FD.STATE}` });
      // Each is awaited below; an earlier failure leaves the later ones to reject unawaited.
      for (const p of [ignoreShared, incoming]) p.catch(() => undefined);
      await negotiated;
      mark('restore: qemu main loop (qmp answered)');
      await ignoreShared;
      await incoming;
      await q.migrationDone(timeoutMs);
      mark('restore: state loaded');
      await q.execute('cont');
      mark('restore: running');
      q.close();
      // Before anything else runs in it: the clone's own entropy, time and name. The share and
      // /proc are asked for behind it, unanswered: the agent serves requests in their order, so
      // both are mounted after REFRESH, and the clone's round trips overlap instead of adding up.
      const now = Date.now();
      const seconds = Math.floor(now / 1000);
      const refreshed = opts.twin === true ? undefined : v.client.request({
        type: 'REFRESH', id: 0, seed: randomBytes(64),
        secondsHigh: Math.floor(seconds / 2 ** 32), secondsLow: seconds >>> 0, nanoseconds: (now % 1000) * 1e6,
        hostname: opts.hostname ?? `stockade-${randomBytes(6).toString('hex')}`,
      });
      // Read-only parts are read-only binds in QEMU's jail (stockade-rbind); the share itself is not.
      const share = v.client.mount('NINEP', ROOT_TAG, GUEST_SHARE, false).then(() => mark('restore: share mounted'));
      const proc = v.client.mount('PROC', '', `${GUEST_ROOT}/proc`, false);
      mounted = Promise.all([share, proc]);
      mounted.catch(() => undefined);
      await refreshed;
    })(), failed, late]);
    clearTimeout(timer);
    mark('restore: refreshed');
    vm.kernelRelease = t.assets.release;
    vm.bootMs = performance.now() - t0;
    debug(`vm: restored from template ${t.key} in ${vm.bootMs.toFixed(0)} ms`);
    await Promise.race([mounted, failed]);
    mark('restore: proc mounted');
    return vm;
  } catch (e) {
    clearTimeout(timer);
    qmp?.close();
    if (vm !== undefined) await vm.destroy();
    else {
      await killVm([qemu], user.uid, runDir);
      rmSync(runDir, { recursive: true, force: true });
    }
    throw e;
  } finally {
    closeSync(stateFd);
    if (memFd !== undefined) closeSync(memFd);
  }
}

export interface StartOptions extends BootOptions {
  /**
   * Start from a template unless false. A user kernel (assets.kernel), kernel arguments of the
   * caller's or STOCKADE_VM_TEMPLATE=0 in the environment boot cold.
   */
  readonly template?: boolean;
  readonly hostname?: string;
  /** Where templates live (<cache>/templates by default). */
  readonly templateDir?: string;
  /** What chooseTemplate gave the caller for these options already: restored from without choosing again. */
  readonly chosen?: Template;
}

/**
 * The machine startVm builds a missing template of on first need: the vm level's default guest.
 * Another shape is restored only from a template `stockade vm-template --memory M --cpus N`
 * built; without one it boots cold, as a build (a full boot of the template's kernel, several
 * times a cold boot) on a container's create would cost more than it saves.
 */
export const ON_NEED_SHAPE = { memoryMiB: 256, cpus: 1 } as const;

/** A template to restore from, or why the VM boots cold. */
export type TemplateChoice = { readonly template: Template; readonly cold?: undefined } | { readonly cold: string; readonly template?: undefined };

/** Why these options boot cold whatever the cache holds, or undefined. */
export function coldReason(opts: StartOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (opts.template === false) return 'templates are off for this VM';
  if (env['STOCKADE_VM_TEMPLATE'] === '0') return 'STOCKADE_VM_TEMPLATE=0';
  // An agent of the caller's own (a developer's, a test's broken one) is not worth a template's build.
  if (env['STOCKADE_AGENT'] !== undefined) return 'the guest\'s agent is the caller\'s own (STOCKADE_AGENT)';
  if (opts.assets !== undefined && ('initramfs' in opts.assets || opts.assets.kernel !== undefined || opts.assets.compressed === true)) return 'the guest\'s kernel or initramfs is the caller\'s own';
  if (opts.kernelArgs !== undefined) return 'the guest has kernel arguments of the caller\'s own';
  return undefined;
}

function templateOptions(opts: StartOptions): TemplateOptions {
  return {
    ...(opts.memoryMiB !== undefined ? { memoryMiB: opts.memoryMiB } : {}),
    ...(opts.cpus !== undefined ? { cpus: opts.cpus } : {}),
    assets: opts.assets !== undefined && !('initramfs' in opts.assets) ? opts.assets : {},
    ...(opts.debug !== undefined ? { debug: opts.debug } : {}),
    ...(opts.templateDir !== undefined ? { templateDir: opts.templateDir } : {}),
    ...(opts.runParent !== undefined ? { runParent: opts.runParent } : {}),
  };
}

/**
 * The template a VM of these options starts from, checked and with its memory held (built on
 * first need for ON_NEED_SHAPE; a bad one thrown away and built again, once), or why it boots
 * cold. The holder is started by the caller when none runs: the vm driver calls this in the
 * create call, so that the holder lives in the caller's cgroups and network namespace, not in
 * the first container's (whose delete would kill it, and whose memory limit would be charged
 * the template's pages).
 */
export async function chooseTemplate(opts: StartOptions): Promise<TemplateChoice> {
  const why = coldReason(opts);
  if (why !== undefined) return { cold: why };
  const topts = templateOptions(opts);
  const debug = opts.debug ?? ((): void => undefined);
  const memoryMiB = opts.memoryMiB ?? ON_NEED_SHAPE.memoryMiB;
  const cpus = opts.cpus ?? ON_NEED_SHAPE.cpus;
  for (let attempt = 0; ; attempt++) {
    let t: Template;
    try {
      if (memoryMiB !== ON_NEED_SHAPE.memoryMiB || cpus !== ON_NEED_SHAPE.cpus) {
        const r = await resolveTemplate(topts);
        if (!existsSync(join(topts.templateDir ?? templatesDir(r.cacheDir), r.key))) {
          return { cold: `no template of ${memoryMiB} MiB and ${cpus} vCPU (one of ${ON_NEED_SHAPE.memoryMiB} MiB and ${ON_NEED_SHAPE.cpus} vCPU is built on first need; \`stockade vm-template --memory ${memoryMiB} --cpus ${cpus}\` builds this one)` };
        }
      }
      t = await buildTemplate(topts);
    } catch (e) {
      // No template fits (its kernel cannot be had, its guest would not boot): boot cold.
      return { cold: `no template: ${e instanceof Error ? e.message : String(e)}` };
    }
    try {
      closeSync(await templateMemory(t, debug));
      return { template: t };
    } catch (e) {
      if (!(e instanceof VmError) || e.reason !== 'TEMPLATE' || attempt > 0) return { cold: `no template: ${e instanceof Error ? e.message : String(e)}` };
      discard(t.dir, e.message, debug);
    }
  }
}

/**
 * The fast start the vm driver uses: a VM restored from the template of these inputs when one
 * fits (chooseTemplate; a template found bad at the restore is thrown away and built again,
 * once), else booted cold, the reason in a debug line. Returns the same Vm either way.
 */
export async function startVm(opts: StartOptions): Promise<Vm> {
  const debug = opts.debug ?? ((): void => undefined);
  for (let attempt = 0; ; attempt++) {
    const c = attempt === 0 && opts.chosen !== undefined && opts.template !== false ? { template: opts.chosen } : await chooseTemplate(opts);
    if (c.cold !== undefined) {
      debug(`vm: booting cold: ${c.cold}`);
      return bootVm(opts);
    }
    try {
      return await restoreVm({ ...opts, template: c.template });
    } catch (e) {
      if (!(e instanceof VmError) || e.reason !== 'TEMPLATE' || attempt > 0) throw e;
      discard(c.template.dir, e.message, debug);
    }
  }
}

/** Pids of the processes that map a template's memory: the VMs running from it (its holder only keeps the fd). */
function templateUsers(key: string): number[] {
  const name = `/memfd:stockade-template-${key} `;
  const users: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/maps`, 'utf8').includes(name)) users.push(Number(p));
    } catch { /* gone, or not ours to read */ }
  }
  return users;
}

export interface PruneResult {
  /** Keys removed (their holders gone). */
  readonly removed: string[];
  /** Keys of old templates kept because a VM runs from them, with those VMs' QEMU pids. */
  readonly inUse: { readonly key: string; readonly pids: number[] }[];
}

/**
 * Removes the templates this host would no longer restore (made with another QEMU, guest,
 * kernel, format or machine: their key is not the one their shape has now) that no running VM
 * maps; their holders leave (the directory is renamed away first). Templates of the current
 * inputs stay, whatever their shape; so does an old one a VM still runs from (a later prune
 * removes it). Another install's template (its manifest's `install`) is not judged by this
 * one's inputs: it goes only once no restore used it for FOREIGN_UNUSED_MS (`opts.foreignUnusedMs`).
 * Done after every build and by `stockade vm-template --prune`.
 */
export async function pruneTemplates(opts: TemplateOptions & { readonly foreignUnusedMs?: number } = {}): Promise<PruneResult> {
  const debug = opts.debug ?? ((): void => undefined);
  const cacheDir = opts.assets?.cacheDir ?? defaultCacheDir();
  const root = opts.templateDir ?? templatesDir(cacheDir);
  const removed: string[] = [];
  const inUse: { key: string; pids: number[] }[] = [];
  if (!existsSync(root)) return { removed, inUse };
  const current = new Map<string, string>();
  for (const name of readdirSync(root)) {
    const dir = join(root, name);
    if (!/^[0-9a-f]{32}$/.test(name) || !statSync(dir).isDirectory()) continue;
    let shape: { memoryMiB: number; cpus: number } | undefined;
    let foreign = false;
    try {
      const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as TemplateManifest;
      shape = { memoryMiB: Number(m.inputs['memoryMiB']), cpus: Number(m.inputs['cpus']) };
      foreign = m.install !== undefined && m.install !== packageRoot();
    } catch { /* unreadable: never restored, so old */ }
    if (foreign) {
      // Another install's: current for it, perhaps, whatever our inputs say; it goes once unused for long.
      const used = Math.max(...[join(root, `${name}.used`), join(dir, 'manifest.json')].map((f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? 0));
      if (Date.now() - used < (opts.foreignUnusedMs ?? FOREIGN_UNUSED_MS)) {
        debug(`vm template: ${name} is another install's, used ${Math.round((Date.now() - used) / 60000)} min ago: kept`);
        continue;
      }
    } else if (shape !== undefined) {
      const id = `${shape.memoryMiB}/${shape.cpus}`;
      if (!current.has(id)) {
        try {
          current.set(id, (await resolveTemplate({ ...opts, memoryMiB: shape.memoryMiB, cpus: shape.cpus })).key);
        } catch {
          current.set(id, '');
        }
      }
      // Keys of this host's inputs stay; so does every template when those cannot be told (the assets cannot be had).
      const key = current.get(id);
      if (key === name || key === '') continue;
    }
    const pids = templateUsers(name);
    if (pids.length > 0) {
      inUse.push({ key: name, pids });
      debug(`vm template: ${name} is old but VMs run from it (${pids.join(', ')}): kept`);
      continue;
    }
    // A builder of that key (another environment's inputs) holds its lock: leave it be.
    const lockPath = join(root, `${name}.lock`);
    const lockFd = openSync(lockPath, 'a', 0o600);
    try {
      try {
        flockSync(lockFd, 'ex', true);
      } catch {
        continue;
      }
      const holder = Number(existsSync(join(root, `${name}.holder`)) ? readFileSync(join(root, `${name}.holder`), 'utf8') : 'NaN');
      discard(dir, 'made with other inputs than this host\'s, and no VM runs from it', debug);
      // The holder leaves when its directory is renamed; a holder that did not is stopped.
      if (Number.isInteger(holder) && holderAlive(holder, name)) {
        try { process.kill(holder, 'SIGTERM'); } catch { /* gone meanwhile */ }
      }
      rmSync(join(root, `${name}.holder`), { force: true });
      rmSync(join(root, `${name}.used`), { force: true });
      rmSync(lockPath, { force: true });
      removed.push(name);
    } finally {
      closeSync(lockFd);
    }
  }
  return { removed, inUse };
}
