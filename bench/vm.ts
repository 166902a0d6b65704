// The vm level measured through the CLI against its floor and the namespaces level (run through bench/vm.sh).
//
// (a) Each round, in turn: the floor (QEMU with the same kernel, initramfs, machine and memory, no
//     devices, and stockade_probe=1, on which the agent powers the guest off as soon as it runs),
//     then `stockade --isolation vm run` of `true` (create: keeper, VM boot, agent; start; the
//     exit status; the VM torn down; delete), then the same at the namespaces level for scale.
// (b) One `run -d` vm container of `sleep`, left idle: the PSS of every process in its cgroup (the
//     keeper, QEMU and virtiofsd with their jails' wrappers) from smaps_rollup, summed.
// (c) bench/syscalls.c, static, inside a vm container and a namespaces one: getppid and stat.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chooseAccel } from '../src/vm/accel';
import { probeArgs } from '../src/vm/accel-probe';
import { ensureGuestAssets, type GuestAssets } from '../src/vm/assets';
import { QEMU } from '../src/vm/vmm';
import { makeRootfs } from '../test/helpers/rootfs';

const rounds = Number(process.argv[2] ?? 3);
const root = process.cwd();
const stockade = join(root, 'bin', 'stockade');
const GUEST_MIB = 256;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function fmt(xs: number[]): string {
  return `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;
}

function pss(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function cmdline(pid: number): string {
  try {
    return (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '').split('/').pop() ?? '';
  } catch {
    return '';
  }
}

async function floorBoot(assets: GuestAssets, accel: 'kvm' | 'tcg'): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const q = spawn(QEMU, probeArgs(assets, accel, GUEST_MIB), { stdio: 'ignore' });
    q.once('error', reject);
    q.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`floor QEMU exited with ${code}`))));
  });
  return performance.now() - t0;
}

function cli(state: string, args: string[], level?: string): { ms: number; out: string } {
  const t0 = performance.now();
  // A detached container's keeper holds the caller's stdio: pipes would make this wait for it.
  const detached = args.includes('-d');
  const r = spawnSync(stockade, ['--root', state, ...(level === undefined ? [] : ['--isolation', level]), ...args], { encoding: 'utf8', stdio: ['ignore', detached ? 'ignore' : 'pipe', detached ? 'ignore' : 'pipe'] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`stockade ${args.join(' ')} exited with ${r.status}: ${(r.stderr ?? '').trim()}`);
  return { ms, out: r.stdout ?? '' };
}

function bundle(dir: string, args: string[], extraBin?: string): string {
  mkdirSync(dir, { recursive: true });
  makeRootfs(join(dir, 'rootfs'));
  if (extraBin !== undefined) copyFileSync(extraBin, join(dir, 'rootfs', 'bin', 'syscalls'));
  execFileSync(stockade, ['spec', '--bundle', dir]);
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[] } };
  c.process.terminal = false;
  c.process.args = args;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  return dir;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'stockade-vm-bench-'));
  const state = join(work, 'state');
  try {
    const assets = ensureGuestAssets();
    const accel = chooseAccel();
    console.log(`accelerator: ${accel.accel} (${accel.reason}); guest memory ${GUEST_MIB} MiB (the vm level's default)`);
    console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const trivial = bundle(join(work, 'true'), ['/bin/true']);

    // (a)
    const floor: number[] = [];
    const vmRun: number[] = [];
    const nsRun: number[] = [];
    for (let i = 0; i < rounds; i++) {
      floor.push(await floorBoot(assets, accel.accel));
      vmRun.push(cli(state, ['run', '--bundle', trivial, `vm-true-${i}`], 'vm').ms);
      nsRun.push(cli(state, ['run', '--bundle', trivial, `ns-true-${i}`]).ms);
    }
    const ratio = median(vmRun) / median(floor);
    console.log('(a) boot to workload');
    console.log(`  floor: bare QEMU boot to poweroff                   ${fmt(floor)}`);
    console.log(`  stockade --isolation vm run true (create..delete)   ${fmt(vmRun)}   ${ratio.toFixed(2)}x the floor (goal 1.2x: ${ratio <= 1.2 ? 'met' : 'not met'})`);
    console.log(`  stockade run true at namespaces, for scale          ${fmt(nsRun)}`);

    // (b)
    const idle = bundle(join(work, 'idle'), ['/bin/sleep', '100000']);
    cli(state, ['run', '-d', '--bundle', idle, 'vm-idle'], 'vm');
    try {
      await new Promise((r) => setTimeout(r, Number(process.env['VM_SETTLE'] ?? 3) * 1000));
      const st = JSON.parse(cli(state, ['state', 'vm-idle']).out) as { pid: number };
      // Every process of the container on the host: the keeper and what it started (QEMU,
      // virtiofsd, the jails' wrappers) are in its cgroups, which /proc/PID/cgroup names.
      const cg = readFileSync(`/proc/${st.pid}/cgroup`, 'utf8').split('\n').find((l) => /:pids:|^0::/.test(l))?.split(':')[2] ?? '';
      const procsFile = cg === '' ? '' : readdirFirst([`/sys/fs/cgroup/pids${cg}/cgroup.procs`, `/sys/fs/cgroup${cg}/cgroup.procs`, `/sys/fs/cgroup/unified${cg}/cgroup.procs`]);
      const pids = procsFile === '' ? [st.pid] : readFileSync(procsFile, 'utf8').trim().split('\n').map(Number);
      let total = 0;
      console.log('(b) idle memory of one vm container (PSS)');
      for (const pid of pids) {
        const kb = pss(pid);
        total += kb;
        console.log(`  pid ${String(pid).padEnd(8)} ${(pid === st.pid ? 'keeper (node)' : cmdline(pid)).padEnd(24)} ${(kb / 1024).toFixed(1)} MB`);
      }
      const mb = total / 1024;
      console.log(`  total ${mb.toFixed(1)} MB over ${pids.length} processes (goal 64 MB: ${mb <= 64 ? 'met' : `not met, ${(mb / 64).toFixed(2)}x`})`);
    } finally {
      spawnSync(stockade, ['--root', state, 'delete', '--force', 'vm-idle'], { stdio: 'ignore' });
    }

    // (c)
    const bin = join(work, 'syscalls');
    execFileSync('gcc', ['-static', '-O2', '-Wall', '-o', bin, join(root, 'bench', 'syscalls.c')]);
    const sc = bundle(join(work, 'sc'), ['/bin/syscalls', process.env['SYSCALLS_MS'] ?? '100'], bin);
    const parse = (out: string): Record<string, number> => JSON.parse(out.split('\n').find((l) => l.startsWith('{')) ?? '{}') as Record<string, number>;
    const vmCalls: Record<string, number>[] = [];
    const nsCalls: Record<string, number>[] = [];
    for (let i = 0; i < rounds; i++) {
      vmCalls.push(parse(cli(state, ['run', '--bundle', sc, `vm-sc-${i}`], 'vm').out));
      nsCalls.push(parse(cli(state, ['run', '--bundle', sc, `ns-sc-${i}`]).out));
    }
    console.log('(c) system calls inside the container, ns per call (median of runs)');
    for (const op of ['getppid', 'stat']) {
      const v = median(vmCalls.map((r) => r[op] ?? NaN));
      const n = median(nsCalls.map((r) => r[op] ?? NaN));
      console.log(`  ${op.padEnd(8)} vm ${v.toFixed(1).padStart(8)}   namespaces ${n.toFixed(1).padStart(8)}   ${(v / n).toFixed(2)}x`);
    }
    console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    spawnSync('sh', ['-c', `for id in $(${stockade} --root ${state} list -q 2>/dev/null); do ${stockade} --root ${state} delete --force $id; done`], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  }
}

function readdirFirst(files: string[]): string {
  for (const f of files) {
    try {
      readFileSync(f);
      return f;
    } catch { /* not this layout */ }
  }
  return '';
}

main().catch((e: unknown) => {
  console.error(`bench/vm: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
