// What the vm level's CLI tests share: when they can run, and what a vm container leaves on the host.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureGuestAssets, type GuestAssets } from '../../src/vm/assets';
import { TEMPLATE_KERNEL } from '../../src/vm/template';
import { vmmUnavailable } from '../../src/vm/vmm';
import { integrationSkip, parentOf, type Runtime } from './harness';

/**
 * The guest's kernel and initramfs, or why a VM cannot run here: `first` names what else the
 * tests need (root, a rootfs), then QEMU and virtiofsd, then the assets themselves.
 */
export function guestAssetsOr(first: () => string | undefined): { assets?: GuestAssets; skip?: string } {
  const why = first() ?? vmmUnavailable();
  if (why !== undefined) return { skip: why };
  try {
    return { assets: ensureGuestAssets() };
  } catch (e) {
    return { skip: `the guest kernel or initramfs cannot be had: ${(e as Error).message}` };
  }
}

/**
 * The guest kernel a vm container runs: Debian's generic one, which templates boot (the cold
 * path's is the cloud kernel, ensureGuestAssets().release).
 */
export function templateRelease(): string {
  return ensureGuestAssets({ flavour: TEMPLATE_KERNEL }).release;
}

/** Why the vm level cannot run here (no QEMU, virtiofsd or guest kernel), or undefined. */
export function vmSkip(): string | undefined {
  return guestAssetsOr(integrationSkip).skip;
}

/** A vm container's host side, read from its state directory while it is there. */
export interface VmTrace {
  readonly id: string;
  readonly stateDir: string;
  readonly keeper: number;
  readonly vmmUid: number;
  readonly cgroupPaths: readonly string[];
}

export function vmTrace(rt: Runtime, id: string): VmTrace {
  const stateDir = join(rt.root, id);
  const state = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')) as { pid: number; cgroupPaths?: string[] };
  const vm = JSON.parse(readFileSync(join(stateDir, 'vm.json'), 'utf8')) as { vmmUid: number };
  return { id, stateDir, keeper: state.pid, vmmUid: vm.vmmUid, cgroupPaths: state.cgroupPaths ?? [] };
}

function procs(): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
}

function uidOf(pid: number): number | undefined {
  try {
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function live(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const st = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
    return st !== 'Z' && st !== 'X';
  } catch {
    return false;
  }
}

/** The VM's QEMU (by its uid of its own), virtiofsd and the wrappers (by the state directory on their command line), and the keeper. */
export function vmHostProcesses(t: VmTrace): number[] {
  return procs().filter((p) => live(p) && (p === t.keeper || uidOf(p) === t.vmmUid || cmdline(p).includes(t.stateDir)));
}

/** Everything of the container still on the host: processes, its state directory, its cgroups, mounts below its state directory. */
export function vmLeftovers(t: VmTrace): string[] {
  const found: string[] = [];
  for (const p of vmHostProcesses(t)) found.push(`process ${p} ${cmdline(p).replace(/\0/g, ' ').slice(0, 120)}`);
  if (existsSync(t.stateDir)) found.push(`state dir ${t.stateDir}`);
  for (const c of t.cgroupPaths) if (existsSync(c)) found.push(`cgroup ${c}`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp !== undefined && mp.startsWith(t.stateDir)) found.push(`mount ${mp}`);
  }
  return found;
}

export async function vmGone(t: VmTrace, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (vmLeftovers(t).length > 0) {
    if (Date.now() > end) throw new Error(`left behind by ${t.id}: ${vmLeftovers(t).join('; ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The cgroup (v1 memory hierarchy or v2) directory of a recorded container. */
export function memoryCgroup(t: VmTrace): string | undefined {
  return t.cgroupPaths.find((p) => existsSync(join(p, 'memory.limit_in_bytes')) || existsSync(join(p, 'memory.max')));
}

/** The pids a cgroup directory holds. */
export function cgroupPids(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').filter((l) => l !== '').map(Number);
}

/** A CLI call of the vm level: boots take seconds under TCG, more under load. */
export const VM_CALL = { timeout: 180_000 };

/** The QEMU processes below the process `ancestor` (a VM keeper: QEMU runs under its jail's wrappers). */
export function qemusUnder(ancestor: number): number[] {
  const out: number[] = [];
  for (const p of procs()) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (!comm.startsWith('qemu-system')) continue;
    for (let a = parentOf(p), hops = 0; a > 1 && hops < 16; a = parentOf(a), hops++) {
      if (a === ancestor) {
        out.push(p);
        break;
      }
    }
  }
  return out;
}
