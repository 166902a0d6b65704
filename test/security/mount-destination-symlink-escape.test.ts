// A rootfs symlink must not redirect a mount destination onto the host (the class of runc's CVE-2021-30465).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { listMounts } from '../helpers/cleanup';
import { Runtime, integrationSkip, json, probeSpec } from '../integration/harness';

const skip = integrationSkip();

describe('mount destinations resolve inside the root', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  for (const [name, target] of [['absolute', '/etc'], ['relative', '../../../../../../../../etc'], ['through /proc/self/root', '/proc/self/root/etc']] as const) {
    test(`an ${name} symlink in the rootfs`, () => {
      const tag = `stockade-escape-${name.replace(/\W/g, '')}-${process.pid}`;
      const b = rt.bundle(probeSpec(['/bin/probe', 'report'], (s) => {
        s.mounts!.push({ destination: `/mnt/evil/${tag}`, type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
      }));
      mkdirSync(join(b.rootfs, 'mnt'), { recursive: true });
      symlinkSync(target, join(b.rootfs, 'mnt', 'evil'));
      // Where every symlink points: the host's /etc. (A count of all the host's mounts would take
      // another run's mounts, made meanwhile, for an escape.)
      const underEtc = (): string[] => listMounts().map((m) => m.mountpoint).filter((m) => m === '/etc' || m.startsWith('/etc/'));
      const etcMountsBefore = underEtc();
      const r = rt.run(['run', '--bundle', b.dir, `esc-${name.replace(/\W/g, '')}`]);
      // Either the mount lands inside the container root, or create refuses: never on the host.
      assert.equal(existsSync(`/etc/${tag}`), false, 'nothing was created in the host /etc');
      assert.equal(listMounts().filter((m) => m.mountpoint.includes(tag)).length, 0, 'no host mount');
      assert.deepEqual(underEtc(), etcMountsBefore, 'no mount on the host\'s /etc');
      if (r.status === 0) {
        const rep = json<{ mounts: { mountpoint: string; fstype: string }[] }>(r.stdout);
        const inside = rep.mounts.find((m) => m.mountpoint.endsWith(tag));
        assert.equal(inside?.fstype, 'tmpfs');
        assert.ok(existsSync(join(b.rootfs, 'etc', tag)) || name === 'through /proc/self/root', 'created inside the rootfs');
      } else {
        assert.match(r.stderr, /mount|mnt\/evil/);
      }
    });
  }
});
