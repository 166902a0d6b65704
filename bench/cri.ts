// A pod's start as the kubelet sees it, per runtime class on one containerd: RunPodSandbox +
// CreateContainer + StartContainer to the first ExecSync answer, stockade's levels beside runc.
// Run through bench/cri.sh.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeStateDir } from '../test/clients/daemons';
import type { PodSandboxConfig } from '../test/cri/cri-client';
import { criMissing, RUNC_CLASS, startCriNode, STOCKADE_CLASSES, WORKLOAD_IMAGE, type CriNode, type RuntimeClass } from '../test/cri/node';
import { RUN_TAG } from '../test/helpers/run-scope';

interface Phases { sandbox: number; create: number; start: number; exec: number; total: number }

async function podStart(node: CriNode, cls: RuntimeClass, n: number): Promise<Phases> {
  const cri = node.client;
  const name = `bench-${cls.handler}-${n}`;
  const pod: PodSandboxConfig = {
    metadata: { name, uid: `${name}-${RUN_TAG}`, namespace: 'stockade-bench', attempt: 0 },
    hostname: name,
    logDirectory: join(node.dir, 'logs', name),
    linux: { cgroupParent: node.cgroupParent(name), securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
  const t0 = performance.now();
  const sandbox = await cri.runPodSandbox(pod, cls.handler);
  const t1 = performance.now();
  const id = await cri.createContainer(sandbox, {
    metadata: { name: 'work', attempt: 0 }, image: { image: WORKLOAD_IMAGE }, command: ['sleep', '3600'], logPath: 'work.log',
    linux: { securityContext: { namespaceOptions: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  }, pod);
  const t2 = performance.now();
  await cri.startContainer(id);
  const t3 = performance.now();
  const r = await cri.execSync(id, ['true']);
  const t4 = performance.now();
  if (r.exitCode !== 0) throw new Error(`${cls.handler}: ExecSync true exited ${r.exitCode}: ${r.stderr.toString()}`);
  // Not timed: the pod goes, containers and all.
  await cri.stopPodSandbox(sandbox);
  await cri.removePodSandbox(sandbox);
  return { sandbox: t1 - t0, create: t2 - t1, start: t3 - t2, exec: t4 - t3, total: t4 - t0 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] ?? 0 : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? '5');
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`bench/cri: ROUNDS must be a positive whole number, not ${JSON.stringify(process.argv[2])}`);
  const missing = criMissing();
  if (missing !== undefined) throw new Error(`bench/cri: ${missing}`);
  const classes = [RUNC_CLASS, ...STOCKADE_CLASSES];
  const dir = makeStateDir('cri-bench');
  const node = await startCriNode(join(dir, 'n'), classes);
  const results = new Map<string, Phases[]>(classes.map((c) => [c.handler, []]));
  try {
    // One round unmeasured: the first pod of a class pays for caches (stockade's planner, the seccomp cache).
    for (const c of classes) await podStart(node, c, -1);
    // Classes interleaved per round, so a slow patch of the shared machine falls on all of them.
    for (let i = 0; i < rounds; i++) {
      for (const c of classes) results.get(c.handler)?.push(await podStart(node, c, i));
    }
  } finally {
    const left = await node.stop();
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) process.stderr.write(`bench/cri: swept up after the run:\n${left.join('\n')}\n`);
  }

  const row = (label: string, cells: readonly string[]): string => `${label.padEnd(28)}${cells.map((c) => c.padStart(10)).join('')}`;
  console.log(`\nmedian ms over ${rounds} pods per class (containerd ${RUNC_CLASS.handler} shim, CNI bridge):`);
  console.log(row('runtime class', ['sandbox', 'create', 'start', 'exec', 'total']));
  const medians = new Map<string, number>();
  for (const c of classes) {
    const ps = results.get(c.handler) ?? [];
    const m = (k: keyof Phases): number => median(ps.map((p) => p[k]));
    medians.set(c.handler, m('total'));
    console.log(row(`${c.handler} (${c.level ?? 'runc'})`, (['sandbox', 'create', 'start', 'exec', 'total'] as const).map((k) => m(k).toFixed(0))));
  }
  const base = medians.get(RUNC_CLASS.handler) ?? 0;
  console.log('');
  for (const c of STOCKADE_CLASSES) {
    console.log(`${c.handler} (${c.level ?? ''}) / runc, RunPodSandbox to first ExecSync answer: ${((medians.get(c.handler) ?? 0) / base).toFixed(2)}x`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
