// Cold boot, template and pool, side by side in one run (issue 18's goals).
//
// Start to workload: from the call that makes the VM to the exit status of `true` in it.
//   cold      bootVm(): QEMU, virtiofsd, the cloud kernel's boot, the agent, the root mounted
//   template  restoreVm(): the saved guest restored, REFRESH, the 9p root mounted (the template
//             is built before the timed rounds; its build time is printed once)
//   pool      a VM booted before the timer (Kata's VM cache): only the `true` run is timed,
//             the floor of any pool, which keeps one cold VM's memory per waiting VM
// Idle memory: COUNT VMs of a kind running at once, idle for VM_SETTLE s, the PSS of every host
// process of each VM summed (QEMU, its jail's wrappers, virtiofsd for the cold ones). For the
// clones the template's memfd, which the holder keeps whether or not a clone maps it, is added
// divided among them: an upper bound, since what the clones map is in their PSS already.
import { readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bootVm, type Vm } from '../src/vm/vm';
import { buildTemplate, restoreVm, type Template } from '../src/vm/template';
import { makeRootfs } from '../test/helpers/rootfs';

const rounds = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 10);
const memoryMiB = Number(process.env['VM_MEMORY_MIB'] ?? 256);
const settle = Number(process.env['VM_SETTLE'] ?? 5);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]): string => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;

function pssKb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
const vmPssMb = (vm: Vm): number => vm.hostProcesses.reduce((s, p) => s + pssKb(p), 0) / 1024;

async function timed(make: () => Promise<Vm>): Promise<[number, Vm]> {
  const t0 = performance.now();
  const vm = await make();
  const r = await vm.run({ args: ['true'] });
  if (r.code !== 0) throw new Error(`true exited ${r.code}: ${r.stderr.toString()}`);
  return [performance.now() - t0, vm];
}

async function idleMemory(make: () => Promise<Vm>): Promise<{ perVm: number; vms: Vm[] }> {
  const vms: Vm[] = [];
  for (let i = 0; i < count; i++) vms.push(await make());
  await new Promise((r) => setTimeout(r, settle * 1000));
  const total = vms.reduce((s, vm) => s + vmPssMb(vm), 0);
  return { perVm: total / count, vms };
}

async function main(): Promise<void> {
  const parent = mkdtempSync(join(tmpdir(), 'stockade-bench-template-'));
  const rootfs = join(parent, 'rootfs');
  makeRootfs(rootfs);
  const all: Vm[] = [];
  try {
    console.log(`vm templates: ${memoryMiB} MiB, 1 vCPU, ${rounds} rounds, ${count} VMs at once; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const tb = performance.now();
    const t: Template = await buildTemplate({ memoryMiB });
    console.log(`template ${t.key}: ${t.built ? `built in ${(performance.now() - tb).toFixed(0)} ms` : `cached (built in ${t.manifest.buildMs} ms)`}; memory ${(t.manifest.ram.bytes / 2 ** 20).toFixed(0)} MiB sparse, state ${(t.manifest.state.bytes / 1024).toFixed(0)} KiB`);
    const cold: number[] = [];
    const tmpl: number[] = [];
    const pool: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const [c, cv] = await timed(() => bootVm({ rootfs, memoryMiB }));
      cold.push(c);
      // The pool's VM was booted before its timer starts; it is the cold one, reused.
      const p0 = performance.now();
      const r = await cv.run({ args: ['true'] });
      if (r.code !== 0) throw new Error('true failed in the pool VM');
      pool.push(performance.now() - p0);
      await cv.destroy();
      const [m, mv] = await timed(() => restoreVm({ rootfs, template: t }));
      tmpl.push(m);
      await mv.destroy();
    }
    console.log(`start to workload, cold boot        ${fmt(cold)}`);
    console.log(`start to workload, from template    ${fmt(tmpl)}   ${(median(tmpl) / median(cold)).toFixed(3)}x cold (goal <= 0.25x)`);
    console.log(`start to workload, pool (pre-booted) ${fmt(pool)}   ${(median(pool) / median(cold)).toFixed(3)}x cold`);

    const c = await idleMemory(() => bootVm({ rootfs, memoryMiB }));
    all.push(...c.vms);
    console.log(`idle, ${count} cold VMs at once:      PSS ${c.perVm.toFixed(1)} MB per VM (a pool holds this per waiting VM)`);
    await Promise.all(c.vms.map((vm) => vm.destroy()));
    const m = await idleMemory(() => restoreVm({ rootfs, template: t }));
    all.push(...m.vms);
    const holder = Number(readFileSync(join(t.dir, '..', `${t.key}.holder`), 'utf8'));
    const held = statSync(`/proc/${holder}/fd/3`).blocks * 512 / 2 ** 20;
    const bound = m.perVm + held / count;
    console.log(`idle, ${count} clones at once:        PSS ${m.perVm.toFixed(1)} MB per VM; with the template's ${held.toFixed(1)} MB memfd shared among them ${bound.toFixed(1)} MB`);
    console.log(`memory per VM, template / cold: ${(m.perVm / c.perVm).toFixed(3)}x (${(bound / c.perVm).toFixed(3)}x with the memfd; goal <= 0.5x)`);
    await Promise.all(m.vms.map((vm) => vm.destroy()));
  } finally {
    await Promise.all(all.map((vm) => vm.destroy().catch(() => undefined)));
    rmSync(parent, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench/vm-template: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
