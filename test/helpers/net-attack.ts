// The network attacker (test/fixtures/net-attack.c), built once with gcc -static for every suite that runs it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';

const FIXTURES = join(packageRoot(), 'test', 'fixtures');
const SOURCE = join(FIXTURES, 'net-attack.c');
export const NET_ATTACK = join(FIXTURES, 'bin', 'net-attack');

export function netAttackCompilerSkip(): string | undefined {
  const r = spawnSync(process.env['CC'] ?? 'gcc', ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'the attacker is built with gcc -static, which is not available';
}

export function buildNetAttack(): string {
  if (existsSync(NET_ATTACK) && statSync(NET_ATTACK).mtimeMs >= statSync(SOURCE).mtimeMs) return NET_ATTACK;
  mkdirSync(join(FIXTURES, 'bin'), { recursive: true });
  const tmp = `${NET_ATTACK}.${process.pid}.tmp`;
  try {
    execFileSync(process.env['CC'] ?? 'gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, SOURCE]);
    renameSync(tmp, NET_ATTACK);
  } finally {
    rmSync(tmp, { force: true });
  }
  return NET_ATTACK;
}
