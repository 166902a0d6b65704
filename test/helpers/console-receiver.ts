// A console socket for tests: receives the pty master over SCM_RIGHTS (Python's socket module) and collects what the container writes.
import { spawn } from 'node:child_process';

export interface ConsoleReceiver {
  /** Everything the receiver printed: "listening", then the repr() of the pty output once it closes. */
  output(): string;
  stop(): void;
}

const RECEIVER = `
import socket, os, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print("listening", flush=True)
c, _ = s.accept(); msg, fds, _, _ = socket.recv_fds(c, 4096, 1)
out = b""
while True:
    try: b = os.read(fds[0], 4096)
    except OSError: break
    if not b: break
    out += b
print(repr(out), flush=True)
`;

export async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
}

/** Listens at path; resolves once the socket is bound. */
export async function startConsoleReceiver(path: string): Promise<ConsoleReceiver> {
  const child = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
  await until(() => text.includes('listening'));
  return { output: () => text, stop: () => { child.kill(); } };
}
