// Memory budgets of what waits while a sandbox runs, measured on this machine and checked against
// the numbers the design states (they were assertions in the integration tests; a budget depends
// on the machine, and a test's green should not):
//   - `stockade do` waiting in stockade-light: RSS under 4 MB (no Node process left);
//   - an idle sentry (a process of its own, `run --detach --isolation sentry`): under 8 MB of the
//     node binary still mapped, once it has given back what start-up touched;
//   - `stockade do` waiting in Node (STOCKADE_LIGHT=off): what it maps of the node binary drops
//     below half its peak once the container runs.
// Usage: sudo node dist-test/bench/idle-pages.js   (after npx tsc -p tsconfig.test.json; root: it makes containers)
import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { Runtime, exeMappedKb, probeSpec, runProcesses, waitFor } from '../test/integration/harness';

interface Row { what: string; measured: string; budget: string; ok: boolean }

async function lightWait(rt: Runtime): Promise<Row> {
  const child = rt.spawn(['do', '--isolation', 'sentry', '--', 'sh', '-c', 'echo ready; sleep 30']);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  try {
    await waitFor(() => out.includes('ready'), 10_000);
    await waitFor(() => readlinkSync(`/proc/${child.pid}/exe`).endsWith('/stockade-light'), 5000);
    const kb = Number(/^Rss:\s+(\d+)/m.exec(readFileSync(`/proc/${child.pid}/smaps_rollup`, 'utf8'))?.[1]);
    return { what: 'do, waiting in stockade-light: RSS', measured: `${kb} kB`, budget: '< 4096 kB', ok: kb < 4096 };
  } finally {
    child.kill('SIGTERM');
  }
}

async function idleSentry(rt: Runtime): Promise<Row> {
  const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'ls / > /dev/null; sleep 100']));
  const r = rt.run(['--isolation', 'sentry', 'run', '--detach', '--bundle', b.dir, 'bench-idle']);
  if (r.status !== 0) throw new Error(`run: ${r.stderr}`);
  try {
    const [p] = runProcesses('stockade-sentryd').filter((x) => x.cmdline.includes('"id":"bench-idle"'));
    if (p === undefined) throw new Error('no sentry process');
    // Its idle give-back comes a second after the last call; three are ample.
    await new Promise((res) => setTimeout(res, 3000));
    const kb = exeMappedKb(p.pid);
    return { what: 'idle sentry process: node binary mapped', measured: `${kb} kB`, budget: '< 8192 kB', ok: kb < 8192 };
  } finally {
    rt.run(['delete', '--force', 'bench-idle']);
  }
}

async function nodeWait(rt: Runtime): Promise<Row> {
  const child = rt.spawn(['do', '--isolation', 'sentry', '--', 'sh', '-c', 'sleep 6'], { STOCKADE_LIGHT: 'off' });
  const pid = child.pid ?? 0;
  const mapped = (): number => {
    try {
      return realpathSync(`/proc/${pid}/exe`).endsWith('/node') ? exeMappedKb(pid) : -1;
    } catch {
      return -1;
    }
  };
  let peak = 0;
  try {
    await waitFor(() => (peak = Math.max(peak, mapped())) > 20 * 1024, 5000);
    await new Promise((res) => setTimeout(res, 3000));
    const now = mapped();
    return { what: 'do, waiting in Node: node binary mapped, peak -> settled', measured: `${peak} -> ${now} kB`, budget: '< half the peak', ok: now >= 0 && now < peak / 2 };
  } finally {
    child.kill('SIGTERM');
  }
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench/idle-pages: run as root (it makes containers)\n');
    return 2;
  }
  const rt = new Runtime();
  const rows: Row[] = [];
  try {
    for (const m of [lightWait, idleSentry, nodeWait]) rows.push(await m(rt));
  } finally {
    rt.cleanup();
  }
  for (const r of rows) process.stdout.write(`${r.ok ? 'ok  ' : 'OVER'}  ${r.what}: ${r.measured} (budget ${r.budget})\n`);
  return rows.every((r) => r.ok) ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => { process.stderr.write(`bench/idle-pages: ${String(e)}\n`); process.exitCode = 2; });
