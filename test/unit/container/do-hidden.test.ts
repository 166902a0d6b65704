// stockade do's identity (who the command is on the host, whose ownership a writable bind writes with) and what it hides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DO_NOBODY, canReach, doBindIdmap, doIdentity } from '../../../src/container/do-identity';
import { DO_HIDDEN_IN_HOME, checkHiddenChoice, existingHidden, maskedForDo } from '../../../src/container/do-hidden';
import { DO_FRESH, doSpec, DO_DEFAULT_LIMITS } from '../../../src/container/do-spec';
import { buildPlan, type PlanOptions } from '../../../src/container/plan';
import { PLAN } from '../../../src/native/protocol';

const ROOT = { uid: 0, gid: 0 };

test('the identity: --user as given, a non-root caller itself, the user who ran sudo, else nobody', () => {
  assert.deepEqual(doIdentity(undefined, {}, ROOT), { ...DO_NOBODY, source: 'nobody', owner: ROOT });
  assert.deepEqual(doIdentity(undefined, { SUDO_UID: '1000', SUDO_GID: '1001' }, ROOT), { uid: 1000, gid: 1001, source: 'sudo', owner: { uid: 1000, gid: 1001 } });
  // sudo -u root, or a SUDO_UID that is no number: root's call, nobody's command.
  for (const env of [{ SUDO_UID: '0', SUDO_GID: '0' }, { SUDO_UID: 'x', SUDO_GID: '1' }, { SUDO_UID: '1000' }]) {
    assert.equal(doIdentity(undefined, env, ROOT).source, 'nobody', JSON.stringify(env));
  }
  // SUDO_UID counts only for root: a user's own call runs as that user.
  assert.deepEqual(doIdentity(undefined, { SUDO_UID: '0', SUDO_GID: '0' }, { uid: 1000, gid: 1000 }).uid, 1000);
  assert.deepEqual(doIdentity({ uid: 0, gid: 0 }, { SUDO_UID: '1000', SUDO_GID: '1000' }, ROOT), { uid: 0, gid: 0, source: 'user', owner: { uid: 1000, gid: 1000 } });
});

test('a writable bind is id-mapped only where the command is not the caller: nobody started by root', () => {
  assert.deepEqual(doBindIdmap(doIdentity(undefined, {}, ROOT)), { uidMap: '0 65534 1\n', gidMap: '0 65534 1\n' });
  assert.equal(doBindIdmap(doIdentity(undefined, { SUDO_UID: '1000', SUDO_GID: '1000' }, ROOT)), undefined);
  assert.equal(doBindIdmap(doIdentity({ uid: 123, gid: 123 }, {}, ROOT)), undefined, '--user chooses the ids the files get');
});

test('reach: every directory down to the working directory must be searchable by the command', () => {
  const base = mkdtempSync(join(homedir(), '.stockade-do-reach-'));
  try {
    mkdirSync(join(base, 'open', 'deeper'), { recursive: true });
    mkdirSync(join(base, 'closed', 'inside'), { recursive: true });
    chmodSync(base, 0o755);
    chmodSync(join(base, 'open'), 0o755);
    chmodSync(join(base, 'open', 'deeper'), 0o711);
    chmodSync(join(base, 'closed'), 0o700);
    const nobody = doIdentity(undefined, {}, ROOT);
    const reachable = canReach('/', nobody) && canReach(join(homedir(), '..'), nobody);
    if (reachable && canReach(base, nobody)) {
      assert.equal(canReach(join(base, 'open', 'deeper'), nobody), true);
      assert.equal(canReach(join(base, 'closed', 'inside'), nobody), false);
      assert.equal(canReach(join(base, 'closed', 'inside'), nobody, [join(base, 'closed')]), true, 'root\'s directory is the command\'s through the id map');
    }
    assert.equal(canReach(join(base, 'closed', 'inside'), doIdentity({ uid: 0, gid: 0 }, {}, ROOT)), true);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('the hidden locations: those a home holds, through links, with --show and --hide, and where a bind shows them again', () => {
  const base = mkdtempSync(join(homedir(), '.stockade-do-hidden-'));
  try {
    const alice = join(base, 'alice');
    const bob = join(base, 'bob');
    mkdirSync(join(alice, '.ssh'), { recursive: true });
    mkdirSync(join(alice, '.config', 'gcloud'), { recursive: true });
    writeFileSync(join(alice, '.bash_history'), '');
    mkdirSync(join(base, 'elsewhere-aws'));
    mkdirSync(bob);
    symlinkSync(join(base, 'elsewhere-aws'), join(bob, '.aws'));
    symlinkSync(join(base, 'nowhere'), join(bob, '.kube'));
    // A name below a directory, itself a link (looked up without realpath's exception first).
    mkdirSync(join(bob, '.docker'));
    writeFileSync(join(base, 'docker-config'), '{}');
    symlinkSync(join(base, 'docker-config'), join(bob, '.docker', 'config.json'));
    symlinkSync(join(base, 'nowhere'), join(bob, '.git-credentials'));
    const homes = [alice, bob, join(base, 'no-such-home')];
    const found = existingHidden(homes).sort();
    assert.deepEqual(found, [join(alice, '.bash_history'), join(alice, '.config/gcloud'), join(alice, '.ssh'), join(base, 'elsewhere-aws'), join(base, 'docker-config')].sort());
    assert.ok(DO_HIDDEN_IN_HOME.includes('.docker/config.json') && DO_HIDDEN_IN_HOME.includes('.zsh_history'));

    const none = { show: [], hide: [] };
    assert.deepEqual(maskedForDo(found, none, [], DO_FRESH), [...found].sort());
    // --show names a location (existing or not) or a directory above some; --hide what exists.
    const choice = checkHiddenChoice([join(alice, '.ssh'), join(bob, '.gnupg')], [join(bob)], '/', homes, DO_FRESH);
    assert.deepEqual(maskedForDo(found, choice, [], DO_FRESH), [join(alice, '.bash_history'), join(alice, '.config/gcloud'), bob, join(base, 'elsewhere-aws'), join(base, 'docker-config')].sort());
    assert.deepEqual(maskedForDo(found, checkHiddenChoice([alice], [], '/', homes, DO_FRESH), [], DO_FRESH), [join(base, 'docker-config'), join(base, 'elsewhere-aws')]);
    assert.throws(() => checkHiddenChoice([join(alice, 'notes')], [], '/', homes, DO_FRESH), /--show .* is not hidden/);
    assert.throws(() => checkHiddenChoice([], [join(base, 'none')], '/', homes, DO_FRESH), /--hide .*: no such file or directory/);
    assert.throws(() => checkHiddenChoice([], ['/'], '/', homes, DO_FRESH), /the root cannot be hidden/);

    // A bind of a home elsewhere hides its credentials there too; a bind over a hidden place
    // replaces the host's view of it; a bind of a location itself shares it on purpose.
    const bindHome = { source: alice, destination: '/tmp/a', writable: false };
    assert.deepEqual(maskedForDo([join(alice, '.ssh')], none, [bindHome], DO_FRESH), ['/tmp/a/.ssh', join(alice, '.ssh')].sort());
    const over = { source: join(base, 'elsewhere-aws'), destination: alice, writable: true };
    assert.deepEqual(maskedForDo([join(alice, '.ssh')], none, [over], DO_FRESH), []);
    const itself = { source: join(alice, '.ssh'), destination: join(alice, '.ssh'), writable: false };
    assert.deepEqual(maskedForDo([join(alice, '.ssh')], none, [itself], DO_FRESH), []);
    // A hidden place under the sandbox's own /tmp is not the host's there: nothing to cover.
    assert.deepEqual(maskedForDo(['/tmp/x/.ssh'], none, [], DO_FRESH), []);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('masks become maskedPaths, a writable bind\'s id map a TAG_MOUNT_IDMAP right after its mount', () => {
  const spec = doSpec({
    args: ['true'], env: [], cwd: '/', network: 'none', rw: false, uid: 65534, gid: 65534, limits: DO_DEFAULT_LIMITS, hidden: [],
    binds: [{ source: '/usr', destination: '/usr', writable: true }], masked: ['/root/.ssh'],
  });
  assert.deepEqual(spec.linux?.maskedPaths?.slice(0, 1), ['/root/.ssh']);
  assert.equal(spec.linux?.sysctl?.['net.ipv4.ip_unprivileged_port_start'], '0', 'not root, the command may still listen on its own low ports');
  const opts: PlanOptions = {
    id: 'x', bundle: '/', rootfsMountpoint: '/run/x', startSocket: undefined, consoleSocket: undefined, preserveFds: 0,
    noPivot: false, noNewKeyring: true, monitor: true, rootfsMode: 'recursive-readonly', createHooks: false,
    heldCapabilities: (1n << 41n) - 1n, cgroupPaths: [], init: true,
    idmaps: new Map([['/usr', { uidMap: '0 65534 1\n', gidMap: '0 65534 1\n' }]]),
  };
  const plan = buildPlan(spec, opts);
  const at = plan.findIndex((r) => r.tag === PLAN.TAG_MOUNT && r.target === '/usr');
  assert.deepEqual(plan[at + 1], { tag: PLAN.TAG_MOUNT_IDMAP, uidMap: '0 65534 1\n', gidMap: '0 65534 1\n' });
  assert.equal(plan.filter((r) => r.tag === PLAN.TAG_MOUNT_IDMAP).length, 1);
  assert.throws(() => buildPlan(spec, { ...opts, idmaps: new Map([['/tmp', { uidMap: '0 1 1\n', gidMap: '0 1 1\n' }]]) }), /only a bind can be id-mapped/);
  assert.throws(() => buildPlan(spec, { ...opts, idmaps: new Map([['/nowhere', { uidMap: '0 1 1\n', gidMap: '0 1 1\n' }]]) }), /no mount has/);
});
