// Where a vm container's `run` spends its time, step by step (run through bench/vm-trace.sh).
//
// Each round runs `stockade --isolation vm run` of `true` with STOCKADE_TIMING pointing at a file
// of its own: every process of the call (the CLI, the keeper; a planner if one serves it) appends
// its phase marks there with its start as wall-clock milliseconds (src/log/timing.ts), so the
// marks of all of them lie on one time line, counted here from the moment the bench spawned the
// CLI. Printed per mark: the median time since that spawn and the median step from the mark
// before it (in the order of the medians), then the whole run. Restored from the template by
// default; VM_TRACE_COLD=1 adds the same for a cold boot (STOCKADE_VM_TEMPLATE=0), one round of
// each in turn. One untimed run first (the template's holder started, the page cache warm).
// VM_TRACE_RAW=1 prints every run's marks as well.
// VM_TRACE_OTHER=DIR: another checkout's bin/stockade (a build before a change) alternates with
// this one round by round, on its own template, so both see the same load; the steps printed side by side.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRootfs } from '../test/helpers/rootfs';

const rounds = Number(process.argv[2] ?? 3);
const withCold = process.env['VM_TRACE_COLD'] === '1';
const here = join(process.cwd(), 'bin', 'stockade');
const otherDir = process.env['VM_TRACE_OTHER'];

interface Mark { readonly who: string; readonly name: string; readonly at: number }

/** The marks of one timing file, each at its wall-clock time, named after its process. */
function readMarks(file: string): Mark[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const marks: Mark[] = [];
  for (const line of text.split('\n')) {
    const m = /^timing: (\S+) (\d+) @(\d+): (.*)$/.exec(line);
    if (m === null) continue;
    const script = m[1]!;
    const who = /keeper/.test(script) ? 'keeper' : /planner/.test(script) ? 'planner' : 'cli';
    const origin = Number(m[3]);
    for (const part of m[4]!.split(' | ')) {
      const sp = part.indexOf(' ');
      marks.push({ who, name: part.slice(sp + 1), at: origin + Number(part.slice(0, sp)) });
    }
  }
  return marks;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** One `run` of the bundle: its marks (ms since the spawn) and its whole time. */
function traced(stockade: string, state: string, bundle: string, id: string, env: Record<string, string>, dir: string): { marks: Map<string, number>; total: number } {
  const file = join(dir, `${id}.timing`);
  writeFileSync(file, '');
  const t0 = Date.now();
  const r = spawnSync(stockade, ['--root', state, '--isolation', 'vm', 'run', '--bundle', bundle, id], {
    encoding: 'utf8', env: { ...process.env, ...env, STOCKADE_TIMING: file },
  });
  const total = Date.now() - t0;
  if (r.status !== 0) throw new Error(`stockade run ${id} exited with ${r.status}: ${(r.stderr ?? '').trim()}`);
  const marks = new Map<string, number>();
  for (const m of readMarks(file)) {
    const key = `${m.who}: ${m.name}`;
    // A mark made twice (a retried step) counts at its last time.
    marks.set(key, m.at - t0);
  }
  return { marks, total };
}

/** The steps of each build side by side (ordered by the first build's medians): when each was reached, and the step to it. */
function table(title: string, names: string[], sets: { marks: Map<string, number>; total: number }[][]): void {
  const keys = new Set<string>();
  for (const runs of sets) for (const r of runs) for (const k of r.marks.keys()) keys.add(k);
  const med = (runs: { marks: Map<string, number> }[], k: string): number => median(runs.map((r) => r.marks.get(k)).filter((x): x is number => x !== undefined));
  const order = (runs: { marks: Map<string, number> }[]): string[] => [...keys].map((k) => ({ k, at: med(runs, k) })).filter((x) => !Number.isNaN(x.at)).sort((a, b) => a.at - b.at).map((x) => x.k);
  const rows = [...new Set([...order(sets[0]!), ...sets.slice(1).flatMap(order)])];
  console.log(`${title} (ms since the CLI was spawned, medians of ${sets.map((r) => r.length).join(' / ')} runs)`);
  console.log(`  ${'step'.padEnd(44)}${names.map((n) => `${`${n}: at`.padStart(14)} ${'step'.padStart(6)}`).join('')}`);
  const before = sets.map(() => 0);
  for (const k of rows) {
    const cols = sets.map((runs, i) => {
      const at = med(runs, k);
      if (Number.isNaN(at)) return `${'-'.padStart(14)} ${''.padStart(6)}`;
      const step = at - before[i]!;
      before[i] = at;
      return `${at.toFixed(0).padStart(14)} ${step.toFixed(0).padStart(6)}`;
    });
    console.log(`  ${k.padEnd(44)}${cols.join('')}`);
  }
  const totals = sets.map((runs, i) => {
    const t = median(runs.map((r) => r.total));
    return `${t.toFixed(0).padStart(14)} ${(t - before[i]!).toFixed(0).padStart(6)}`;
  });
  console.log(`  ${'run exited (create..delete)'.padEnd(44)}${totals.join('')}`);
}

function main(): void {
  const work = mkdtempSync(join(tmpdir(), 'stockade-vm-trace-'));
  try {
    const state = join(work, 'state');
    const bundle = join(work, 'true');
    mkdirSync(bundle);
    makeRootfs(join(bundle, 'rootfs'));
    execFileSync(here, ['spec', '--bundle', bundle]);
    const c = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[] } };
    c.process.terminal = false;
    c.process.args = ['/bin/true'];
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(c));
    const builds = [{ name: 'this build', stockade: here }, ...(otherDir === undefined ? [] : [{ name: `the build in ${otherDir}`, stockade: join(otherDir, 'bin', 'stockade') }])];
    const NO_POOL = { STOCKADE_VM_POOL: '0' };
    const runs = builds.map(() => ({ fromTemplate: [] as ReturnType<typeof traced>[], cold: [] as ReturnType<typeof traced>[] }));
    for (const [b, build] of builds.entries()) {
      const tmpl = JSON.parse(execFileSync(build.stockade, ['vm-template', '--json'], { encoding: 'utf8' })) as { key: string; built: boolean };
      console.log(`${build.name}: template ${tmpl.key}${tmpl.built ? ' (built now)' : ''}`);
      traced(build.stockade, join(state, String(b)), bundle, 'warm-up', NO_POOL, work);
    }
    console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    for (let i = 0; i < rounds; i++) {
      for (const [b, build] of builds.entries()) {
        runs[b]!.fromTemplate.push(traced(build.stockade, join(state, String(b)), bundle, `tmpl-${i}`, NO_POOL, work));
        if (withCold) runs[b]!.cold.push(traced(build.stockade, join(state, String(b)), bundle, `cold-${i}`, { STOCKADE_VM_TEMPLATE: '0' }, work));
      }
    }
    builds.forEach((b, i) => console.log(`build ${i === 0 ? 'A' : 'B'}: ${b.name}`));
    // VM_TRACE_RAW=1: every run's marks, in the order they came.
    if (process.env['VM_TRACE_RAW'] === '1') {
      for (const [i, r] of runs.entries()) {
        for (const run of [...r.fromTemplate, ...r.cold]) console.log(`${i === 0 ? 'A' : 'B'} ${run.total}: ${[...run.marks].sort((x, y) => x[1] - y[1]).map(([k, v]) => `${k.replace(/^(cli|keeper): /, '')} ${v}`).join(' | ')}`);
      }
    }
    const names = builds.map((_, i) => (i === 0 ? 'A' : 'B'));
    table('vm run of true, from the template', names, runs.map((r) => r.fromTemplate));
    if (withCold) {
      table('vm run of true, booted cold', names, runs.map((r) => r.cold));
      for (const [i, r] of runs.entries()) console.log(`${names[i]}: from the template / cold, whole run: ${(median(r.fromTemplate.map((x) => x.total)) / median(r.cold.map((x) => x.total))).toFixed(3)}x`);
    }
    console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main();
