// The scenario list each client runs under each runtime: what a user does with a container, checked from outside.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { MIN_GUEST_MIB, VMM_HEADROOM_MIB } from '../../src/vm/sizing';
import { cgroupFile, Unsupported } from './client';
import { describeResult, sleep, waitFor, type CmdResult } from './exec';
import type { ScenarioContext } from './suite';

export interface Scenario {
  /** Short, for container names and the matrix. */
  readonly id: string;
  readonly title: string;
  /** Part of the trimmed set that npm test runs (stockade only); the full run takes every scenario. */
  readonly trimmed: boolean;
  run(ctx: ScenarioContext): Promise<void>;
}

const MiB = 1024 * 1024;

/** GET http://127.0.0.1:port/ from the host: its body, or undefined when nothing answers yet. */
function httpGet(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/', timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve(body));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

function expectStatus(r: CmdResult, status: number): void {
  assert.equal(r.status, status, describeResult(r));
}

/**
 * busybox sh's prompt at the end of what the terminal shows, as root or as a user; its line
 * editor follows the prompt with a cursor position query (ESC [6n).
 */
const PROMPT = /[#$] (?:\x1b\[6n)?$/;

/** Whether a runtime state root holds a container directory with a state.json (root/[namespace/]id/state.json). */
function holdsState(root: string, depth = 3): boolean {
  if (!existsSync(root)) return false;
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (entry.isFile() && entry.name === 'state.json') return true;
    if (entry.isDirectory() && depth > 1 && holdsState(join(root, entry.name), depth - 1)) return true;
  }
  return false;
}

async function readCounter(file: string): Promise<number> {
  // From the host, through a bind-mounted directory: a paused container cannot be exec'd into,
  // and at vm the host's /proc/PID/root of the container's pid is the keeper's (the host's root).
  try {
    return Number(readFileSync(file, 'utf8').trim() || '0');
  } catch {
    return 0;
  }
}

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'run',
    title: 'run --rm: output, and the exit status passed through',
    trimmed: true,
    async run({ client, rt, name }) {
      const hi = await client.run(rt, name('echo'), ['echo', 'hi']);
      expectStatus(hi, 0);
      assert.equal(hi.stdout, 'hi\n', describeResult(hi));
      const three = await client.run(rt, name('exit'), ['sh', '-c', 'echo out; echo err >&2; exit 3']);
      expectStatus(three, 3);
      assert.match(three.stdout, /^out$/m, describeResult(three));
      assert.match(three.stderr, /^err$/m, describeResult(three));
    },
  },
  {
    id: 'exit-code',
    title: 'a detached container that exits non-zero: the client records the status',
    trimmed: false,
    async run({ client, rt, name }) {
      const n = name();
      await client.runDetached(rt, n, ['sh', '-c', 'sleep 0.5; exit 5']);
      await client.wait(n);
      assert.equal(await client.exitCode(n), 5);
    },
  },
  {
    id: 'detached',
    title: 'detached: exec with and without a tty, logs, stop, remove',
    trimmed: true,
    async run({ client, rt, name }) {
      const n = name();
      await client.runDetached(rt, n, ['sh', '-c', 'echo started; trap "echo got-term; exit 0" TERM; while true; do sleep 0.2; done']);
      await waitFor('the container to log', async () => ((await client.logs(n)).includes('started') ? true : undefined));
      assert.equal(await client.status(n), 'running');
      // The client really called the runtime asked for: its state root holds the container.
      assert.ok(holdsState(client.stateRoot(rt)), `no container state under ${client.stateRoot(rt)}`);

      const plain = await client.exec(n, ['sh', '-c', 'echo exec-$((1+1)); test -t 0 || echo no-tty']);
      expectStatus(plain, 0);
      assert.equal(plain.stdout, 'exec-2\nno-tty\n', describeResult(plain));
      expectStatus(await client.exec(n, ['sh', '-c', 'exit 4']), 4);

      const tty = await client.execTty(n, ['sh', '-c', 'tty; echo tty-ok; exit 6']);
      expectStatus(tty, 6);
      assert.match(tty.stdout, /\/dev\/pts\/\d+/, describeResult(tty));
      assert.match(tty.stdout, /tty-ok/, describeResult(tty));

      const t0 = Date.now();
      await client.stop(n, 10);
      assert.ok(Date.now() - t0 < 8000, `stop of a container that exits on SIGTERM took ${Date.now() - t0} ms`);
      assert.equal(await client.status(n), 'exited');
      assert.equal(await client.exitCode(n), 0);
      assert.match(await client.logs(n), /got-term/);
      await client.remove(n);
    },
  },
  {
    id: 'stop-kill',
    title: 'stop of a container that ignores SIGTERM: SIGKILL after the grace period',
    trimmed: true,
    async run({ client, rt, name }) {
      const n = name();
      await client.runDetached(rt, n, ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.2; done']);
      await waitFor('the trap to be set', async () => ((await client.logs(n)).includes('ready') ? true : undefined));
      const t0 = Date.now();
      await client.stop(n, 2);
      const took = Date.now() - t0;
      assert.ok(took >= 1800 && took < 15_000, `stop -t 2 took ${took} ms`);
      assert.equal(await client.status(n), 'exited');
      assert.equal(await client.exitCode(n), 137);
    },
  },
  {
    id: 'pause',
    title: 'pause freezes the container, unpause thaws it',
    trimmed: true,
    async run({ client, rt, name, scratch }) {
      const n = name();
      const count = join(scratch, 'count');
      await client.runDetached(rt, n, ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 0.1; done'], {
        binds: [{ host: scratch, container: '/data' }],
      });
      await waitFor('the counter to start', async () => ((await readCounter(count)) > 0 ? true : undefined));
      await client.pause(n);
      assert.equal(await client.status(n), 'paused');
      const frozen = await readCounter(count);
      await sleep(700);
      assert.equal(await readCounter(count), frozen, 'the counter advanced while paused');
      await client.unpause(n);
      assert.equal(await client.status(n), 'running');
      await waitFor('the counter to advance after unpause', async () => ((await readCounter(count)) > frozen ? true : undefined), 5000);
    },
  },
  {
    id: 'update',
    title: 'update of memory and CPU reaches the host cgroup files (at vm, in the full tier: the guest\'s RAM, through its balloon)',
    trimmed: true,
    async run({ client, rt, name, full }) {
      const n = name();
      // The full tier: 512 MiB, at vm a VM of its own size, booted cold (the template is of 256
      // MiB), with a balloon. npm test's trimmed tier keeps the template's size (a clone: ~40 s
      // less per client; vm-level.test.ts checks the balloon through the CLI there).
      const balloon = full && rt === 'stockade-vm';
      await client.runDetached(rt, n, ['sleep', '1000'], full ? { memory: 512 * MiB } : {});
      const pid = await client.pid(n);
      const memFile = cgroupFile(pid, 'memory', 'memory.limit_in_bytes', 'memory.max');
      const cpuFile = cgroupFile(pid, 'cpu', 'cpu.cfs_quota_us', 'cpu.max');
      const memTotal = async (): Promise<number> => {
        const r = await client.exec(n, ['grep', '^MemTotal:', '/proc/meminfo']);
        const kib = /^MemTotal:\s+(\d+) kB$/m.exec(r.stdout)?.[1];
        assert.ok(kib !== undefined, describeResult(r));
        return Number(kib) * 1024;
      };
      const booted = balloon ? await memTotal() : 0;
      await client.update(n, 64 * MiB, 50_000);
      if (rt === 'stockade-vm') {
        // The limit is the container's cgroup's in the guest (read from inside, where the
        // container's cgroup namespace shows its own); the host cgroup (the pid is the VM's
        // keeper) holds the VMM, whose memory limit is the guest's plus the VMM's headroom.
        // Its own cgroup, as /proc/self/cgroup names it: "/" in a cgroup namespace of its own,
        // the guest's path without one (podman gives none here).
        const own = (file: string): string[] => ['sh', '-c', `cat "/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/${file}"`];
        const mem = await client.exec(n, own('memory.max'));
        assert.equal(mem.stdout.trim(), String(64 * MiB), describeResult(mem));
        const cpu = await client.exec(n, own('cpu.max'));
        assert.match(cpu.stdout.trim(), /^50000\b/, describeResult(cpu));
        // The host cgroup holds the VM's RAM and the VMM's headroom. With the balloon, the guest's
        // RAM went from 512 MiB to the smallest guest's (MIN_GUEST_MIB): the rest is in the
        // balloon, gone from MemTotal. A clone's (no balloon) stays 256 MiB, the host's limit
        // sized for the new one.
        if (balloon) assert.equal(booted - (await memTotal()), (512 - MIN_GUEST_MIB) * MiB);
        assert.equal(Number(readFileSync(memFile, 'utf8').trim()), (MIN_GUEST_MIB + VMM_HEADROOM_MIB) * MiB, memFile);
        assert.match(readFileSync(cpuFile, 'utf8').trim(), /^50000\b/, cpuFile);
        return;
      }
      assert.equal(readFileSync(memFile, 'utf8').trim(), String(64 * MiB), memFile);
      assert.match(readFileSync(cpuFile, 'utf8').trim(), /^50000\b/, cpuFile);
    },
  },
  {
    id: 'top',
    title: 'top/ps lists the container process',
    trimmed: false,
    async run({ client, rt, name }) {
      const n = name();
      await client.runDetached(rt, n, ['sleep', '1000']);
      const pid = await client.pid(n);
      const out = await client.top(n);
      if (rt === 'stockade-vm') {
        // The container's host processes (the runtime's ps lists its cgroup's): the keeper (the
        // client's pid) and QEMU; nothing of the host outside them (this test process).
        const listed = out.split(/\s+/);
        assert.ok(listed.includes(String(pid)), `top output lacks the keeper (pid ${pid}):\n${out}`);
        assert.ok(!listed.includes(String(process.pid)), `top output lists a host process outside the container:\n${out}`);
        if (client.name !== 'containerd') assert.match(out, /qemu-system/, out);
        return;
      }
      // docker and podman show the command, ctr only pids.
      assert.ok(out.includes('sleep') || out.split(/\s+/).includes(String(pid)), `top output lacks the process (pid ${pid}):\n${out}`);
    },
  },
  {
    id: 'tty',
    title: 'run -it on a pty: type a command, read its output, exit with a status',
    trimmed: true,
    async run({ client, rt, name }) {
      const r = await client.runTty(rt, name(), ['sh'], 'echo tty-$((6*7)); tty; exit 7\n', PROMPT);
      expectStatus(r, 7);
      assert.match(r.stdout, /tty-42/, describeResult(r));
      assert.match(r.stdout, /\/dev\/pts\/\d+/, describeResult(r));
    },
  },
  {
    id: 'oom',
    title: 'a container over its memory limit is killed and reported OOM-killed',
    trimmed: true,
    async run(ctx) {
      const { client, rt, name } = ctx;
      const n = name();
      // tail keeps the last line, and /dev/zero has no newline: it grows until the limit.
      await client.runDetached(rt, n, ['tail', '/dev/zero'], { memory: 16 * MiB });
      await client.wait(n);
      assert.equal(await client.exitCode(n), 137);
      try {
        assert.equal(await client.oomKilled(n, rt), true, 'the client does not report the container OOM-killed');
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        ctx.note = `exit status 137 checked, the OOM report not: ${e.message}`;
        ctx.t.diagnostic(ctx.note);
      }
    },
  },
  {
    id: 'volume',
    title: 'a bind-mounted host directory: read and write',
    trimmed: false,
    async run({ client, rt, name, scratch }) {
      writeFileSync(join(scratch, 'in'), 'from-host\n');
      const r = await client.run(rt, name(), ['sh', '-c', 'cat /data/in; echo from-container > /data/out'], {
        binds: [{ host: scratch, container: '/data' }],
      });
      expectStatus(r, 0);
      assert.equal(r.stdout, 'from-host\n', describeResult(r));
      assert.equal(readFileSync(join(scratch, 'out'), 'utf8'), 'from-container\n');
    },
  },
  {
    id: 'env-cwd',
    title: 'an environment variable and a working directory',
    trimmed: false,
    async run({ client, rt, name }) {
      const r = await client.run(rt, name(), ['sh', '-c', 'echo "$GREETING|$(pwd)"'], { env: ['GREETING=hello there'], workdir: '/home/test' });
      expectStatus(r, 0);
      assert.equal(r.stdout, 'hello there|/home/test\n', describeResult(r));
    },
  },
  {
    id: 'user',
    title: 'run and exec as uid 1000, gid 1000',
    trimmed: false,
    async run(ctx) {
      const { client, rt, name } = ctx;
      const id = /^uid=1000\b.* gid=1000\b/;
      try {
        const r = await client.run(rt, name('run'), ['id'], { user: '1000:1000' });
        expectStatus(r, 0);
        assert.match(r.stdout, id, describeResult(r));
      } catch (e) {
        if (!(e instanceof Unsupported)) throw e;
        ctx.note = `run part skipped: ${e.message}`;
        ctx.t.diagnostic(ctx.note);
      }
      const n = name('exec');
      await client.runDetached(rt, n, ['sleep', '1000']);
      const r = await client.exec(n, ['id'], { user: '1000:1000' });
      expectStatus(r, 0);
      assert.match(r.stdout, id, describeResult(r));
    },
  },
  {
    id: 'read-only',
    title: '--read-only: / refuses writes, a tmpfs takes them',
    trimmed: false,
    async run({ client, rt, name }) {
      const r = await client.run(rt, name(), ['sh', '-c', 'touch /x 2>/dev/null && echo root-writable || echo root-ro; touch /scratch/y && echo tmpfs-ok'], {
        readOnly: true, tmpfs: ['/scratch'],
      });
      expectStatus(r, 0);
      assert.equal(r.stdout, 'root-ro\ntmpfs-ok\n', describeResult(r));
    },
  },
  {
    id: 'network',
    title: 'bridge network: a server in one container reached from another by its address, and from the host through a published port',
    trimmed: false,
    async run({ client, rt, name }) {
      const net = await client.createNetwork(name('net'));
      const server = name('srv');
      try {
        const port = 20000 + Math.floor(Math.random() * 10000);
        await client.runDetached(rt, server, ['sh', '-c', `mkdir -p /w && echo served-by-${rt} > /w/index.html && exec httpd -f -p 80 -h /w`],
          { network: net, publish: { host: port, container: 80 } });
        const address = await client.addressOn(server, net);
        assert.match(address, /^\d+\.\d+\.\d+\.\d+$/, `${server}'s address on ${net}`);
        const fromPeer = await client.run(rt, name('peer'), ['sh', '-c', `for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://${address}/ && exit 0; sleep 1; done; exit 1`], { network: net });
        expectStatus(fromPeer, 0);
        assert.equal(fromPeer.stdout, `served-by-${rt}\n`, describeResult(fromPeer));
        const fromHost = await waitFor(`127.0.0.1:${port} to answer`, async () => {
          const r = await httpGet(port);
          return r === undefined ? undefined : r;
        }, 30_000);
        assert.equal(fromHost, `served-by-${rt}\n`);
      } finally {
        await client.remove(server).catch(() => undefined);
        await client.removeNetwork(net).catch(() => undefined);
      }
    },
  },
  {
    id: 'network-dns',
    title: 'name resolution on a user network: a server reached from another container by its name (Docker\'s embedded DNS at 127.0.0.11)',
    trimmed: false,
    async run({ client, rt, name }) {
      const net = await client.createNetwork(name('net'));
      const server = name('srv');
      try {
        await client.runDetached(rt, server, ['sh', '-c', `mkdir -p /w && echo named-${rt} > /w/index.html && exec httpd -f -p 80 -h /w`], { network: net });
        const peer = await client.run(rt, name('peer'), ['sh', '-c', `grep ^nameserver /etc/resolv.conf; for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://${server}/ && exit 0; sleep 1; done; exit 1`], { network: net });
        expectStatus(peer, 0);
        assert.match(peer.stdout, new RegExp(`named-${rt}\\n$`), describeResult(peer));
      } finally {
        await client.remove(server).catch(() => undefined);
        await client.removeNetwork(net).catch(() => undefined);
      }
    },
  },
];
