// start: releases a created container through its start socket and reports an exec failure.
import { connect } from 'node:net';
import { closeSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { StockadeError } from '../errors';
import { initError } from '../native/launcher';
import { MSG, MessageReader, encodeMessage } from '../native/protocol';
import { encodeState, hookState, runHooksWarning, type Warn } from './hooks';
import type { ContainerId } from './id';
import { assertCanPerform } from './status';
import { START_SOCKET, type StateStore } from './state-store';
import { mark } from '../log/timing';

const SUN_PATH_MAX = 107;

export interface StartOptions {
  /** Where a failing poststart hook is reported. */
  warn?: Warn | undefined;
}

export async function startContainer(store: StateStore, id: ContainerId, opts: StartOptions = {}): Promise<void> {
  const lock = await store.lock(id);
  try {
    const record = store.read(id);
    assertCanPerform('start', store.status(id, record), id);
    const spec = store.readConfig(id);
    const socket = store.startSocket(id);
    // The container cannot know its host pid or bundle: its startContainer hooks get their state from here.
    const startState = (spec.hooks?.startContainer ?? []).length > 0 ? encodeState(hookState(record, 'created')) : undefined;
    // The status reads "running" from here on; a second start finds no socket and is refused.
    mark('start locked');
    await release(socket, startState);
    mark('released');
    await runHooksWarning(spec, 'poststart', hookState(record, 'running'), opts.warn);
  } finally {
    lock.release();
  }
}

async function release(path: string, startState: Buffer | undefined): Promise<void> {
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
        rmSync(path, { force: true });
        sock.write(encodeMessage(MSG.START, startState));
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
