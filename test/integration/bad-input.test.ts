// Bad input gets a one-line error naming what is wrong, a non-zero exit, the --log written, and nothing left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, integrationSkip, leftovers, probeSpec, type Result } from './harness';
import { CASES } from './bad-input-cases';

const skip = integrationSkip();

describe('bad input', { skip }, () => {
  let rt: Runtime;
  let n = 0;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  for (const c of CASES) {
    test(c.name, () => {
      const id = `bad${n++}`;
      let bundleDir = '/nonexistent';
      let bundle;
      if (c.config !== undefined) {
        bundle = rt.bundle(probeSpec(['/bin/probe', 'report']));
        bundleDir = bundle.dir;
        if (typeof c.config === 'string') writeFileSync(bundle.configPath, c.config);
        else bundle.writeSpec(probeSpec(['/bin/probe', 'report'], c.config));
      }
      c.setup?.(rt, bundleDir, id);
      const before = rt.containerDirs();
      const logBefore = rt.logLines().length;
      const r: Result = rt.run(c.args.map((a) => (a === 'BUNDLE' ? bundleDir : a === 'ID' ? id : a)));
      assert.notEqual(r.status, 0, `expected failure, got ${r.status}; stdout ${r.stdout}`);
      assert.match(r.stderr, c.error);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${JSON.stringify(r.stderr)}`);
      const logged = rt.logLines().slice(logBefore).filter((l) => l.level === 'error');
      assert.equal(logged.length, 1, 'the error is in the --log file');
      assert.match(logged[0]?.msg ?? '', c.error);
      // Nothing of the failed attempt is left: compare with what setup made.
      const left = rt.containerDirs().filter((d) => !before.includes(d));
      assert.deepEqual(left, []);
      for (const d of before) rt.run(['delete', '--force', d]);
      assert.deepEqual(leftovers(rt, bundle), []);
    });
  }
  test('the text log format is logrus-like', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stockade-log-'));
    try {
      const r = rt.run(['--log', join(dir, 'log'), '--log-format', 'text', 'state', 'ghost']);
      assert.notEqual(r.status, 0);
      assert.match(readFileSync(join(dir, 'log'), 'utf8'), /^time="[^"]+" level=error msg="container ghost does not exist" code=CONTAINER_NOT_FOUND id=ghost\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
