// The vm level through the runtime's CLI: run (attached and -d), create/start/state/kill/delete, exec, ps, pause/resume, update, events.
//
// Each container's VM is restored from the template (built by the first one that needs it, in
// the shared cache), or with STOCKADE_VM_TEMPLATE=0 booted cold (one test keeps that path). VM
// starts are still seconds under TCG, so one long-lived container carries every check that a
// fresh VM would not make stronger (state, exec, ps, pause, update, events, kill); run, run -d
// with delete --force, the annotation and the template's binds each need a VM of their own; the
// cold one carries update's balloon (a clone has none).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGuestAssets } from '../../src/vm/assets';
import { MIN_GUEST_MIB, VMM_HEADROOM_MIB } from '../../src/vm/sizing';
import { Runtime, json, probeSpec, waitFor } from './harness';
import { cgroupPids, memoryCgroup, templateRelease, vmGone, vmHostProcesses, vmSkip, vmTrace, VM_CALL } from './vm-helpers';

const skip = vmSkip();
const MiB = 1024 * 1024;

describe('the vm level through the CLI', { skip }, () => {
  let rt: Runtime;
  let guestRelease = '';
  let coldRelease = '';
  before(() => {
    rt = new Runtime();
    guestRelease = templateRelease();
    coldRelease = ensureGuestAssets().release;
  });
  after(() => rt.cleanup());

  test('run --isolation vm: the guest\'s kernel, stdin, stdout and stderr relayed, the exit status passed on, nothing left', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'uname -r; read line; echo "got $line"; echo oops >&2; exit 3']));
    const r = rt.run(['--debug', '--isolation', 'vm', 'run', '--bundle', b.dir, 'vm-run'], { ...VM_CALL, input: 'hello\n' });
    assert.equal(r.status, 3, r.stderr);
    assert.ok(rt.logLines().some((l) => /^vm: from template [0-9a-f]{32}/.test(l.msg)), 'the VM was restored from the template');
    assert.equal(r.stdout, `${guestRelease}\ngot hello\n`);
    assert.notEqual(guestRelease, release());
    assert.equal(r.stderr, 'oops\n');
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('create, start, state, exec, ps, pause, resume, update, events --stats, kill and delete on one vm container', async () => {
    const id = 'vm-life';
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'echo started > /tmp/started; trap "exit 7" TERM; while true; do sleep 0.1; done'], (s) => {
      s.annotations = { 'dev.stockade.isolation': 'vm' };
      s.root = { path: 'rootfs', readonly: false };
      // The template's machine (256 MiB, 1 vCPU): this container's VM is a clone.
      s.linux = { ...s.linux, resources: { memory: { limit: 256 * MiB } } };
    }));
    const work = mkdtempSync(join(tmpdir(), 'stockade-vm-pid-'));
    try {
      const pidFile = join(work, 'pid');
      // The annotation picks the level: no --isolation here.
      const c = rt.run(['create', '--bundle', b.dir, '--pid-file', pidFile, id], VM_CALL);
      assert.equal(c.status, 0, c.stderr);
      const t = vmTrace(rt, id);
      const st = json<{ status: string; pid: number }>(rt.run(['state', id]).stdout);
      assert.equal(st.status, 'created');
      // The pid is the keeper's: a live host process, the one in the pid file.
      assert.equal(st.pid, Number(readFileSync(pidFile, 'utf8')));
      assert.equal(st.pid, t.keeper);
      // Clients configure the network namespace of that pid (Docker's prestart hook sets addresses
      // and sysctls there): it is the container's own, never the host's (a keeper in the host's let
      // Docker's hook set net.ipv6.conf.all.disable_ipv6 on the host).
      const config = json<{ linux?: { namespaces?: { type: string }[] } }>(readFileSync(b.configPath, 'utf8'));
      assert.ok((config.linux?.namespaces ?? []).some((ns) => ns.type === 'network'), 'the probe config has a network namespace');
      assert.notEqual(readlinkSync(`/proc/${t.keeper}/ns/net`), readlinkSync('/proc/self/ns/net'));
      // The VMM is jailed in the container's cgroup (item 6): the keeper, QEMU and its jail's wrappers.
      const mem = memoryCgroup(t);
      assert.ok(mem !== undefined, `no memory cgroup among ${t.cgroupPaths.join(', ')}`);
      const inCgroup = new Set(cgroupPids(mem));
      const host = vmHostProcesses(t);
      assert.ok(host.length >= 3, `the VM's host processes: ${host.join(', ')}`);
      for (const p of host) assert.ok(inCgroup.has(p), `process ${p} of the VM is not in ${mem}`);
      // The guest's RAM is the limit; the host cgroup holds it and the VMM's headroom.
      const limitFile = existsSync(join(mem, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes';
      assert.equal(Number(readFileSync(join(mem, limitFile), 'utf8')), (256 + VMM_HEADROOM_MIB) * MiB);
      assert.match(readFileSync(join(t.stateDir, 'keeper.log'), 'utf8'), /created: VM restored from template [0-9a-f]{32} in/);
      // The keeper's socket is root's alone.
      assert.equal(statSync(join(t.stateDir, 'vm.sock')).mode & 0o777, 0o600);
      const list = rt.run(['list', '--format', 'json']);
      assert.deepEqual(json<{ id: string; status: string }[]>(list.stdout).map((x) => [x.id, x.status]), [[id, 'created']]);

      const s = rt.run(['start', id], VM_CALL);
      assert.equal(s.status, 0, s.stderr);
      assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'running');

      // The workload writes the file once it runs: waited for, then read through exec.
      const e = rt.run(['exec', id, '/bin/sh', '-c', 'while [ ! -e /tmp/started ]; do sleep 0.1; done; cat /tmp/started; echo to-err >&2; exit 4'], VM_CALL);
      assert.equal(e.status, 4, e.stderr);
      assert.equal(e.stdout, 'started\n');
      assert.equal(e.stderr, 'to-err\n');
      const input = rt.run(['exec', id, '/bin/cat'], { ...VM_CALL, input: 'through stdin\n' });
      assert.equal(input.stdout, 'through stdin\n', input.stderr);
      const missing = rt.run(['exec', id, '/no/such'], VM_CALL);
      assert.notEqual(missing.status, 0);
      assert.match(missing.stderr, /no\/such/);

      const ps = rt.run(['ps', '--format', 'json', id], VM_CALL);
      assert.equal(ps.status, 0, ps.stderr);
      // Host pids, as clients take them (docker's top filters the host's ps by them): the
      // container's processes on the host, the keeper and the VMM's, not the guest's.
      const pids = json<number[]>(ps.stdout);
      assert.ok(pids.includes(t.keeper), ps.stdout);
      for (const pid of host) assert.ok(pids.includes(pid), `ps lacks ${pid} of the VM: ${ps.stdout}`);
      assert.ok(!pids.includes(process.pid) && !pids.includes(1), ps.stdout);

      const p = rt.run(['pause', id]);
      assert.equal(p.status, 0, p.stderr);
      assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'paused');
      // The whole VM is stopped: the keeper, QEMU and virtiofsd are in the frozen cgroup.
      const freezer = t.cgroupPaths.find((d) => existsSync(join(d, 'freezer.state')) || existsSync(join(d, 'cgroup.freeze')));
      assert.ok(freezer !== undefined, `no freezer among ${t.cgroupPaths.join(', ')}`);
      if (existsSync(join(freezer, 'freezer.state'))) assert.equal(readFileSync(join(freezer, 'freezer.state'), 'utf8').trim(), 'FROZEN');
      else assert.match(readFileSync(join(freezer, 'cgroup.events'), 'utf8'), /^frozen 1$/m);
      const frozen = new Set(cgroupPids(freezer));
      for (const pid of host) assert.ok(frozen.has(pid), `process ${pid} of the VM is not in the frozen ${freezer}`);
      assert.equal(rt.run(['exec', id, '/bin/true']).status === 0, false, 'exec into a paused vm container succeeded');
      const r = rt.run(['resume', id]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'running');
      assert.equal(rt.run(['exec', id, '/bin/true'], VM_CALL).status, 0, 'the VM does not run after resume');

      type StatsLine = { type: string; id: string; data: { memory?: { usage?: { usage?: number; limit?: number } }; pids?: { current?: number; limit?: number } } };
      const stats = (): StatsLine => {
        const ev = rt.run(['events', '--stats', id], VM_CALL);
        assert.equal(ev.status, 0, ev.stderr);
        return json<StatsLine>(ev.stdout.trim());
      };
      // The config's limit is the guest cgroup's from the start (the VM's RAM is only its ceiling).
      const first = stats();
      assert.equal(first.type, 'stats');
      assert.ok((first.data.memory?.usage?.usage ?? 0) > 0, JSON.stringify(first));
      assert.equal(first.data.memory?.usage?.limit, 256 * MiB);
      assert.ok((first.data.pids?.current ?? 0) >= 1, JSON.stringify(first));

      // update reaches the container's cgroup in the guest (read back through events --stats,
      // which the guest answers) and the VMM's cgroup on the host.
      const u = rt.run(['update', '--memory', String(96 * MiB), '--pids-limit', '50', id], VM_CALL);
      assert.equal(u.status, 0, u.stderr);
      // The host cgroup is sized for the VM's RAM, which is at least MIN_GUEST_MIB (here its 128).
      assert.equal(Number(readFileSync(join(mem, limitFile), 'utf8')), (Math.max(96, MIN_GUEST_MIB) + VMM_HEADROOM_MIB) * MiB);
      const updated = stats();
      assert.equal(updated.data.memory?.usage?.limit, 96 * MiB);
      // Seen from inside too: without a cgroup namespace the container's /sys/fs/cgroup is the
      // guest's hierarchy (its bind of /sys carries it; stockade-init keeps that one, read-only,
      // rather than covering it with an empty tmpfs), its own cgroup the one /proc/self/cgroup names.
      const inside = rt.run(['exec', id, '/bin/sh', '-c', 'grep -c " /sys/fs/cgroup " /proc/self/mountinfo; cat "/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)/memory.max"; touch /sys/fs/cgroup/x'], VM_CALL);
      assert.equal(inside.stdout, `1\n${96 * MiB}\n`, inside.stderr);
      assert.match(inside.stderr, /Read-only file system/);
      assert.equal(updated.data.pids?.limit, 50);
      // A limit the guest refuses is a one-line error, and nothing changed on the host either.
      const bad = rt.run(['update', '--cpu-quota', '500', '--cpu-period', '100', id], VM_CALL);
      assert.notEqual(bad.status, 0);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.equal(Number(readFileSync(join(mem, limitFile), 'utf8')), (Math.max(96, MIN_GUEST_MIB) + VMM_HEADROOM_MIB) * MiB);

      const k = rt.run(['kill', id, 'TERM'], VM_CALL);
      assert.equal(k.status, 0, k.stderr);
      await waitFor(() => json<{ status: string }>(rt.run(['state', id]).stdout).status === 'stopped', 30000);
      const d = rt.run(['delete', id], VM_CALL);
      assert.equal(d.status, 0, d.stderr);
      await vmGone(t);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('from the template: the config\'s bind mounts (read-only refused for writes), its hostname, random bytes of each container\'s own', async () => {
    const work = mkdtempSync(join(tmpdir(), 'stockade-vm-binds-'));
    try {
      const ro = join(work, 'ro');
      const rw = join(work, 'rw');
      for (const d of [ro, rw]) mkdirSync(d);
      writeFileSync(join(ro, 'data'), 'read only\n');
      const restored = (): number => rt.logLines().filter((l) => /^vm: from template /.test(l.msg)).length;
      const before = restored();
      const outs: string[][] = [];
      for (const i of [0, 1]) {
        const b = rt.bundle(probeSpec(['/bin/sh', '-c', [
          'cat /proc/sys/kernel/random/uuid', 'hostname', 'cat /mnt/ro/data',
          '/bin/probe try-write /mnt/ro/new x', `/bin/probe try-write /mnt/rw/from-${i} written`,
        ].join('; ')], (s) => {
          s.hostname = `tmpl-box-${i}`;
          s.root = { path: 'rootfs', readonly: false };
          s.mounts!.push({ destination: '/mnt/ro', type: 'bind', source: ro, options: ['rbind', 'ro'] });
          s.mounts!.push({ destination: '/mnt/rw', type: 'bind', source: rw, options: ['rbind', 'rw'] });
        }));
        const r = rt.run(['--debug', '--isolation', 'vm', 'run', '--bundle', b.dir, `vm-binds-${i}`], VM_CALL);
        assert.equal(r.status, 0, r.stderr);
        outs.push(r.stdout.split('\n'));
      }
      assert.equal(restored() - before, 2, 'both VMs were restored from the template');
      const [a, b] = outs as [string[], string[]];
      assert.match(a[0]!, /^[0-9a-f-]{36}$/);
      assert.notEqual(a[0], b[0], 'two containers from one template read different random bytes');
      assert.deepEqual([a[1], b[1]], ['tmpl-box-0', 'tmpl-box-1']);
      for (const [i, o] of [a, b].entries()) {
        assert.equal(o[2], 'read only');
        assert.match(o[3]!, /"error":"EROFS"/, 'a write to the read-only bind is refused');
        assert.match(o[4]!, /"ok":true/, o[4]);
        assert.equal(readFileSync(join(rw, `from-${i}`), 'utf8'), 'written', 'the read-write bind reaches the host');
      }
      assert.equal(existsSync(join(ro, 'new')), false);
      assert.deepEqual(rt.containerDirs(), []);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('do --isolation vm: the host\'s root read-only in a guest of its own kernel, a fresh /tmp; --rw writes in memory only', () => {
    const probe = `/root/stockade-vm-do-${process.pid}`;
    // 256 MiB: the template's machine (do's default 2 GiB has no template, and would boot cold).
    const r = rt.run(['--debug', 'do', '--isolation', 'vm', '--memory', '256m', '--', '/bin/sh', '-c', `uname -r; touch ${probe} 2>/dev/null && echo wrote; touch /tmp/x && echo tmp-ok`], VM_CALL);
    assert.equal(r.status, 0, r.stderr);
    // The host's root, served read-only on every mount of it by the clone's QEMU over 9p.
    assert.ok(rt.logLines().some((l) => /^vm: from template /.test(l.msg)), 'the VM was restored from the template');
    assert.equal(r.stdout, `${guestRelease}\ntmp-ok\n`);
    assert.equal(existsSync(probe), false);
    // Root on purpose (--user 0): the writes reach the overlay's memory, never the host's root.
    const rw = rt.run(['do', '--isolation', 'vm', '--rw', '--user', '0', '--', '/bin/sh', '-c',
      `echo mem > ${probe} && cat ${probe}; rm /etc/hostname && echo removed; ls /etc/hostname 2>/dev/null || echo gone`], VM_CALL);
    assert.equal(rw.status, 0, rw.stderr);
    assert.equal(rw.stdout, 'mem\nremoved\ngone\n');
    assert.equal(existsSync(probe), false);
    assert.equal(existsSync('/etc/hostname'), true);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('booted cold (STOCKADE_VM_TEMPLATE=0): run -d; update moves the guest\'s RAM through its balloon (MemTotal, allocations, QEMU\'s memory) and the CPU quota through the VMM\'s cgroup; delete --force leaves nothing', async () => {
    const id = 'vm-detached';
    const b = rt.bundle(probeSpec(['/bin/sleep', '1000'], (s) => {
      s.linux = { ...s.linux, resources: { memory: { limit: 512 * MiB } } };
    }));
    // Sparse on the host; read in the guest, it fills the guest's page cache (the host's memfd).
    writeFileSync(join(b.rootfs, 'big'), '');
    truncateSync(join(b.rootfs, 'big'), 320 * MiB);
    const r = rt.run(['--isolation', 'vm', 'run', '-d', '--bundle', b.dir, id], { ...VM_CALL, env: { STOCKADE_VM_TEMPLATE: '0' } });
    assert.equal(r.status, 0, r.stderr);
    const t = vmTrace(rt, id);
    // The cold path end to end: virtiofsd serves the root, the cloud kernel booted.
    const log = readFileSync(join(t.stateDir, 'keeper.log'), 'utf8');
    assert.match(log, /vm: booting cold: STOCKADE_VM_TEMPLATE=0/);
    assert.ok(log.includes(`created: VM booted in `) && log.includes(`guest kernel ${coldRelease}`), log);
    assert.ok(vmHostProcesses(t).some((p) => /virtiofsd/.test(readFileSync(`/proc/${p}/cmdline`, 'utf8'))), 'virtiofsd serves the cold VM');
    assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'running');
    assert.equal(rt.run(['delete', id]).status === 0, false, 'delete without --force of a running container succeeded');

    const sh = (script: string): { status: number | null; stdout: string; stderr: string } => rt.run(['exec', id, '/bin/sh', '-c', script], VM_CALL);
    const memTotalKiB = (): number => {
      const m = sh('grep ^MemTotal: /proc/meminfo');
      const kib = /^MemTotal:\s+(\d+) kB$/m.exec(m.stdout)?.[1];
      assert.ok(kib !== undefined, `${m.stdout}${m.stderr}`);
      return Number(kib);
    };
    // What the guest's RAM holds on the host: the pages allocated in QEMU's memfd (its guest RAM).
    const qemu = vmHostProcesses(t).find((p) => readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('qemu-system'));
    assert.ok(qemu !== undefined, 'no QEMU among the VM\'s host processes');
    const guestRamOnHost = (): number => {
      for (const fd of readdirSync(`/proc/${qemu}/fd`)) {
        if (readlinkSync(`/proc/${qemu}/fd/${fd}`).startsWith('/memfd:')) return statSync(`/proc/${qemu}/fd/${fd}`).blocks * 512;
      }
      throw new Error(`QEMU ${qemu} holds no memfd`);
    };
    const mem = memoryCgroup(t);
    assert.ok(mem !== undefined);
    const limitFile = join(mem, existsSync(join(mem, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes');
    const ownCgroup = (file: string): string => sh(`cat "/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/${file}"`).stdout.trim();

    const booted = memTotalKiB();
    assert.equal(sh('cat /big > /dev/null').status, 0);
    const filled = guestRamOnHost();
    assert.ok(filled > 300 * MiB, `the guest's page cache did not reach the host's memfd: ${filled} bytes`);

    // Down: the guest's cgroup to 200 MiB, its RAM to 200 MiB (312 MiB into the balloon, gone from
    // MemTotal and punched out of QEMU's memfd), the host cgroup to that plus the VMM's headroom.
    const down = rt.run(['update', '--memory', String(200 * MiB), id], VM_CALL);
    assert.equal(down.status, 0, down.stderr);
    assert.equal(ownCgroup('memory.max'), String(200 * MiB));
    assert.equal(booted - memTotalKiB(), 312 * 1024);
    assert.equal(Number(readFileSync(limitFile, 'utf8')), (200 + VMM_HEADROOM_MIB) * MiB);
    const shrunk = guestRamOnHost();
    assert.ok(shrunk <= 200 * MiB, `QEMU's memfd still holds ${shrunk} bytes of a 200 MiB guest (${filled} before)`);
    assert.match(readFileSync(join(t.stateDir, 'keeper.log'), 'utf8'), /memory: the guest's RAM 512 -> 200 MiB/);
    // What the container can use follows: 64 MiB held fits, growing without end is OOM-killed (137).
    const fits = sh('head -c 67108864 /dev/zero | tail | wc -c');
    assert.equal(fits.stdout.trim(), '67108864', fits.stderr);
    assert.equal(sh('tail /dev/zero').status, 137);

    // Up past the RAM it booted with: the balloon gives back all 512 MiB (no more: microvm has no
    // hot-plug); the guest's cgroup and the host's take the new limit.
    const up = rt.run(['update', '--memory', String(1024 * MiB), id], VM_CALL);
    assert.equal(up.status, 0, up.stderr);
    assert.equal(memTotalKiB(), booted);
    assert.equal(ownCgroup('memory.max'), String(1024 * MiB));
    assert.equal(Number(readFileSync(limitFile, 'utf8')), (1024 + VMM_HEADROOM_MIB) * MiB);

    // CPU: the quota is the guest cgroup's and the host cgroup's, which holds QEMU and every one of its threads.
    const cpu = rt.run(['update', '--cpu-quota', '20000', '--cpu-period', '100000', id], VM_CALL);
    assert.equal(cpu.status, 0, cpu.stderr);
    assert.equal(ownCgroup('cpu.max'), '20000 100000');
    const cpuDir = t.cgroupPaths.find((d) => existsSync(join(d, 'cpu.max')) || existsSync(join(d, 'cpu.cfs_quota_us')));
    assert.ok(cpuDir !== undefined, `no cpu cgroup among ${t.cgroupPaths.join(', ')}`);
    if (existsSync(join(cpuDir, 'cpu.max'))) assert.equal(readFileSync(join(cpuDir, 'cpu.max'), 'utf8').trim(), '20000 100000');
    else assert.equal(readFileSync(join(cpuDir, 'cpu.cfs_quota_us'), 'utf8').trim(), '20000');
    const threads = readdirSync(`/proc/${qemu}/task`);
    assert.ok(threads.length > 1, 'QEMU has its vCPU and I/O threads');
    const cgroupOf = (path: string): string => readFileSync(path, 'utf8').split('\n').find((l) => l.startsWith('0::') || /[:,]cpu[,:]/.test(l)) ?? '';
    for (const task of threads) assert.equal(cgroupOf(`/proc/${qemu}/task/${task}/cgroup`), cgroupOf(`/proc/${t.keeper}/cgroup`), `QEMU thread ${task}`);

    const d = rt.run(['delete', '--force', id], VM_CALL);
    assert.equal(d.status, 0, d.stderr);
    await vmGone(t);
  });
});
