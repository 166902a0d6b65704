// parseMountOptions: flags, clears, propagation, recursive attributes and fs data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MOUNT_ATTR_STRICTATIME,
  MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_SHARED, MS_SLAVE,
  MS_STRICTATIME, MS_UNBINDABLE,
} from '../../../src/abi/linux/constants';
import { isStockadeError } from '../../../src/errors/index';
import { parseMountOptions, SUPPORTED_MOUNT_OPTIONS } from '../../../src/oci/mount-options';

const ATIME_FIELD = 0x70;

test('no options: nothing set, no data', () => {
  assert.deepEqual(parseMountOptions(undefined), {
    flags: 0, clearFlags: 0, propagation: 0, recursiveAttr: 0, recursiveAttrClear: 0, data: '', bind: false, copyUp: false, recursive: false,
  });
});

test('flag options set MS_* bits; unknown options become fs data in order', () => {
  const m = parseMountOptions(['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k', 'strictatime']);
  assert.equal(m.flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_STRICTATIME);
  assert.equal(m.data, 'mode=1777,size=65536k');
  assert.equal(m.bind, false);
});

test('the later of two opposite options wins, and a clear is remembered for remounts', () => {
  const rw = parseMountOptions(['ro', 'rw']);
  assert.equal(rw.flags & MS_RDONLY, 0);
  assert.equal(rw.clearFlags, MS_RDONLY);
  const ro = parseMountOptions(['rw', 'ro']);
  assert.equal(ro.flags, MS_RDONLY);
  assert.equal(ro.clearFlags, 0);
  assert.equal(parseMountOptions(['relatime', 'norelatime']).flags & MS_RELATIME, 0);
});

test('bind and rbind', () => {
  const bind = parseMountOptions(['bind', 'ro']);
  assert.equal(bind.flags, MS_BIND | MS_RDONLY);
  assert.ok(bind.bind);
  assert.ok(!bind.recursive);
  const rbind = parseMountOptions(['rbind', 'nosuid']);
  assert.equal(rbind.flags, MS_BIND | MS_REC | MS_NOSUID);
  assert.ok(rbind.bind && rbind.recursive);
});

test('propagation options are separate from the flags', () => {
  assert.equal(parseMountOptions(['rprivate']).propagation, MS_PRIVATE | MS_REC);
  assert.equal(parseMountOptions(['shared']).propagation, MS_SHARED);
  assert.equal(parseMountOptions(['rbind', 'rslave']).propagation, MS_SLAVE | MS_REC);
  assert.equal(parseMountOptions(['runbindable']).propagation, MS_UNBINDABLE | MS_REC);
  assert.equal(parseMountOptions(['rbind', 'rslave']).flags, MS_BIND | MS_REC);
  // The same option twice is harmless; two different ones are refused by name.
  assert.equal(parseMountOptions(['private', 'private']).propagation, MS_PRIVATE);
  assert.throws(() => parseMountOptions(['rslave', 'rshared'], 'mounts[2].options'),
    (e: unknown) => isStockadeError(e) && e.code === 'UNSUPPORTED' && e.message.startsWith('mounts[2].options[1]: mount option "rshared" after "rslave"'));
});

test('recursive attributes: set and clear masks', () => {
  const m = parseMountOptions(['rbind', 'rro', 'rnosuid', 'rnoexec']);
  assert.equal(m.recursiveAttr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
  assert.equal(m.recursiveAttrClear, 0);
  assert.equal(m.flags, MS_BIND | MS_REC);
  const rw = parseMountOptions(['rro', 'rrw']);
  assert.equal(rw.recursiveAttr, 0);
  assert.equal(rw.recursiveAttrClear, MOUNT_ATTR_RDONLY);
});

test('recursive atime modes replace each other and clear the whole atime field', () => {
  const strict = parseMountOptions(['rnoatime', 'rstrictatime']);
  assert.equal(strict.recursiveAttr, MOUNT_ATTR_STRICTATIME);
  assert.equal(strict.recursiveAttrClear, ATIME_FIELD);
  const noatime = parseMountOptions(['rnoatime']);
  assert.equal(noatime.recursiveAttr, MOUNT_ATTR_NOATIME);
  assert.equal(noatime.recursiveAttrClear, ATIME_FIELD);
  // relatime is the atime field's zero value: nothing to set, the field to clear.
  const relatime = parseMountOptions(['rstrictatime', 'rrelatime']);
  assert.equal(relatime.recursiveAttr, 0);
  assert.equal(relatime.recursiveAttrClear, ATIME_FIELD);
});

test('defaults is a no-op, not fs data', () => {
  assert.equal(parseMountOptions(['defaults', 'mode=755']).data, 'mode=755');
});

test('tmpcopyup is a flag of its own, not fs data', () => {
  const o = parseMountOptions(['nosuid', 'tmpcopyup', 'size=1m']);
  assert.equal(o.copyUp, true);
  assert.equal(o.data, 'size=1m');
  assert.equal(parseMountOptions(['nosuid']).copyUp, false);
});

test('known but unimplemented options are refused with the option named', () => {
  for (const option of ['idmap', 'ridmap']) {
    assert.throws(() => parseMountOptions(['nosuid', option], 'mounts[4].options'), (e: unknown) => {
      assert.ok(isStockadeError(e));
      assert.equal(e.code, 'UNSUPPORTED');
      assert.match(e.message, new RegExp(`^mounts\\[4\\]\\.options\\[1\\]: mount option "${option}" is not supported`));
      return true;
    });
  }
});

test('option names that are Object.prototype keys are plain data', () => {
  assert.equal(parseMountOptions(['constructor', '__proto__', 'toString']).data, 'constructor,__proto__,toString');
});

test('the supported list is sorted, unique, and every entry parses without becoming data', () => {
  assert.deepEqual([...SUPPORTED_MOUNT_OPTIONS].sort(), SUPPORTED_MOUNT_OPTIONS);
  assert.equal(new Set(SUPPORTED_MOUNT_OPTIONS).size, SUPPORTED_MOUNT_OPTIONS.length);
  for (const o of SUPPORTED_MOUNT_OPTIONS) assert.equal(parseMountOptions([o]).data, '', o);
  for (const o of ['ro', 'rw', 'nosuid', 'rbind', 'rprivate', 'rro', 'rnosymfollow', 'nosymfollow', 'lazytime']) {
    assert.ok(SUPPORTED_MOUNT_OPTIONS.includes(o), o);
  }
});
