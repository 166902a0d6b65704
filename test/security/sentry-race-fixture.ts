// The racing workload of the sentry's attack tests (test/fixtures/sentry-race.c), built with gcc -static and run under `stockade do`.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sentryNative } from '../../src/native/addon';
import { packageRoot } from '../../src/native/paths';
import { processesMarked } from '../helpers/run-scope';
import { STOCKADE, integrationSkip, json, type Result, type Runtime, checkoutShare } from '../integration/harness';

const FIXTURES = join(packageRoot(), 'test', 'fixtures');
const SOURCE = join(FIXTURES, 'sentry-race.c');
export const RACE = join(FIXTURES, 'bin', 'sentry-race');

function compilerSkip(): string | undefined {
  const r = spawnSync(process.env['CC'] ?? 'gcc', ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'the racer is built with gcc -static, which is not available';
}

function notificationSkip(): string | undefined {
  const sizes = sentryNative().notifSizes();
  return typeof sizes === 'number' ? `seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: ${sizes})` : undefined;
}

/** Why these tests cannot run here, or undefined. */
export function raceSkip(): string | undefined {
  return integrationSkip() ?? compilerSkip() ?? notificationSkip();
}

/** Builds the racer when its source is newer, under a private name renamed into place (as build.sh does). */
export function buildRace(): string {
  if (existsSync(RACE) && statSync(RACE).mtimeMs >= statSync(SOURCE).mtimeMs) return RACE;
  mkdirSync(join(FIXTURES, 'bin'), { recursive: true });
  const tmp = `${RACE}.${process.pid}.tmp`;
  try {
    execFileSync(process.env['CC'] ?? 'gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, SOURCE]);
    renameSync(tmp, RACE);
  } finally {
    rmSync(tmp, { force: true });
  }
  return RACE;
}

export type Level = 'sentry' | 'namespaces';

/**
 * `stockade do --isolation LEVEL -- sentry-race ARGS` from / (the cwd is bound into the container,
 * read-only: / keeps the container's fresh /tmp writable), with `env` added for the call. As
 * Runtime.run, but killed with SIGKILL at its timeout: an attached do waits for its sentry, and a
 * sentry that is wedged (what these tests look for) would keep a SIGTERM'd do, and the test, waiting.
 */
export function race(rt: Runtime, level: Level, args: readonly string[], opts: { env?: Record<string, string>; timeout?: number } = {}): Result {
  const dir = join(rt.root, '..');
  const tag = `race-${process.pid}-${Date.now()}`;
  const outPath = join(dir, `${tag}.out`);
  const errPath = join(dir, `${tag}.err`);
  const outFd = openSync(outPath, 'w+');
  const errFd = openSync(errPath, 'w+');
  try {
    const r = spawnSync(STOCKADE, ['--root', rt.root, '--log', rt.log, '--log-format', 'json', 'do', ...checkoutShare(), '--isolation', level, '--', RACE, ...args], {
      stdio: ['ignore', outFd, errFd], timeout: opts.timeout ?? 60_000, killSignal: 'SIGKILL', cwd: '/', env: { ...process.env, ...opts.env },
    });
    return { status: r.status, signal: r.signal, stdout: readFileSync(outPath, 'utf8'), stderr: readFileSync(errPath, 'utf8') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(outPath, { force: true });
    rmSync(errPath, { force: true });
  }
}

/** Ends this runtime's sentries that outlived their do (a wedged one does), by pid: for the suite's after(). */
export function endOwnSentries(rt: Runtime): void {
  for (const p of processesMarked(rt.root)) {
    if (!p.cmdline.includes('stockade-sentryd')) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
}

/** The racer's one JSON line, after checking it ran to its end and was not killed. */
export function report<T>(r: Result, what: string): T {
  assert.equal(r.signal, null, `${what}: stockade was killed (${r.signal ?? ''}), so it did not end by itself; stdout: ${r.stdout.slice(0, 500)} stderr: ${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, `${what}: exit ${r.status ?? ''}; stdout: ${r.stdout.slice(0, 1000)} stderr: ${r.stderr.slice(-2000)}`);
  return json<T>(r.stdout.trim());
}

export interface Counts { counts: Record<string, number> }

export const show = (x: unknown): string => JSON.stringify(x);
