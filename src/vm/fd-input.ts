// Reads an inherited fd (stdin), or a stream the SDK writes, to its end with back-pressure, without holding a thread-pool thread.
//
// A read of a pipe or terminal in libuv's thread pool blocks that thread until data comes, and
// Node's exit joins the pool's threads: a keeper whose client never closed its stdin hung in
// exit() for good after its workload ended. Pipes, sockets and terminals are read through
// libuv's handles (epoll) instead; files and /dev/null, whose reads never block, as a stream.
import { createReadStream, fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import { isatty, ReadStream } from 'node:tty';
import type { Readable } from 'node:stream';

/** Hands each chunk on and reads the next once it was taken; onEnd at EOF or on an error. */
export function readInput(input: number | Readable, onChunk: (b: Buffer) => Promise<void>, onEnd: () => void): () => void {
  const stream = typeof input === 'number' ? fdStream(input) : input;
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  stream.on('data', (b: Buffer) => {
    stream.pause();
    void onChunk(b).then(() => stream.resume(), end);
  });
  stream.on('end', end);
  stream.on('error', end);
  return () => {
    ended = true;
    stream.destroy();
  };
}

/** A stream of the fd, read as described above. */
function fdStream(fd: number): Readable {
  const st = fstatSync(fd);
  if (st.isFIFO() || st.isSocket()) return new Socket({ fd, readable: true, writable: false });
  if (isatty(fd)) return new ReadStream(fd);
  return createReadStream('', { fd, autoClose: false });
}
