// start at a host-process level: the container's stockade-init waits on the start socket; connecting releases it.
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { closeSync, rmSync, writeSync } from 'node:fs';
import { StockadeError } from '../errors';
import { unixConnect } from '../native/addon';
import { initError } from '../native/launcher';
import { MSG, MessageReader, encodeMessage } from '../native/protocol';
import type { LevelContainer } from '../container/level';

/**
 * Releases the container from another process: the planner's front (src/planner/), so that the
 * moment the workload starts is decided where the call lives. Resolves with the connect's errno
 * (0 once connected) and every byte stockade-init sent until it closed the connection.
 */
export type StartReleaser = (path: string, hookState: Buffer | undefined) => Promise<{ errno: number; data: Buffer }>;

let releaser: StartReleaser | undefined;

/** The planner's, for the call it serves; undefined restores connecting from this process. */
export function setStartReleaser(r: StartReleaser | undefined): void {
  releaser = r;
}

function startError(data: Buffer): StockadeError | undefined {
  const reader = new MessageReader();
  let failure: StockadeError | undefined;
  for (const m of reader.push(data)) if (m.type === 'error') failure = initError(m);
  return failure;
}

/** Releases the container; rejects with stockade-init's error when its startContainer hooks or exec failed. */
export async function releaseStart(c: LevelContainer, hookState: Buffer | undefined): Promise<void> {
  const path = c.store.startSocket(c.id);
  if (releaser !== undefined) {
    const r = await releaser(path, hookState);
    if (r.errno !== 0) {
      const name = Object.entries(osConstants.errno).find(([, v]) => v === r.errno)?.[0] ?? `errno ${r.errno}`;
      throw new StockadeError('SYSTEM', `cannot reach the container's start socket: connect ${name} ${path}`, { path });
    }
    const failure = startError(r.data);
    if (failure !== undefined) throw failure;
    return;
  }
  // Connected and MSG_START written in one synchronous stretch, never across a turn of the event
  // loop: stockade-init gives a connection 5 s to say START before it drops it and takes the next
  // (a client that connects and says nothing must not hold up the real start). An asynchronous
  // connect's callback came later than that when other work of this process held the loop (the SDK
  // creating 50 sandboxes at once on a loaded host, each mounting its overlay with execFileSync):
  // the init had dropped the connection, the write met EPIPE, and the container never started.
  let fd: number;
  try {
    fd = unixConnect(path); // any length of path: the addon reaches a long one through its directory
  } catch (e) {
    throw new StockadeError('SYSTEM', `cannot reach the container's start socket: ${(e as Error).message}`, { path }, { cause: e });
  }
  try {
    const frame = encodeMessage(MSG.START, hookState);
    for (let off = 0; off < frame.length;) off += writeSync(fd, frame, off);
  } catch (e) {
    closeSync(fd);
    throw new StockadeError('SYSTEM', `cannot reach the container's start socket: ${(e as Error).message}`, { path }, { cause: e });
  }
  // The status reads "running" from here on; a second start finds no socket and is refused.
  rmSync(path, { force: true });
  // What comes back is an error frame (a startContainer hook or the exec failed), or nothing: the
  // connection closes at the execve.
  await new Promise<void>((resolvePromise, reject) => {
    const sock = new Socket({ fd, readable: true, writable: false });
    const reader = new MessageReader();
    let failure: StockadeError | undefined;
    sock.on('data', (chunk: Buffer) => {
      for (const m of reader.push(chunk)) if (m.type === 'error') failure = initError(m);
    });
    sock.on('error', (e) => reject(new StockadeError('SYSTEM', `the container's start socket failed after start: ${e.message}`, { path })));
    sock.on('close', () => (failure === undefined ? resolvePromise() : reject(failure)));
  });
}
