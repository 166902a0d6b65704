// Real programs under the sentry (stockade do --isolation sentry), each compared with the same program under namespaces.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip, leftovers, waitFor, has } from './harness';
import { runProcesses } from '../helpers/run-scope';

const skip = integrationSkip();

/** Each program as a shell script; its output must not depend on the level it runs under. */
const PROGRAMS: { name: string; needs: string; script: string }[] = [
  {
    name: 'busybox applets',
    needs: 'busybox',
    script: 'cd /etc && busybox ls -d /usr/lib /etc/ssl && busybox wc -l < /etc/passwd && busybox find /etc/ssl -maxdepth 1 -name "*cert*" | busybox sort '
      + '&& busybox stat -c "%s %F" /etc/hostname ./passwd && busybox readlink -f /bin/sh && echo data > /tmp/f && busybox cp /tmp/f /tmp/g '
      + '&& busybox mv /tmp/g /tmp/h && busybox ln -s /tmp/h /tmp/l && busybox cat /tmp/l && busybox chmod 600 /tmp/h && busybox ls -l /tmp/h | busybox cut -c1-10 '
      + '&& busybox mkdir -p /tmp/d/e && busybox rm -r /tmp/d && busybox test ! -e /tmp/d && busybox uname -s',
  },
  {
    name: 'python3',
    needs: 'python3',
    script: `python3 -c '
import os, json, subprocess, tempfile
d = tempfile.mkdtemp()
p = os.path.join(d, "x.json")
json.dump({"a": [1, 2]}, open(p, "w"))
os.rename(p, p + ".2")
st = os.stat(p + ".2")
print(json.load(open(p + ".2")), st.st_size, sorted(os.listdir(d)), os.path.exists(p))
os.chdir(d); os.mkdir("sub"); os.symlink("../x.json.2", "sub/l"); print(os.readlink("sub/l"), open("sub/l").read())
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip(), os.access("/etc/passwd", os.R_OK), os.access("/etc/shadow", os.W_OK))
'`,
  },
  {
    name: 'reading /proc and /sys (the sentry\'s own clones of them)',
    needs: 'sh',
    script: 'head -1 /proc/self/status && grep -c "" /proc/self/cmdline && ls -d /proc/1 /proc/self/fd/0 && test -r /proc/mounts && echo mounts '
      + '&& cat /proc/sys/kernel/ostype && readlink /proc/self/exe && head -c 4 /proc/self/exe | od -An -c && ls /sys/kernel > /dev/null && echo sys '
      + '&& (test ! -L /etc/mtab || grep -q " / " /etc/mtab && echo mtab)',
  },
  {
    name: 'node',
    needs: 'node',
    script: `node -e '
const fs = require("fs"), cp = require("child_process");
fs.mkdirSync("/tmp/n/m", { recursive: true });
fs.writeFileSync("/tmp/n/m/f", "x".repeat(1000));
fs.renameSync("/tmp/n/m/f", "/tmp/n/g");
console.log(fs.statSync("/tmp/n/g").size, fs.readdirSync("/tmp/n").sort().join(","), fs.existsSync("/etc/os-release"));
console.log(cp.execFileSync("sh", ["-c", "echo spawned; exit 0"]).toString().trim(), require("os").hostname());
'`,
  },
  {
    name: 'gcc compiling and running a C file',
    needs: 'gcc',
    script: 'cd /tmp && printf "#include <stdio.h>\\n#include <sys/stat.h>\\nint main(void){struct stat s; printf(\\"%%d %%d\\\\n\\", 6*7, stat(\\"/etc/passwd\\", &s));return 3;}\\n" > hello.c '
      + '&& gcc -O1 -o hello hello.c && ./hello; echo "status $?"',
  },
  {
    name: 'git init, add, commit',
    needs: 'git',
    script: 'cd /tmp && git init -q repo && cd repo && echo a > f && mkdir d && echo b > d/g && git add f d && '
      + 'git -c user.name=t -c user.email=t@example.com commit -qm first && git mv f f2 && git -c user.name=t -c user.email=t@example.com commit -qm second '
      + '&& git log --format=%s && git ls-files && git status --porcelain | wc -l',
  },
  {
    name: 'tar piped into gzip and back',
    needs: 'gzip',
    script: 'mkdir -p /tmp/t/a && echo one > /tmp/t/a/1 && ln -s 1 /tmp/t/a/l && tar -C /tmp/t -cf - a | gzip -c > /tmp/t.tgz && mkdir /tmp/u && gzip -dc /tmp/t.tgz | tar -C /tmp/u -xf - '
      + '&& cat /tmp/u/a/1 /tmp/u/a/l && tar -tzf /tmp/t.tgz | sort',
  },
  {
    name: 'sqlite3 database',
    needs: 'sqlite3',
    script: 'sqlite3 /tmp/db "create table t(x); insert into t values (1), (2), (39); select sum(x) from t;" && sqlite3 /tmp/db "select count(*) from t;" && ls /tmp',
  },
];

describe('programs under the sentry', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  for (const p of PROGRAMS) {
    test(p.name, { skip: has(p.needs) ? false : `${p.needs} is not installed` }, () => {
      const ns = rt.run(['do', '--cwd', '/', '--', 'sh', '-c', p.script], { timeout: 120_000 });
      const sentry = rt.run(['do', '--isolation', 'sentry', '--cwd', '/', '--', 'sh', '-c', p.script], { timeout: 120_000 });
      assert.ok(ns.stdout.length > 0, `under namespaces it printed something (stderr: ${ns.stderr})`);
      assert.equal(sentry.stderr, ns.stderr);
      assert.equal(sentry.stdout, ns.stdout);
      assert.equal(sentry.status, ns.status);
      assert.deepEqual(leftovers(rt), []);
    });
  }

  test('a minimal /sys: CPUs, cgroups, hugepage settings and the container\'s interfaces; no host hardware, not even through sysfs\'s links', () => {
    const script = 'cat /sys/devices/system/cpu/online; cat /sys/class/net/lo/mtu; '
      + 'for p in /sys/block /sys/module /sys/class/dmi /sys/devices/system/cpu/cpu0/subsystem/devices /sys/devices/system/cpu/../../../module /sys/bus/cpu; do '
      + 'test -e $p && echo "$p: visible" || echo "$p: hidden"; done';
    const ns = rt.run(['do', '--', 'sh', '-c', script]);
    const sentry = rt.run(['do', '--isolation', 'sentry', '--', 'sh', '-c', script]);
    assert.equal(ns.status, 0, ns.stderr);
    assert.equal(sentry.status, 0, sentry.stderr);
    const nsLines = ns.stdout.split('\n');
    const lines = sentry.stdout.split('\n');
    assert.deepEqual(lines.slice(0, 2), nsLines.slice(0, 2), 'what programs read is there');
    assert.ok(nsLines.includes('/sys/block: visible') && nsLines.includes('/sys/module: visible'), `under namespaces the host's sysfs is there: ${ns.stdout}`);
    for (const l of lines.slice(2).filter((x) => x !== '')) assert.match(l, /: hidden$/, sentry.stdout);
    assert.deepEqual(leftovers(rt), []);
  });

  test('the workload\'s own mount namespace holds no procfs or sysfs, not even the host\'s from beneath', async () => {
    // The namespace's own table, read on the host from /proc/PID/mountinfo of the workload: its
    // /proc/self/mountinfo is the sentry's view, which lists the /proc and /sys the sentry owns.
    const types = async (level: string): Promise<string> => {
      const marker = `${process.pid}.${level.length}`;
      const child = rt.spawn(['do', '--isolation', level, '--', 'sleep', marker]);
      try {
        let pid = '';
        await waitFor(() => {
          // This run's processes only (run-scope.ts): another run may sleep the same number.
          const found = runProcesses(`sleep ${marker}`).filter((p) => p.cmdline === `sleep ${marker}`).map((p) => p.pid);
          if (found.length > 0) pid = String(Math.max(...found));
          return pid !== '';
        }, 10000).catch(() => undefined);
        assert.notEqual(pid, '', `the workload of ${level} is running`);
        const table = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
        return [...new Set(table.split('\n').map((l) => l.split(' - ')[1]?.split(' ')[0]).filter((t) => t !== undefined))].sort().join(' ');
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    };
    const nsTypes = await types('namespaces');
    const sentryTypes = await types('sentry');
    assert.match(nsTypes, /\bproc\b/, 'under namespaces procfs is mounted');
    assert.match(nsTypes, /\bsysfs\b/);
    assert.doesNotMatch(sentryTypes, /\b(proc|sysfs|cgroup2?)\b/, `the sentry's workload's namespace holds: ${sentryTypes}`);
    const script = 'cd /proc/1 2>/dev/null && echo "chdir /proc/1: ok" || echo "chdir /proc/1: refused"; ls -d /proc/1';
    const ns = rt.run(['do', '--', 'sh', '-c', script]);
    const sentry = rt.run(['do', '--isolation', 'sentry', '--', 'sh', '-c', script]);
    assert.equal(ns.status, 0, ns.stderr);
    assert.equal(sentry.status, 0, sentry.stderr);
    const [nsChdir] = ns.stdout.split('\n');
    const [chdir, listed] = sentry.stdout.split('\n');
    assert.equal(nsChdir, 'chdir /proc/1: ok');
    // chdir is finished by the kernel in the workload's namespace: /proc there is an empty directory.
    assert.equal(chdir, 'chdir /proc/1: refused');
    assert.equal(listed, '/proc/1', 'while the sentry serves /proc itself');
    assert.deepEqual(leftovers(rt), []);
  });
});

/** The id `stockade do` gave its container, once it is listed. */
async function theOnlyContainer(rt: Runtime): Promise<string> {
  let id = '';
  await waitFor(() => {
    id = rt.run(['list', '-q']).stdout.trim();
    return id !== '';
  }, 5000);
  return id;
}

describe('stockade trace', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('streams the sentry\'s calls as JSON lines, with the paths it read and what the caller got', async () => {
    const marker = `/etc/hostname`;
    const child = rt.spawn(['do', '--isolation', 'sentry', '--', 'sh', '-c', `sleep 1; cat ${marker} > /dev/null; cat /no-such-file 2>/dev/null; exit 0`]);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const id = await theOnlyContainer(rt);
    // Root's alone, as the detached sentry's are: a trace shows every path the workload touches.
    const sock = join(rt.root, id, 'trace.sock');
    await waitFor(() => existsSync(sock), 5000);
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    const trace = rt.run(['trace', id], { timeout: 20_000 });
    assert.equal(trace.status, 0, trace.stderr);
    const records = trace.stdout.trim().split('\n').map((l) => JSON.parse(l) as { pid: number; syscall: string; args: string[]; result: number | string });
    const opened = records.find((r) => r.syscall === 'openat' && r.args[0] === marker);
    assert.ok(opened !== undefined, 'the open of the marker is traced');
    assert.match(String(opened.result), /^fd \d+$/);
    const missing = records.find((r) => r.args[0] === '/no-such-file');
    assert.equal(missing?.result, -2);
    assert.ok(records.some((r) => r.syscall === 'execve' && String(r.result).startsWith('continue: ')));
    assert.equal(await exited, 0);
  });

  test('refuses a container that does not run under the sentry, and an unknown one', async () => {
    const unknown = rt.run(['trace', 'no-such-container']);
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /no-such-container/);
    const child = rt.spawn(['do', '--', 'sleep', '2']);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const id = await theOnlyContainer(rt);
    const ns = rt.run(['trace', id]);
    assert.notEqual(ns.status, 0);
    assert.match(ns.stderr, /namespaces level: only the sentry sees its syscalls/);
    assert.equal(await exited, 0);
  });
});
