// npm test: every test file under node:test, then every skip printed with its reason, and the run
// failed on a skip whose reason is not an accepted machine limit (test/accepted-skips.ts).
// The CLI goes through the planner by default (docs/design/planner.md); the files that drive the
// CLI's calls the planner serves run a second time with STOCKADE_PLANNER=off (COLD_TOO), so the
// cold path stays tested by the same checks.
//
// Usage: node dist-test/test/ci/run-suite.js [FILE.test.js ...]   (every dist-test/test/**/*.test.js by default)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { acceptedSkip } from '../accepted-skips';

interface Skip { file: string; path: string[]; reason: string }
interface FileTime { file: string; ms: number }

const distTest = join(__dirname, '..');

/**
 * The files run a second time, cold: those whose tests make the calls the planner serves (create,
 * run, exec at namespaces) and check what a user sees of them: outputs, exit codes, --log lines,
 * state, hooks, fds, a long state path. The rest of the suite runs once, with the default.
 * bad-input and runc-parity (a minute between them) are not here: planner.test runs every bad
 * input and each command through both paths and compares them byte for byte.
 */
export const COLD_TOO = [
  'integration/lifecycle', 'integration/exec', 'integration/hooks',
  'integration/unguarded-input', 'integration/long-state-path', 'integration/do',
  'integration/sentry-lifecycle',
].map((f) => `${f}.test.js`);

/** The files of `files` that run a second time with the planner off (none when the whole run is off). */
export function coldPass(files: readonly string[], env: NodeJS.ProcessEnv): string[] {
  if (env['STOCKADE_PLANNER'] === 'off') return [];
  return files.filter((f) => COLD_TOO.some((c) => f.endsWith(`/${c}`)));
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

/** Prints the skips and returns how many are not accepted. */
export function reportSkips(skips: readonly Skip[], cwd: string, write: (s: string) => void): number {
  let unaccepted = 0;
  write(`\n# skips: ${skips.length}\n`);
  for (const s of skips) {
    const accepted = acceptedSkip(s.reason);
    if (accepted === undefined) unaccepted++;
    const verdict = accepted === undefined ? 'NOT AN ACCEPTED MACHINE LIMIT' : `accepted: ${accepted.why}`;
    write(`#   ${relative(cwd, s.file) || s.file}: ${s.path.join(' > ')}\n#     reason: ${s.reason === '' ? '(none given)' : s.reason}\n#     ${verdict}\n`);
  }
  if (unaccepted > 0) write(`# ${unaccepted} skip(s) for a reason that is not an accepted machine limit (test/accepted-skips.ts): the run fails\n`);
  return unaccepted;
}

/** Every file's wall time, slowest first, and the sum: where the suite's budget goes. */
export function reportDurations(times: readonly FileTime[], cwd: string, write: (s: string) => void): void {
  const sorted = [...times].sort((a, b) => b.ms - a.ms);
  const total = sorted.reduce((t, f) => t + f.ms, 0);
  write(`\n# time per file (${sorted.length} files, ${(total / 1000).toFixed(1)} s in all), slowest first:\n`);
  for (const f of sorted) write(`#   ${(f.ms / 1000).toFixed(1).padStart(7)} s  ${relative(cwd, f.file) || f.file}\n`);
}

function readLines<T>(file: string): T[] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { /* the reporter wrote nothing */ }
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T);
}

interface Pass { status: number | null; times: FileTime[]; skips: Skip[] }

function runPass(files: readonly string[], dir: string, env: NodeJS.ProcessEnv): Pass {
  const skipsFile = join(dir, `skips-${files.length}-${env['STOCKADE_PLANNER'] ?? 'default'}.jsonl`);
  const timesFile = join(dir, `times-${files.length}-${env['STOCKADE_PLANNER'] ?? 'default'}.jsonl`);
  const r = spawnSync(process.execPath, [
    // A test that hangs (a lost signal, a daemon that never answers) fails after ten minutes
    // rather than holding CI forever; the whole suite takes five here.
    '--test', '--test-concurrency=1', '--test-timeout=600000',
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    `--test-reporter=${join(__dirname, 'skip-reporter.js')}`, `--test-reporter-destination=${skipsFile}`,
    `--test-reporter=${join(__dirname, 'duration-reporter.js')}`, `--test-reporter-destination=${timesFile}`,
    ...files,
  ], { stdio: 'inherit', env });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, times: readLines<FileTime>(timesFile), skips: readLines<Skip>(skipsFile) };
}

function main(): number {
  const files = process.argv.length > 2 ? process.argv.slice(2) : testFiles(distTest);
  const dir = mkdtempSync(join(tmpdir(), 'stockade-test-skips-'));
  try {
    const passes = [runPass(files, dir, process.env)];
    const cold = coldPass(files, process.env);
    if (cold.length > 0) {
      process.stdout.write(`\n# again with STOCKADE_PLANNER=off (the cold path): ${cold.length} files\n`);
      const p = runPass(cold, dir, { ...process.env, STOCKADE_PLANNER: 'off' });
      passes.push({ ...p, times: p.times.map((t) => ({ ...t, file: `${t.file} (planner off)` })) });
    }
    reportDurations(passes.flatMap((p) => p.times), process.cwd(), (s) => process.stdout.write(s));
    const unaccepted = reportSkips(passes.flatMap((p) => p.skips), process.cwd(), (s) => process.stdout.write(s));
    const failed = passes.find((p) => p.status !== 0);
    if (failed !== undefined) return failed.status ?? 1;
    return unaccepted > 0 ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) process.exitCode = main();
