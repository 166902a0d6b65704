// The network attacker (test/fixtures/net-attack.c) and the other static fixtures, built once with gcc -static for every suite that runs them.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';

const FIXTURES = join(packageRoot(), 'test', 'fixtures');
export const NET_ATTACK = join(FIXTURES, 'bin', 'net-attack');

export function netAttackCompilerSkip(): string | undefined {
  const r = spawnSync(process.env['CC'] ?? 'gcc', ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'the attacker is built with gcc -static, which is not available';
}

export function buildNetAttack(): string {
  return buildStaticFixture('net-attack');
}

/** Builds test/fixtures/NAME.c into test/fixtures/bin/NAME when its source is newer, under a private name renamed into place. */
export function buildStaticFixture(name: string): string {
  const source = join(FIXTURES, `${name}.c`);
  const out = join(FIXTURES, 'bin', name);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) return out;
  mkdirSync(join(FIXTURES, 'bin'), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(process.env['CC'] ?? 'gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, source]);
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}
