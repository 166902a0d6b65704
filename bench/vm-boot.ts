// Measures the vm level's groundwork: boot to agent-ready against a bare boot of the same kernel, `true` in a fresh VM, and a VM's host memory.
//
// Run through bench/vm-boot.sh. Each round, in turn: the floor (QEMU with the same kernel,
// initramfs, machine and memory, no devices, and stockade_probe=1, on which the agent powers the
// guest off as soon as it runs; -no-reboot makes that QEMU's exit),
// then bootVm() to the agent's HELLO_OK, to the root mounted, a `true` run in that fresh VM, and
// its destroy. Then one VM is left idle and the PSS of every process it has on the host (the
// jail's wrappers, QEMU, virtiofsd and its sandboxed worker) is summed from smaps_rollup.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tcgClockArgs, chooseAccel } from '../src/vm/accel';
import { ensureGuestAssets, type GuestAssets } from '../src/vm/assets';
import { probeArgs } from '../src/vm/accel-probe';
import { bootVm, type Vm } from '../src/vm/vm';
import { qemuBinary } from '../src/vm/vmm';
import { makeRootfs } from '../test/helpers/rootfs';

const rounds = Number(process.argv[2] ?? 3);
const memoryMiB = Number(process.env['VM_MEMORY_MIB'] ?? 256);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function fmt(xs: number[]): string {
  return `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;
}

/** PSS of a process in kB: in total, and split into anonymous, file-backed and shmem (the guest's memfd). */
function pss(pid: number): { total: number; anon: number; file: number; shmem: number } {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? 0);
    return { total: get('Pss'), anon: get('Pss_Anon'), file: get('Pss_File'), shmem: get('Pss_Shmem') };
  } catch {
    return { total: 0, anon: 0, file: 0, shmem: 0 };
  }
}

function descendants(pid: number): number[] {
  const out = [pid];
  try {
    for (const t of execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n')) {
      if (t !== '') out.push(...descendants(Number(t)));
    }
  } catch {
    /* no children */
  }
  return out;
}

async function floorBoot(assets: GuestAssets, accel: 'kvm' | 'tcg'): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const q = spawn(qemuBinary(), probeArgs(assets, accel, memoryMiB), { stdio: 'ignore' });
    q.once('error', reject);
    q.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`floor QEMU exited with ${code}`))));
  });
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'stockade-vm-bench-'));
  try {
    const rootfs = join(work, 'rootfs');
    makeRootfs(rootfs);
    const assets = ensureGuestAssets();
    const accel = chooseAccel();
    const clock = accel.accel === 'tcg' ? tcgClockArgs() : [];
    console.log(`accelerator: ${accel.accel} (${accel.reason}); guest memory ${memoryMiB} MiB; kernel args: ${clock.join(' ')}`);
    console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

    const floor: number[] = [];
    const ready: number[] = [];
    const booted: number[] = [];
    const firstTrue: number[] = [];
    const warmTrue: number[] = [];
    const destroy: number[] = [];
    for (let i = 0; i < rounds; i++) {
      floor.push(await floorBoot(assets, accel.accel));
      const t0 = performance.now();
      const vm = await bootVm({ rootfs, runParent: work });
      booted.push(performance.now() - t0);
      ready.push(vm.bootMs);
      const r = await vm.run({ args: ['true'] });
      if (r.code !== 0) throw new Error(`true exited with ${r.code}`);
      firstTrue.push(performance.now() - t0);
      for (let k = 0; k < 5; k++) {
        const t = performance.now();
        await vm.run({ args: ['true'] });
        warmTrue.push(performance.now() - t);
      }
      const td = performance.now();
      await vm.destroy();
      destroy.push(performance.now() - td);
    }
    console.log(`floor: bare QEMU boot to poweroff         ${fmt(floor)}`);
    console.log(`bootVm to agent ready (HELLO_OK)           ${fmt(ready)}   ${(median(ready) / median(floor)).toFixed(2)}x the floor`);
    console.log(`bootVm returned (root and /proc mounted)   ${fmt(booted)}`);
    console.log(`fresh VM: start to exit status of true     ${fmt(firstTrue)}   ${(median(firstTrue) / median(floor)).toFixed(2)}x the floor`);
    console.log(`booted VM: run of true                     ${fmt(warmTrue)}`);
    console.log(`destroy                                    ${fmt(destroy)}`);

    const vm: Vm = await bootVm({ rootfs, runParent: work });
    try {
      await vm.run({ args: ['true'] });
      await new Promise((r) => setTimeout(r, Number(process.env['VM_SETTLE'] ?? 3) * 1000));
      // Ours: the wrappers we spawned and everything under them; QEMU by its uid too.
      const pids = new Set<number>(vm.hostProcesses);
      for (const p of [...pids]) for (const d of descendants(p)) pids.add(d);
      const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
      const sum = { total: 0, anon: 0, file: 0, shmem: 0 };
      for (const pid of pids) {
        const p = pss(pid);
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
        for (const k of ['total', 'anon', 'file', 'shmem'] as const) sum[k] += p[k];
        console.log(`  pid ${pid} ${cmd.padEnd(32)} PSS ${mb(p.total)} (anon ${mb(p.anon)}, guest memory ${mb(p.shmem)}, files ${mb(p.file)})`);
      }
      const total = sum.total;
      console.log(`  of which: guest memory (memfd) ${mb(sum.shmem)}, QEMU's own anonymous memory (TCG code cache, heap) ${mb(sum.anon)}, files (binaries, the mapped kernel: page cache shared by every VM) ${mb(sum.file)}`);
      console.log(`idle VM host memory (PSS, all its processes): ${(total / 1024).toFixed(1)} MB (guest memory ${memoryMiB} MiB)`);
    } finally {
      await vm.destroy();
    }
    console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench/vm-boot: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
