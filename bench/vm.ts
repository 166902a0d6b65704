// The vm level measured through the CLI against its floor and the namespaces level (run through bench/vm.sh).
// Issues 13 and 18 in one run: the cold boot and the template side by side.
//
// (a) Each round, in turn: the floor (QEMU with the cold path's kernel, initramfs, machine and
//     memory, no devices, and stockade_probe=1, on which the agent powers the guest off as soon as
//     it runs), then `stockade --isolation vm run` of `true` (create: keeper, VM; start; the exit
//     status; the VM torn down; delete) booted cold (STOCKADE_VM_TEMPLATE=0) and restored from the
//     template (built before the rounds, its build time printed), then the namespaces level; and
//     the restore path's own floor: the same template restored through the API in this process
//     (QEMU started in its jail, the state loaded, REFRESH answered, the root's 9p share and /proc
//     mounted), no CLI, no keeper, no container, the VM destroyed after the clock stops; and the
//     same `run` given a warmed VM from the pool (src/vm/pool.ts), in a state root of its own
//     whose pool is warm before each of its runs and refilled after it, never while another row
//     is timed (the template row runs with STOCKADE_VM_POOL=0). VM_PARTS=a runs (a) alone. And
//     start to workload, cold and from the template: a `run` of `echo`, timed to the first byte
//     of its output (the whole `run` above also holds the teardown and delete).
// (b) COUNT (10) `run -d` vm containers of `sleep` at once, cold, then from the template, idle for
//     VM_SETTLE s: the PSS of every process in their cgroups (the keeper, QEMU and, cold,
//     virtiofsd, with their jails' wrappers) from smaps_rollup, summed, per container; for the
//     clones also the template's memfd (kept by its holder, outside the containers) divided
//     among them. Each page of the memfd is counted once: a clone's PSS holds its share of the
//     memfd's pages it maps (the mapping's Pss less its Anonymous, its own copy-on-write copies),
//     which is taken out again before the whole memfd is divided among the clones. The sum
//     without taking it out (an upper bound, those pages counted twice) is printed beside it.
// (c) bench/syscalls.c, static, inside a vm container and a namespaces one: getppid and stat.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chooseAccel } from '../src/vm/accel';
import { probeArgs } from '../src/vm/accel-probe';
import { ensureGuestAssets, type GuestAssets } from '../src/vm/assets';
import { qemuBinary } from '../src/vm/vmm';
import { buildTemplate, restoreVm } from '../src/vm/template';
import { endPool, poolDir } from '../src/vm/pool';
import { makeRootfs } from '../test/helpers/rootfs';

const rounds = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 10);
const COLD = { STOCKADE_VM_TEMPLATE: '0' };
const NO_POOL = { STOCKADE_VM_POOL: '0' };
// The pool is opt-in (src/vm/pool.ts): its row's state root asks for one waiting VM.
const POOL = { STOCKADE_VM_POOL: '1' };
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

/**
 * The PSS of a clone's pages of the template's memfd that are still the memfd's (shared; its
 * copy-on-write copies are Anonymous in the same mapping), in kB: the mapping's Pss less its
 * Anonymous, over the process's mappings named after the memfd.
 */
function sharedTemplatePss(pid: number, memfdName: string): number {
  let smaps: string;
  try {
    smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return 0;
  }
  let inMemfd = false;
  let kb = 0;
  for (const line of smaps.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inMemfd = line.includes(memfdName);
    else if (inMemfd) {
      const f = /^(Pss|Anonymous):\s+(\d+) kB/.exec(line);
      if (f !== null) kb += (f[1] === 'Pss' ? 1 : -1) * Number(f[2]);
    }
  }
  return kb;
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
    const q = spawn(qemuBinary(), probeArgs(assets, accel, GUEST_MIB), { stdio: 'ignore' });
    q.once('error', reject);
    q.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`floor QEMU exited with ${code}`))));
  });
  return performance.now() - t0;
}

function cli(state: string, args: string[], level?: string, env: Record<string, string> = {}): { ms: number; out: string } {
  const t0 = performance.now();
  // A detached container's keeper holds the caller's stdio: pipes would make this wait for it.
  const detached = args.includes('-d');
  const r = spawnSync(stockade, ['--root', state, ...(level === undefined ? [] : ['--isolation', level]), ...args], {
    encoding: 'utf8', stdio: ['ignore', detached ? 'ignore' : 'pipe', detached ? 'ignore' : 'pipe'], env: { ...process.env, ...env },
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`stockade ${args.join(' ')} exited with ${r.status}: ${(r.stderr ?? '').trim()}`);
  return { ms, out: r.stdout ?? '' };
}

/**
 * `stockade run` of a bundle whose process prints one line: the whole call (create..delete), and
 * the time to the first byte of the workload's output (start to workload: the CLI, the keeper,
 * the VM and the container made, the process running).
 */
async function cliToWorkload(state: string, args: string[], level: string, env: Record<string, string> = {}): Promise<{ ms: number; firstMs: number }> {
  const t0 = performance.now();
  let firstMs = NaN;
  let err = '';
  const child = spawn(stockade, ['--root', state, '--isolation', level, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout.once('data', () => { firstMs = performance.now() - t0; });
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  const ms = performance.now() - t0;
  if (code !== 0 || Number.isNaN(firstMs)) throw new Error(`stockade ${args.join(' ')} exited with ${code}${Number.isNaN(firstMs) ? ' without output' : ''}: ${err.trim()}`);
  return { ms, firstMs };
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
    console.log(`accelerator: ${accel.accel} (${accel.reason}); guest memory ${GUEST_MIB} MiB (the vm level's default); ${rounds} rounds, ${count} containers at once`);
    console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const tb = performance.now();
    const tmpl = JSON.parse(execFileSync(stockade, ['vm-template', '--json'], { encoding: 'utf8' })) as { key: string; dir: string; built: boolean; buildMs: number; kernel: string };
    console.log(`template ${tmpl.key} (kernel ${tmpl.kernel}): ${tmpl.built ? `built now in ${(performance.now() - tb).toFixed(0)} ms` : `in the cache (its build took ${tmpl.buildMs} ms)`}`);
    const trivial = bundle(join(work, 'true'), ['/bin/true']);
    // The same `run` of a process that says it runs: the time to its first output is start to workload.
    const hello = bundle(join(work, 'echo'), ['/bin/echo', 'running']);

    // (a)
    const floor: number[] = [];
    const cold: number[] = [];
    const fromTemplate: number[] = [];
    const coldToWorkload: number[] = [];
    const templateToWorkload: number[] = [];
    const fromPool: number[] = [];
    // The pool's containers have a state root of their own: its pool is filled ahead of each of
    // their runs and refilled after it, and never while another row is timed.
    const statePool = join(work, 'state-pool');
    const poolReady = async (): Promise<void> => {
      const end = Date.now() + 180000;
      while (!existsSync(poolDir(statePool)) || !readdirSync(poolDir(statePool)).some((n) => existsSync(join(poolDir(statePool), n, 'ready')))) {
        if (Date.now() > end) throw new Error(`no warmed VM in ${poolDir(statePool)} after 180 s (see its pool.log)`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const nsRun: number[] = [];
    const restoreFloor: number[] = [];
    const template = await buildTemplate({ memoryMiB: GUEST_MIB, cpus: 1 });
    // The first container of a state root finds no pool and starts its refill.
    cli(statePool, ['run', '--bundle', trivial, 'vm-pool-fill'], 'vm', POOL);
    for (let i = 0; i < rounds; i++) {
      floor.push(await floorBoot(assets, accel.accel));
      cold.push(cli(state, ['run', '--bundle', trivial, `vm-cold-${i}`], 'vm', COLD).ms);
      fromTemplate.push(cli(state, ['run', '--bundle', trivial, `vm-tmpl-${i}`], 'vm', NO_POOL).ms);
      coldToWorkload.push((await cliToWorkload(state, ['run', '--bundle', hello, `vm-cold-echo-${i}`], 'vm', COLD)).firstMs);
      templateToWorkload.push((await cliToWorkload(state, ['run', '--bundle', hello, `vm-tmpl-echo-${i}`], 'vm', NO_POOL)).firstMs);
      await poolReady();
      fromPool.push(cli(statePool, ['run', '--bundle', trivial, `vm-pool-${i}`], 'vm', POOL).ms);
      await poolReady();
      nsRun.push(cli(state, ['run', '--bundle', trivial, `ns-true-${i}`]).ms);
      const r0 = performance.now();
      const clone = await restoreVm({ template, rootfs: join(trivial, 'rootfs'), binds: [] });
      restoreFloor.push(performance.now() - r0);
      await clone.destroy();
    }
    const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');
    const rc = median(cold) / median(floor);
    const rt = median(fromTemplate) / median(floor);
    const tc = median(fromTemplate) / median(cold);
    const pc = median(fromPool) / median(cold);
    console.log('(a) run --isolation vm of true (create..delete), against the floor');
    console.log(`  floor: bare QEMU boot to poweroff (cloud kernel)   ${fmt(floor)}`);
    console.log(`  vm, booted cold                                    ${fmt(cold)}   ${rc.toFixed(2)}x the floor`);
    console.log(`  vm, from the template (STOCKADE_VM_POOL=0)         ${fmt(fromTemplate)}   ${rt.toFixed(2)}x the floor   ${tc.toFixed(3)}x cold`);
    console.log(`  vm, a warmed VM from the pool                      ${fmt(fromPool)}   ${(median(fromPool) / median(floor)).toFixed(2)}x the floor   ${pc.toFixed(3)}x cold`);
    const wc = median(templateToWorkload) / median(coldToWorkload);
    console.log(`  start to workload (run of echo: its first output), booted cold   ${fmt(coldToWorkload)}`);
    console.log(`  start to workload (run of echo: its first output), template      ${fmt(templateToWorkload)}   ${wc.toFixed(3)}x cold`);
    console.log(`  namespaces, for scale                              ${fmt(nsRun)}`);
    console.log(`  restore path's floor (API: restore, REFRESH, mounts) ${fmt(restoreFloor)}   ${(median(restoreFloor) / median(cold)).toFixed(3)}x cold`);
    console.log(`  issue 13, boot to workload <= 1.2x the floor: cold ${rc.toFixed(2)}x ${met(rc <= 1.2)}; template ${rt.toFixed(2)}x ${met(rt <= 1.2)}`);
    console.log(`  issue 18, template start <= 0.25x cold: restored ${tc.toFixed(3)}x ${met(tc <= 0.25)} (create..delete); ${wc.toFixed(3)}x ${met(wc <= 0.25)} (start to workload); from the pool ${pc.toFixed(3)}x ${met(pc <= 0.25)}`);
    endPool(statePool);
    if (!(process.env['VM_PARTS'] ?? 'abc').includes('b') && !(process.env['VM_PARTS'] ?? 'abc').includes('c')) return;

    // (b)
    const idle = bundle(join(work, 'idle'), ['/bin/sleep', '100000']);
    const perKind: Record<string, number> = {};
    // Clones restored one by one (STOCKADE_VM_POOL=0): a pool would add its waiting VMs and their owners.
    for (const [kind, env] of [['cold', COLD], ['template', NO_POOL]] as const) {
      const ids = Array.from({ length: count }, (_, i) => `vm-idle-${kind}-${i}`);
      try {
        const t0 = performance.now();
        for (const id of ids) cli(state, ['run', '-d', '--bundle', idle, id], 'vm', env);
        const startMs = performance.now() - t0;
        await new Promise((r) => setTimeout(r, Number(process.env['VM_SETTLE'] ?? 5) * 1000));
        const byName = new Map<string, number>();
        let total = 0;
        let procs = 0;
        let sharedMemfd = 0;
        const memfdName = `/memfd:stockade-template-${tmpl.key}`;
        for (const id of ids) {
          const st = JSON.parse(cli(state, ['state', id]).out) as { pid: number };
          // Every process of the container on the host: the keeper and what it started (QEMU,
          // virtiofsd, the jails' wrappers) are in its cgroups, which /proc/PID/cgroup names.
          const cg = readFileSync(`/proc/${st.pid}/cgroup`, 'utf8').split('\n').find((l) => /:pids:|^0::/.test(l))?.split(':')[2] ?? '';
          const procsFile = cg === '' ? '' : readdirFirst([`/sys/fs/cgroup/pids${cg}/cgroup.procs`, `/sys/fs/cgroup${cg}/cgroup.procs`, `/sys/fs/cgroup/unified${cg}/cgroup.procs`]);
          const pids = procsFile === '' ? [st.pid] : readFileSync(procsFile, 'utf8').trim().split('\n').map(Number);
          for (const pid of pids) {
            const kb = pss(pid);
            if (kind === 'template') sharedMemfd += sharedTemplatePss(pid, memfdName);
            total += kb;
            procs++;
            const name = pid === st.pid ? 'keeper (node)' : cmdline(pid);
            byName.set(name, (byName.get(name) ?? 0) + kb);
          }
        }
        let perContainer = total / 1024 / count;
        console.log(`(b) ${count} idle vm containers at once, ${kind} (started one after another in ${(startMs / 1000).toFixed(1)} s): PSS per container`);
        for (const [name, kb] of [...byName].sort((a, b) => b[1] - a[1])) console.log(`  ${name.padEnd(26)} ${(kb / 1024 / count).toFixed(1).padStart(6)} MB`);
        if (kind === 'template') {
          const holder = Number(readFileSync(join(tmpl.dir, '..', `${tmpl.key}.holder`), 'utf8'));
          const held = statSync(`/proc/${holder}/fd/3`).blocks * 512 / 2 ** 20;
          const shared = sharedMemfd / 1024 / count;
          const exact = perContainer - shared + held / count;
          console.log(`  total ${perContainer.toFixed(1)} MB over ${procs} processes, of which their share of the template's memfd ${shared.toFixed(1)} MB`);
          console.log(`  with the template's ${held.toFixed(1)} MB memfd divided among them instead, each page once: ${exact.toFixed(1)} MB (added on top, ${(perContainer + held / count).toFixed(1)} MB)`);
          perContainer = exact;
        } else console.log(`  total ${perContainer.toFixed(1)} MB over ${procs} processes`);
        perKind[kind] = perContainer;
      } finally {
        for (const id of ids) spawnSync(stockade, ['--root', state, 'delete', '--force', id], { stdio: 'ignore' });
      }
    }
    const c = perKind['cold'] ?? NaN;
    const m = perKind['template'] ?? NaN;
    console.log(`  issue 13, <= 64 MB PSS per idle container: cold ${c.toFixed(1)} MB ${met(c <= 64)}; template ${m.toFixed(1)} MB ${met(m <= 64)} (${(m / 64).toFixed(2)}x)`);
    console.log(`  issue 18, template <= 0.5x cold with ${count} idle: ${(m / c).toFixed(3)}x ${met(m / c <= 0.5)}`);

    // (c)
    const bin = join(work, 'syscalls');
    execFileSync('gcc', ['-static', '-O2', '-Wall', '-o', bin, join(root, 'bench', 'syscalls.c')]);
    const sc = bundle(join(work, 'sc'), ['/bin/syscalls', process.env['SYSCALLS_MS'] ?? '100'], bin);
    const parse = (out: string): Record<string, number> => JSON.parse(out.split('\n').find((l) => l.startsWith('{')) ?? '{}') as Record<string, number>;
    const vmCalls: Record<string, number>[] = [];
    const nsCalls: Record<string, number>[] = [];
    for (let i = 0; i < rounds; i++) {
      vmCalls.push(parse(cli(state, ['run', '--bundle', sc, `vm-sc-${i}`], 'vm', NO_POOL).out));
      nsCalls.push(parse(cli(state, ['run', '--bundle', sc, `ns-sc-${i}`]).out));
    }
    console.log('(c) system calls inside the container (from the template), ns per call (median of runs)');
    for (const op of ['getppid', 'stat']) {
      const v = median(vmCalls.map((r) => r[op] ?? NaN));
      const n = median(nsCalls.map((r) => r[op] ?? NaN));
      console.log(`  ${op.padEnd(8)} vm ${v.toFixed(1).padStart(8)}   namespaces ${n.toFixed(1).padStart(8)}   ${(v / n).toFixed(2)}x`);
    }
    console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    for (const st of [state, join(work, 'state-pool')]) {
      spawnSync('sh', ['-c', `for id in $(${stockade} --root ${st} list -q 2>/dev/null); do ${stockade} --root ${st} delete --force $id; done`], { stdio: 'ignore' });
    }
    endPool(join(work, 'state-pool'));
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
