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
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRootfs } from '../test/helpers/rootfs';

const rounds = Number(process.argv[2] ?? 3);
const withCold = process.env['VM_TRACE_COLD'] === '1';
const stockade = join(process.cwd(), 'bin', 'stockade');

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
function traced(state: string, bundle: string, id: string, env: Record<string, string>, dir: string): { marks: Map<string, number>; total: number } {
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

function table(title: string, runs: { marks: Map<string, number>; total: number }[]): void {
  const keys = new Set<string>();
  for (const r of runs) for (const k of r.marks.keys()) keys.add(k);
  const rows = [...keys].map((k) => ({ k, at: median(runs.map((r) => r.marks.get(k)).filter((x): x is number => x !== undefined)) }));
  rows.sort((a, b) => a.at - b.at);
  console.log(`${title} (${runs.length} runs; ms since the CLI was spawned, medians)`);
  console.log(`  ${'step'.padEnd(44)} ${'at'.padStart(7)} ${'step'.padStart(7)}`);
  let before = 0;
  for (const { k, at } of rows) {
    console.log(`  ${k.padEnd(44)} ${at.toFixed(0).padStart(7)} ${(at - before).toFixed(0).padStart(7)}`);
    before = at;
  }
  console.log(`  ${'run exited (create..delete)'.padEnd(44)} ${median(runs.map((r) => r.total)).toFixed(0).padStart(7)} ${(median(runs.map((r) => r.total)) - before).toFixed(0).padStart(7)}`);
}

function main(): void {
  const work = mkdtempSync(join(tmpdir(), 'stockade-vm-trace-'));
  try {
    const state = join(work, 'state');
    const bundle = join(work, 'true');
    mkdirSync(bundle);
    makeRootfs(join(bundle, 'rootfs'));
    execFileSync(stockade, ['spec', '--bundle', bundle]);
    const c = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[] } };
    c.process.terminal = false;
    c.process.args = ['/bin/true'];
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(c));
    const tmpl = JSON.parse(execFileSync(stockade, ['vm-template', '--json'], { encoding: 'utf8' })) as { key: string; built: boolean };
    console.log(`template ${tmpl.key}${tmpl.built ? ' (built now)' : ''}; load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const NO_POOL = { STOCKADE_VM_POOL: '0' };
    traced(state, bundle, 'warm-up', NO_POOL, work);
    const fromTemplate: ReturnType<typeof traced>[] = [];
    const cold: ReturnType<typeof traced>[] = [];
    for (let i = 0; i < rounds; i++) {
      fromTemplate.push(traced(state, bundle, `tmpl-${i}`, NO_POOL, work));
      if (withCold) cold.push(traced(state, bundle, `cold-${i}`, { STOCKADE_VM_TEMPLATE: '0' }, work));
    }
    table('vm run of true, from the template', fromTemplate);
    if (withCold) {
      table('vm run of true, booted cold', cold);
      console.log(`from the template / cold, whole run: ${(median(fromTemplate.map((r) => r.total)) / median(cold.map((r) => r.total))).toFixed(3)}x`);
    }
    console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main();
