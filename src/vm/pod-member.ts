// The keeper of a pod's later container: it stands for the container's workload (as every keeper does) while the pod's VM, held by the sandbox's keeper, runs it.
//
// It asks the sandbox's keeper to make the container in the pod's VM (pod-host.ts), then relays
// the workload's stdio over that connection, serves the CLI on its own vm.sock by passing each
// request on to the sandbox's socket with `container: ID`, forwards the signals it gets, and exits
// with the workload's status. The connection is its lifeline: closed without an exit status (the
// pod's VM ended), the keeper says why and exits 255; killed (delete), its container goes too.
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join, relative } from 'node:path';
import { FORWARDED_SIGNALS, SIGNALS } from '../abi/linux/constants';
import type { ExitStatus } from './agent-client';
import { readInput } from './fd-input';
import { FdWriter, KEEPER_VM_FAILED, exitAs, followWindow, joinCgroups, openHostTerminal, tellCreate } from './keeper-common';
import { connectKeeper, keeperNotify, keeperRequest } from './keeper-client';
import {
  FRAME, FrameReader, KEEPER_EXITED, KEEPER_LOG, KEEPER_SOCKET, MAX_FRAME, encodeFrame, parseRequest,
  type KeeperConfig, type KeeperReply, type PodMembership,
} from './keeper-wire';

export async function runPodMember(cfg: KeeperConfig, pod: PodMembership): Promise<void> {
  const log = (line: string): void => {
    try {
      appendFileSync(join(cfg.stateDir, KEEPER_LOG), `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
    } catch { /* the state directory went */ }
  };
  let stdout = new FdWriter(1);
  let stderr = new FdWriter(2);
  // A terminal: a host pty whose master goes to the client, as any vm container's (keeper-common.ts).
  let tty: ReturnType<typeof openHostTerminal> | undefined;
  let exiting = false;
  let server: import('node:net').Server | undefined;
  const finish = async (st: ExitStatus, error?: string): Promise<void> => {
    if (exiting) return;
    exiting = true;
    writeFileSync(join(cfg.stateDir, KEEPER_EXITED), JSON.stringify(error === undefined ? st : { ...st, error }), { mode: 0o600 });
    server?.close();
    log(error !== undefined ? `the pod's VM failed: ${error}` : `exited: ${st.signal !== null ? `signal ${st.signal}` : `status ${st.code}`}`);
    await Promise.all([stdout.drained(), stderr.drained()]);
    await exitAs(st);
  };
  const ask = (req: Parameters<typeof keeperRequest>[2], timeoutMs?: number): Promise<KeeperReply & { ok: true }> =>
    keeperRequest(pod.sandboxDir, pod.sandboxId, req, timeoutMs);

  joinCgroups(cfg.cgroupPaths);
  if (cfg.spec.process?.terminal === true) {
    try {
      if (cfg.consoleSocket === undefined) throw new Error('a terminal process needs --console-socket');
      tty = openHostTerminal(cfg.consoleSocket);
    } catch (e) {
      tellCreate(`error ${(e as Error).message}`);
      process.exit(1);
    }
    stdout = new FdWriter(tty.fd);
    stderr = stdout;
  }
  // A signal before the container exists ends the create, as for any keeper.
  for (const name of FORWARDED_SIGNALS) {
    process.on(name, () => {
      if (!exiting) void keeperNotify(pod.sandboxDir, pod.sandboxId, { op: 'signal', signal: SIGNALS[name], all: false, container: cfg.id }).catch(() => undefined);
    });
  }
  const conn = await connectKeeper(pod.sandboxDir, pod.sandboxId);
  const reader = new FrameReader();
  let created = false;
  const ready = new Promise<void>((resolve, reject) => {
    conn.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (e) {
        conn.destroy();
        reject(e);
        return;
      }
      for (const f of frames) {
        if (f.kind === FRAME.REPLY) {
          const r = JSON.parse(f.payload.toString('utf8')) as KeeperReply;
          if (!created) {
            if (r.ok) {
              created = true;
              resolve();
            } else reject(new Error(r.error));
          } else if (!r.ok) void finish({ code: KEEPER_VM_FAILED, signal: null }, `the pod's VM ended (sandbox ${pod.sandboxId}): ${r.error}`);
        } else if (f.kind === FRAME.STDOUT) void stdout.write(Buffer.from(f.payload));
        else if (f.kind === FRAME.STDERR) void stderr.write(Buffer.from(f.payload));
        else if (f.kind === FRAME.EXIT) {
          const st = JSON.parse(f.payload.toString('utf8')) as ExitStatus;
          void finish({ code: st.code, signal: st.signal });
        }
      }
    });
    conn.on('error', () => undefined);
    conn.on('close', () => {
      if (!created) reject(new Error(`the pod's sandbox ${pod.sandboxId} closed the connection without making the container`));
      // Fail closed: the pod's VM (or its keeper) is gone, and the workload with it.
      else void finish({ code: KEEPER_VM_FAILED, signal: null }, `the pod's VM ended (its sandbox ${pod.sandboxId}'s keeper closed the connection)`);
    });
  });
  conn.write(encodeFrame(FRAME.REQUEST, {
    op: 'pod-create',
    member: {
      id: cfg.id, stateDir: cfg.stateDir, bundle: cfg.bundle, spec: cfg.spec, rootfs: cfg.rootfs, readonlyRoot: cfg.readonlyRoot,
      binds: cfg.binds, noPivot: cfg.noPivot, noNewKeyring: cfg.noNewKeyring, joinPod: pod.joinPod,
    },
  }));
  try {
    await ready;
  } catch (e) {
    const msg = (e as Error).message.replace(/\n/g, ' ');
    log(`create failed: ${msg}`);
    tellCreate(`error ${msg}`);
    process.exit(1);
  }

  const startStdin = (): void => {
    const send = (b: Buffer): Promise<void> => new Promise((resolve) => {
      if (conn.destroyed) return resolve();
      const parts: Buffer[] = [];
      for (let o = 0; o < b.length; o += MAX_FRAME) parts.push(encodeFrame(FRAME.STDIN, b.subarray(o, o + MAX_FRAME)));
      if (conn.write(Buffer.concat(parts))) resolve();
      else conn.once('drain', () => resolve());
    });
    const t = tty;
    if (t === undefined) {
      readInput(0, send, () => void send(Buffer.alloc(0)));
      return;
    }
    t.slave.on('data', (b: Buffer) => {
      t.slave.pause();
      void send(b).then(() => t.slave.resume());
    });
    t.slave.on('error', () => undefined);
    t.slave.resume();
    followWindow(t.fd, (rows, cols) => {
      if (!conn.destroyed) conn.write(encodeFrame(FRAME.RESIZE, { rows, cols }));
    });
  };

  // The CLI's requests, passed on to the sandbox's keeper naming this container.
  server = createServer((sock) => serve(sock, cfg.id, pod, ask, startStdin, log));
  server.on('error', (e) => log(`control socket: ${e.message}`));
  process.chdir(cfg.stateDir);
  const umask = process.umask(0o177);
  await new Promise<void>((resolve, reject) => {
    server?.once('error', reject);
    server?.listen(KEEPER_SOCKET, () => resolve());
  });
  process.umask(umask);
  log(`created in the pod's VM (sandbox ${pod.sandboxId}, ${relative(cfg.stateDir, pod.sandboxDir)})`);
  tellCreate('ok');
}

function serve(
  sock: Socket, id: string, pod: PodMembership, ask: (req: Parameters<typeof keeperRequest>[2]) => Promise<KeeperReply & { ok: true }>,
  startStdin: () => void, log: (line: string) => void,
): void {
  const reader = new FrameReader();
  let up: Socket | undefined;
  let pending: Buffer[] = [];
  sock.on('error', () => undefined);
  sock.on('close', () => up?.destroy());
  sock.on('data', (chunk: Buffer) => {
    let frames;
    try {
      frames = reader.push(chunk);
    } catch (e) {
      log((e as Error).message);
      sock.destroy();
      return;
    }
    for (const f of frames) {
      if (up !== undefined) {
        up.write(encodeFrame(f.kind, f.payload));
        continue;
      }
      if (pending.length > 0 || f.kind !== FRAME.REQUEST) {
        // Frames after the request, before the sandbox's socket is open: kept in order.
        pending.push(encodeFrame(f.kind, f.payload));
        continue;
      }
      let req;
      try {
        req = parseRequest(f.payload);
      } catch (e) {
        sock.end(encodeFrame(FRAME.REPLY, { ok: false, error: (e as Error).message }));
        return;
      }
      if (req.op === 'pod-create') {
        sock.end(encodeFrame(FRAME.REPLY, { ok: false, error: 'pod-create goes to the pod\'s sandbox' }));
        return;
      }
      const named = { ...req, container: id };
      if (named.op === 'start') {
        // Its stdin flows once it runs, as any keeper's does.
        void ask(named).then((r) => {
          startStdin();
          sock.end(encodeFrame(FRAME.REPLY, r));
        }, (e: unknown) => sock.end(encodeFrame(FRAME.REPLY, { ok: false, error: (e as Error).message.replace(/^container \S+: start: /, '') })));
        return;
      }
      // Anything else (exec with its streams, signal, pids, stats, update): the sandbox's keeper answers it whole.
      sock.pause();
      pending = [encodeFrame(FRAME.REQUEST, named)];
      void connectKeeper(pod.sandboxDir, pod.sandboxId).then((u) => {
        up = u;
        u.on('error', () => undefined);
        u.on('close', () => sock.end());
        u.pipe(sock, { end: false });
        for (const b of pending) u.write(b);
        pending = [];
        sock.resume();
      }, (e: unknown) => sock.end(encodeFrame(FRAME.REPLY, { ok: false, error: (e as Error).message })));
    }
  });
}
