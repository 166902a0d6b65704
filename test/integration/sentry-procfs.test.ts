// What the workload reads in /proc under the sentry: generated system files with no host kernel data, and programs that still work on them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { Runtime, integrationSkip, leftovers, probeSpec, has } from './harness';

const skip = integrationSkip();

/** Strings that say which kernel the host runs: its release, its build string, its /proc/version. */
function hostKernelStrings(): string[] {
  const version = readFileSync('/proc/version', 'utf8').trim();
  const build = execFileSync('uname', ['-v'], { encoding: 'utf8' }).trim();
  return [release(), build, version.slice(version.indexOf('(')), version.slice(version.indexOf('#'))].filter((s) => s.length > 4);
}

describe('/proc under the sentry', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('system files carry no host kernel data; a process\'s own files are there', () => {
    const files = ['cpuinfo', 'meminfo', 'version', 'stat', 'uptime', 'loadavg', 'filesystems', 'sys/kernel/osrelease',
      'sys/kernel/hostname', 'self/status', 'self/stat', 'self/cgroup', 'self/mounts', 'mounts', 'self/mountinfo',
      'partitions', 'diskstats', 'swaps'];
    const script = files.map((f) => `echo "== ${f}"; cat /proc/${f}`).join('; ') + '; echo "== uname"; uname -a; echo "== links"; readlink /proc/self/exe /proc/self/cwd /proc/self/root';
    const r = rt.run(['do', '--isolation', 'sentry', '--cwd', '/', '--', 'sh', '-c', script]);
    assert.equal(r.status, 0, r.stderr);
    for (const s of hostKernelStrings()) assert.ok(!r.stdout.includes(s), `the host's ${JSON.stringify(s)} is not in what the workload reads`);
    const section = (name: string): string => r.stdout.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? '';
    const uname = section('uname').trim().split(' ');
    assert.match(section('version'), new RegExp(`^Linux version ${uname[2] ?? 'x'} `));
    assert.equal(section('sys/kernel/osrelease').trim(), uname[2]);
    assert.match(section('self/status'), /^Name:\s+cat$/m);
    assert.match(section('self/status'), /^Pid:\s+\d+$/m);
    assert.equal(section('self/cgroup'), '0::/');
    assert.doesNotMatch(section('self/mounts'), /(lowerdir|upperdir|workdir)=/);
    assert.match(section('mounts'), /^proc \/proc proc /m);
    // mountinfo agrees with mounts on the /proc and /sys the sentry owns (it listed neither before).
    assert.match(section('self/mountinfo'), /^\d+ \d+ \d+:\d+ \/ \/proc \S+ - proc proc r[ow]$/m);
    assert.match(section('self/mountinfo'), /^\d+ \d+ \d+:\d+ \/ \/sys \S+ - sysfs sysfs r[ow]$/m);
    assert.match(section('cpuinfo'), /^processor\t: 0$/m);
    assert.match(section('stat'), /^btime \d+$/m);
    assert.equal(section('links'), '/usr/bin/readlink\n/\n/\n');
    // No host disk or swap device (as /sys hides block devices): the host's are listed in its own files.
    assert.equal(section('partitions').trim(), 'major minor  #blocks  name');
    assert.ok(r.stdout.includes('== diskstats\n== swaps\n'), 'diskstats is empty');
    assert.match(section('swaps'), /^Filename\t+Type\t+Size\t+Used\t+Priority(?:\nnone +virtual\t+\d+\t+\d+\t+0)?\n?$/);
    const hostDevices = readFileSync('/proc/partitions', 'utf8').split('\n').slice(2).map((l) => l.trim().split(/\s+/)[3]).filter((d) => d !== undefined);
    for (const d of hostDevices) assert.ok(!r.stdout.includes(` ${d}\n`), `the host's ${d} is not listed`);
    assert.deepEqual(leftovers(rt), []);
  });

  test('the CPU count is the CPU limit\'s wherever a program reads it: cpuinfo, /sys/devices/system/cpu/online and its cpuN directories, getconf', { skip: has('getconf') ? undefined : 'getconf is not installed' }, () => {
    // The cpuN directories counted from a listing, and looked up one by one past the count: a
    // listing and a lookup agree (cpu1 was listed, and found, under a one-CPU limit before).
    const script = 'cat /sys/devices/system/cpu/online /sys/devices/system/cpu/possible; grep -c ^processor /proc/cpuinfo; getconf _NPROCESSORS_ONLN; getconf _NPROCESSORS_CONF; grep -c "^cpu[0-9]" /proc/stat; '
      + 'ls /sys/devices/system/cpu | grep -c "^cpu[0-9]"; n=0; while [ -e /sys/devices/system/cpu/cpu$n ]; do n=$((n+1)); done; echo $n';
    const r = rt.run(['do', '--isolation', 'sentry', '--cpus', '1', '--cwd', '/', '--', 'sh', '-c', script]);
    assert.equal(r.status, 0, r.stderr);
    // One CPU's worth of quota: one CPU, numbered 0, in every file.
    assert.deepEqual(r.stdout.trim().split('\n'), ['0', '0', '1', '1', '1', '1', '1', '1'], r.stdout);
    const half = rt.run(['do', '--isolation', 'sentry', '--cpus', '1.5', '--cwd', '/', '--', 'sh', '-c', script]);
    assert.equal(half.status, 0, half.stderr);
    const cpus = Math.min(2, availableParallelism());
    const online = cpus === 1 ? '0' : `0-${cpus - 1}`;
    assert.deepEqual(half.stdout.trim().split('\n'), [online, online, ...Array(6).fill(String(cpus))], `1.5 CPUs round up: ${half.stdout}`);
  });

  test('MemTotal is the memory limit; free and top agree; no host path in mounts or links', () => {
    const limit = 96 << 20;
    const script = 'cat /proc/meminfo; echo "== free"; free; echo "== top"; top -bn1 | head -3; echo "== mounts"; cat /proc/self/mounts /proc/self/mountinfo; '
      + 'echo "== links"; readlink /proc/self/exe; readlink /proc/1/cwd; readlink /proc/self/root; ls -l /proc/self/fd/ > /dev/null && echo listed';
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', script], (s) => { s.linux!.resources = { memory: { limit } }; }));
    const r = rt.run(['--isolation', 'sentry', 'run', '--bundle', b.dir, 'sentry-procfs-mem']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^MemTotal:\\s+${limit / 1024} kB$`, 'm'));
    const free = Number(/^MemFree:\s+(\d+) kB$/m.exec(r.stdout)?.[1]);
    const available = Number(/^MemAvailable:\s+(\d+) kB$/m.exec(r.stdout)?.[1]);
    assert.ok(free > 0 && free <= available && available <= limit / 1024, `free ${free}, available ${available}`);
    // busybox free reads sysinfo(2), which the sentry answers from the same numbers.
    assert.match(r.stdout, new RegExp(`^Mem:\\s+${limit / 1024}\\s`, 'm'));
    assert.match(r.stdout, /^Mem: \d+K used, \d+K free/m);
    assert.ok(!r.stdout.includes(b.dir), `no host path of the bundle (${b.dir}) in:\n${r.stdout}`);
    assert.match(r.stdout, /== links\n\/bin\/busybox\n\/\n\/\nlisted\n/);
    assert.deepEqual(leftovers(rt, b), []);
  });

  const programs: { name: string; needs: string; script: string }[] = [
    { name: 'nproc', needs: 'nproc', script: 'nproc' },
    { name: 'python3 os.cpu_count', needs: 'python3', script: 'python3 -c "import os; print(os.cpu_count(), len(os.sched_getaffinity(0)))"' },
    { name: 'free', needs: 'free', script: 'free > /dev/null && echo ok' },
    { name: 'ps', needs: 'ps', script: 'ps -o pid,comm | head -2' },
    // The container's pid namespace's own (Linux 6.14 and later), not the host's, which the sentry itself would read.
    { name: 'pid_max', needs: 'cat', script: 'cat /proc/sys/kernel/pid_max' },
    { name: 'busybox top', needs: 'busybox', script: 'busybox top -bn1 | grep -c "^Load average: 0.00 0.00 0.00"' },
    { name: 'uptime', needs: 'uptime', script: 'uptime | grep -c "up 0 min"' },
  ];
  for (const p of programs) {
    test(`${p.name} works as under namespaces`, { skip: has(p.needs) ? false : `${p.needs} is not installed` }, () => {
      const sentry = rt.run(['do', '--isolation', 'sentry', '--cwd', '/', '--', 'sh', '-c', p.script]);
      assert.equal(sentry.status, 0, sentry.stderr);
      assert.equal(sentry.stderr, '');
      if (p.name === 'busybox top' || p.name === 'uptime') {
        assert.equal(sentry.stdout, '1\n');
        return;
      }
      const ns = rt.run(['do', '--cwd', '/', '--', 'sh', '-c', p.script]);
      // ps sizes its PID column from /proc/sys/kernel/pid_max: the same under both.
      const words = (s: string): string => s.trim().replace(/\s+/g, ' ');
      assert.equal(words(sentry.stdout), words(ns.stdout));
    });
  }
});
