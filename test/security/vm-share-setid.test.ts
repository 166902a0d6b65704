// A guest that has taken its kernel over cannot make a setuid or root-owned file on the host
// through a share that `do --bind SRC:rw` id-maps (its command not the caller): the id map, the
// file server's missing CAP_FSETID and its NO_SETID_RULES filter hold on the host, whatever the guest's
// kernel allows. Both file servers: a template clone's QEMU (9p) and a cold boot's virtiofsd.
//
// The attacker is a process the agent starts as root in the guest, with every capability and no
// seccomp filter; it reaches the share past its chroot through /proc/1/root (the agent's root)
// and binds it where the command, nobody, works in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startVm } from '../../src/vm/template';
import { GUEST_SHARE } from '../../src/vm/vm';
import { makeRootfs, rootfsUnavailable } from '../helpers/rootfs';
import { guestAssetsOr } from '../integration/vm-helpers';

const { skip } = guestAssetsOr(rootfsUnavailable);

/** A uid no account on this host has: the user who ran sudo. */
function unusedUid(): number {
  const taken = new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[2]));
  for (let uid = 63000 + (process.pid % 500); ; uid++) if (!taken.has(String(uid))) return uid;
}

const NOBODY = 65534;

// Each path with the owner do gives it: through sudo (the template) and root itself (cold).
for (const [path, owner] of [['template', unusedUid()], ['cold', 0]] as const) {
  test(`${path}: through an id-mapped share, guest root cannot chown to root or make a file setuid; the command's files are the owner's`, { skip, timeout: 300000 }, async () => {
    const parent = mkdtempSync(join(tmpdir(), 'stockade-share-setid-'));
    const rootfs = join(parent, 'rootfs');
    const src = join(parent, 'src');
    try {
      makeRootfs(rootfs);
      // The project directory, the owner's, with one of its own files setuid already.
      mkdirSync(src, { mode: 0o755 });
      chownSync(src, owner, owner);
      writeFileSync(join(src, 'own-suid'), '#!/bin/sh\n');
      chownSync(join(src, 'own-suid'), owner, owner);
      chmodSync(join(src, 'own-suid'), 0o4755);
      const idmap = { uidMap: `${owner} ${NOBODY} 1\n`, gidMap: `${owner} ${NOBODY} 1\n` };
      const vm = await startVm({ rootfs, binds: [{ source: src, idmap }], template: path === 'template' });
      try {
        assert.equal(/^restored from template /.test(vm.accel.reason), path === 'template', vm.accel.reason);
        // Where the command would see it (root's bind, as stockade-init makes it in the guest).
        const bound = await vm.run({ args: ['mount', '--bind', `/proc/1/root${GUEST_SHARE}/b0`, '/mnt'] });
        assert.equal(bound.code, 0, bound.stderr.toString());
        // The command's identity writes: its files land as the owner's.
        const mine = await vm.run({ uid: NOBODY, gid: NOBODY, args: ['sh', '-c', [
          'cd /mnt', 'echo built > out', 'mkdir d', 'cp /bin/busybox tool',
          // Its own file, setuid: the guest's kernel lets the owner do it; the host must not.
          'chmod 4755 tool; echo "chmod u+s: $?"', 'chmod 2755 tool; echo "chmod g+s: $?"',
          // A write to the owner's setuid file clears the bit (the server has no CAP_FSETID).
          'echo "# x" >> own-suid; echo "append: $?"',
        ].join('; ')] });
        assert.equal(mine.stdout.toString(), 'chmod u+s: 1\nchmod g+s: 1\nappend: 0\n', mine.stderr.toString());
        // Guest root: makes, chowns and chmods with every capability its kernel gives it.
        const root = await vm.run({ args: ['sh', '-c', [
          'cd /mnt', 'id -u',
          'echo x > by-root; echo "create as root: $?"',
          'chown 0:0 out; echo "chown 0: $?"',
          'chmod 4755 tool; echo "chmod u+s: $?"',
          'chmod 6755 out; echo "chmod ug+s: $?"',
          'chmod 700 tool; echo "chmod 700: $?"',
        ].join('; ')] });
        assert.equal(root.stdout.toString(), '0\ncreate as root: 1\nchown 0: 1\nchmod u+s: 1\nchmod ug+s: 1\nchmod 700: 0\n', root.stderr.toString());
      } finally {
        await vm.destroy();
      }
      // On the host: everything the guest made is the owner's, nothing is setuid or setgid, and
      // nothing root made as root is there.
      const seen: string[] = [];
      for (const name of readdirSync(src).sort()) {
        const st = lstatSync(join(src, name));
        seen.push(`${name} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`);
      }
      assert.deepEqual(seen, [
        `d ${owner}:${owner} 755`, `out ${owner}:${owner} 644`, `own-suid ${owner}:${owner} 755`, `tool ${owner}:${owner} 700`,
      ]);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
}
