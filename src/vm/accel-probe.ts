// Confirms KVM by booting a standard guest under it once per host kernel, so KVM is used only where it is seen to work.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chooseAccel, tcgClockArgs, type AccelChoice } from './accel';
import type { GuestAssets } from './assets';
import { qemuArgs, qemuBinary } from './vmm';

/** The kernel argument that makes the agent power the guest off at once (native/agent/main.c). */
export const PROBE_ARG = 'stockade_probe=1';

/**
 * QEMU's arguments for a boot of the guest's kernel and initramfs that ends as soon as init
 * runs: the machine, memory and kernel of a real VM, no devices. Also the floor bench/vm-boot.ts
 * measures a VM's boot against.
 */
export function probeArgs(assets: GuestAssets, accel: 'kvm' | 'tcg', memoryMiB = 256): string[] {
  const args = qemuArgs({
    assets, accel, memoryMiB, cpus: 1, user: { uid: 0, gid: 0 },
    kernelArgs: [...(accel === 'tcg' ? tcgClockArgs() : []), PROBE_ARG],
  });
  return [...args.slice(0, args.indexOf('-device')), '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny'];
}

/** Whether the probe guest reaches its init and powers off within timeoutMs; and how long it took. */
export function probeBoot(assets: GuestAssets, accel: 'kvm' | 'tcg', timeoutMs: number): Promise<{ ok: boolean; ms: number; why: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const q = spawn(qemuBinary(), probeArgs(assets, accel, 128), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    q.stderr?.on('data', (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString();
    });
    const timer = setTimeout(() => q.kill('SIGKILL'), timeoutMs);
    q.once('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, ms: performance.now() - t0, why: `qemu could not start: ${e.message}` });
    });
    q.once('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      const last = stderr.trim().split('\n').pop() ?? '';
      if (code === 0) resolve({ ok: true, ms, why: `a standard guest booted under ${accel} in ${ms.toFixed(0)} ms` });
      else if (signal === 'SIGKILL') resolve({ ok: false, ms, why: `a standard guest did not reach its init under ${accel} within ${timeoutMs} ms` });
      else resolve({ ok: false, ms, why: `qemu -accel ${accel} exited with ${code ?? signal}${last !== '' ? `: ${last}` : ''}` });
    });
  });
}

/**
 * The accelerator to boot with: TCG where the quick rules (chooseAccel) rule KVM out; where they
 * allow it, KVM only if a standard guest was seen to boot under it. The probe's answer is kept in
 * `<cacheDir>/accel/<host kernel release>.json`, so it runs once per host kernel.
 */
export async function resolveAccel(assets: GuestAssets, cacheDir: string, timeoutMs = 15000): Promise<AccelChoice> {
  const rule = chooseAccel();
  if (rule.accel === 'tcg' || process.env['STOCKADE_VM_ACCEL'] === 'kvm') return rule;
  const file = join(cacheDir, 'accel', `${release().replace(/[^A-Za-z0-9._+-]/g, '_')}.json`);
  try {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as AccelChoice;
    if (cached.accel === 'kvm' || cached.accel === 'tcg') return { accel: cached.accel, reason: `${cached.reason} (probed before)` };
  } catch {
    /* not probed yet */
  }
  const r = await probeBoot(assets, 'kvm', timeoutMs);
  const choice: AccelChoice = r.ok ? { accel: 'kvm', reason: r.why } : { accel: 'tcg', reason: `${r.why}: using TCG` };
  mkdirSync(join(cacheDir, 'accel'), { recursive: true, mode: 0o755 });
  writeFileSync(`${file}.${process.pid}`, `${JSON.stringify(choice)}\n`);
  renameSync(`${file}.${process.pid}`, file);
  return choice;
}
