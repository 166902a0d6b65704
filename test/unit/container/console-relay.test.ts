// A pty master read as a piped exec's stdout (ptyPipes): all of what the slave's process wrote before it exited, then the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { once } from 'node:events';
import { ptyPipes } from '../../../src/container/console-relay';
import { openPty } from '../../../src/native/addon';

/** Runs `script` on a fresh pty's slave and reads the master through ptyPipes to its end. */
async function throughPty(script: string): Promise<{ out: string; ended: 'end' | 'close' }> {
  const { master, slave } = openPty();
  const child = spawn('/bin/sh', ['-c', script], { stdio: [slave, slave, slave] });
  // Only the child holds the slave now: its exit is the end of the master's output.
  closeSync(slave);
  const { stdio } = ptyPipes(master);
  let out = '';
  stdio.stdout.on('data', (b: Buffer) => { out += b.toString('latin1'); });
  const ended = await new Promise<'end' | 'close'>((resolve) => {
    stdio.stdout.once('end', () => resolve('end'));
    stdio.stdout.once('close', () => resolve('close'));
  });
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  stdio.stdin.destroy();
  return { out, ended };
}

test('output written right before the exit all arrives: libuv\'s POLLHUP end is read past to EIO', async () => {
  // 100 KB is more than the master's read buffer (4 KiB) holds: at the slave's close the kernel
  // still has most of it in the pty's flip buffers, and a short read with POLLHUP was libuv's end
  // of file (4 runs in 10 came short before the rest was read to EIO). 12 runs, each on its own pty.
  const size = 100_000;
  for (let i = 0; i < 8; i++) {
    const { out, ended } = await throughPty(`head -c ${size} /dev/zero | tr '\\0' x; echo END`);
    assert.equal(ended, 'end', `run ${i}: stdout ended, not destroyed`);
    assert.equal(out.length, size + 'END\r\n'.length, `run ${i}: ${out.length} bytes, ending ${JSON.stringify(out.slice(-12))}`);
    assert.ok(out.endsWith('xEND\r\n'), `run ${i}`);
  }
});

test('a last short line after a pause arrives, and the stream ends once the slave is closed', async () => {
  const { out, ended } = await throughPty('echo first; sleep 0.2; printf last');
  assert.equal(ended, 'end');
  assert.equal(out, 'first\r\nlast');
});
