// npm test: every test file under node:test, then every skip printed with its reason, and the run
// failed on a skip whose reason is not an accepted machine limit (test/accepted-skips.ts).
//
// Usage: node dist-test/test/ci/run-suite.js [FILE.test.js ...]   (every dist-test/test/**/*.test.js by default)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { acceptedSkip } from '../accepted-skips';

interface Skip { file: string; path: string[]; reason: string }

const distTest = join(__dirname, '..');

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

function main(): number {
  const files = process.argv.length > 2 ? process.argv.slice(2) : testFiles(distTest);
  const dir = mkdtempSync(join(tmpdir(), 'stockade-test-skips-'));
  const skipsFile = join(dir, 'skips.jsonl');
  try {
    const r = spawnSync(process.execPath, [
      // A test that hangs (a lost signal, a daemon that never answers) fails after ten minutes
      // rather than holding CI forever; the whole suite takes five here.
      '--test', '--test-concurrency=1', '--test-timeout=600000',
      '--test-reporter=spec', '--test-reporter-destination=stdout',
      `--test-reporter=${join(__dirname, 'skip-reporter.js')}`, `--test-reporter-destination=${skipsFile}`,
      ...files,
    ], { stdio: 'inherit' });
    if (r.error !== undefined) throw r.error;
    let text = '';
    try { text = readFileSync(skipsFile, 'utf8'); } catch { /* no skip at all: the reporter wrote nothing */ }
    const skips = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Skip);
    const unaccepted = reportSkips(skips, process.cwd(), (s) => process.stdout.write(s));
    if (r.status !== 0) return r.status ?? 1;
    return unaccepted > 0 ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) process.exitCode = main();
