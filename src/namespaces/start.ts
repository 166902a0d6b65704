// start at a host-process level: the container's stockade-init waits on the start socket; connecting releases it.
import { connect } from 'node:net';
import { closeSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { StockadeError } from '../errors';
import { initError } from '../native/launcher';
import { MSG, MessageReader, encodeMessage } from '../native/protocol';
import type { LevelContainer } from '../container/level';
import { START_SOCKET } from '../container/state-store';

const SUN_PATH_MAX = 107;

/** Releases the container; rejects with stockade-init's error when its startContainer hooks or exec failed. */
export async function releaseStart(c: LevelContainer, hookState: Buffer | undefined): Promise<void> {
  const path = c.store.startSocket(c.id);
  // sun_path holds 107 bytes; a long --root is reached through a directory fd instead.
  let dirFd = -1;
  let target = path;
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    dirFd = openSync(dirname(path), 'r');
    target = `/proc/self/fd/${dirFd}/${START_SOCKET}`;
  }
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const sock = connect({ path: target });
      const reader = new MessageReader();
      let failure: StockadeError | undefined;
      sock.on('connect', () => {
        // The status reads "running" from here on; a second start finds no socket and is refused.
        rmSync(path, { force: true });
        sock.write(encodeMessage(MSG.START, hookState));
      });
      sock.on('data', (chunk: Buffer) => {
        for (const m of reader.push(chunk)) if (m.type === 'error') failure = initError(m);
      });
      sock.on('error', (e) => reject(new StockadeError('SYSTEM', `cannot reach the container's start socket: ${e.message}`, { path })));
      sock.on('close', () => (failure === undefined ? resolvePromise() : reject(failure)));
    });
  } finally {
    if (dirFd >= 0) closeSync(dirFd);
  }
}
