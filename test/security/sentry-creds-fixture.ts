// The attacker of the sentry-caps-* and sentry-dotdot-* tests (test/fixtures/sentry-creds-attack.c), built static, and the bundles it runs in.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sentryNative } from '../../src/native/addon';
import { packageRoot } from '../../src/native/paths';
import type { Spec } from '../../src/oci/spec';
import { integrationSkip, json, probeSpec, type Result, type Runtime } from '../integration/harness';

const FIXTURES = join(packageRoot(), 'test', 'fixtures');
const SOURCE = join(FIXTURES, 'sentry-creds-attack.c');
const BINARY = join(FIXTURES, 'bin', 'sentry-creds-attack');

function compilerSkip(): string | undefined {
  const r = spawnSync(process.env['CC'] ?? 'gcc', ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'the attacker is built with gcc -static, which is not available';
}

function notificationSkip(): string | undefined {
  const sizes = sentryNative().notifSizes();
  return typeof sizes === 'number' ? `seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: ${sizes})` : undefined;
}

export const skip = integrationSkip() ?? compilerSkip() ?? notificationSkip();

/** Builds the attacker when its source is newer, under a private name renamed into place. */
export function buildAttacker(): string {
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return BINARY;
  mkdirSync(join(FIXTURES, 'bin'), { recursive: true });
  const tmp = `${BINARY}.${process.pid}.tmp`;
  try {
    execFileSync(process.env['CC'] ?? 'gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, SOURCE]);
    renameSync(tmp, BINARY);
  } finally {
    rmSync(tmp, { force: true });
  }
  return BINARY;
}

export type Level = 'sentry' | 'namespaces';

/**
 * A writable rootfs with the attacker at /bin/attack (and a setuid-root copy at /bin/suid-attack),
 * /etc/shadow mode 0000: root reads it only with CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH.
 */
export function attackSpec(args: string[], mutate?: (s: Spec) => void): (p: { rootfs: string }) => Spec {
  return ({ rootfs }) => {
    copyFileSync(BINARY, join(rootfs, 'bin', 'attack'));
    chmodSync(join(rootfs, 'bin', 'attack'), 0o755);
    copyFileSync(BINARY, join(rootfs, 'bin', 'suid-attack'));
    chmodSync(join(rootfs, 'bin', 'suid-attack'), 0o4755);
    writeFileSync(join(rootfs, 'etc', 'shadow'), 'root:$6$secret-hash:19000:0:99999:7:::\n', { mode: 0o000 });
    chmodSync(join(rootfs, 'etc', 'shadow'), 0o000);
    return probeSpec(['/bin/attack', ...args], (s) => {
      s.root = { path: 'rootfs', readonly: false };
      mutate?.(s);
    });
  };
}

let runs = 0;

/** Runs a bundle to its end at `level`: the attacker's one JSON line. */
export function runAt<T>(rt: Runtime, level: Level, spec: (p: { rootfs: string }) => Spec, what: string): T {
  const b = rt.bundle(spec);
  const r: Result = rt.run(['--isolation', level, 'run', '--bundle', b.dir, `creds-${process.pid}-${runs++}`], { timeout: 60_000 });
  assert.equal(r.signal, null, `${what} (${level}): killed; stderr ${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, `${what} (${level}): exit ${r.status ?? ''}; stdout ${r.stdout.slice(0, 1000)} stderr ${r.stderr.slice(-2000)}`);
  return json<T>(r.stdout.trim());
}
