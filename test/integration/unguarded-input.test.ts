// Input files and paths that once hung, exhausted memory, overflowed the stack or left a container
// behind: config.json and --process files that are FIFOs, devices, too large or too deeply nested;
// a root.path that is a symlink leading out of the bundle; a --log whose parent is not a
// directory; an id too long for the state directory; a --pid-file in a missing directory. Each
// gets a one-line error naming what the user gave, a non-zero exit, the --log written, nothing left.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_INPUT_BYTES, MAX_JSON_DEPTH } from '../../src/oci/input-file';
import { Runtime, STOCKADE, integrationSkip, leftovers, probeSpec, type Result } from './harness';

const skip = integrationSkip();

/** `{"a":` ... nested `depth` deep, then the rest of a valid config. */
function deeplyNested(configJson: string, depth: number): string {
  return `${configJson.slice(0, -1)},"x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

describe('unguarded input', { skip }, () => {
  let rt: Runtime;
  let scratch: string;
  let n = 0;
  before(() => {
    rt = new Runtime();
    scratch = mkdtempSync(join(tmpdir(), 'stockade-unguarded-'));
  });
  after(() => {
    rt.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Runs `args` (BUNDLE and ID replaced) and checks the failure as every bad input must fail. */
  function refused(args: string[], bundleDir: string, error: RegExp, opts: { logWritten?: boolean; timeout?: number } = {}): Result {
    const id = args.includes('ID') ? `ug${n++}` : '';
    const before = rt.containerDirs();
    const leftBefore = leftovers(rt);
    const logBefore = rt.logLines().length;
    const r = rt.run(args.map((a) => (a === 'BUNDLE' ? bundleDir : a === 'ID' ? id : a)), { timeout: opts.timeout ?? 20_000 });
    assert.equal(r.signal, null, `killed by ${String(r.signal)} (hung past the timeout?); stderr ${r.stderr}`);
    assert.notEqual(r.status, 0, `expected failure, got ${r.status}; stdout ${r.stdout}`);
    assert.match(r.stderr, error);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${JSON.stringify(r.stderr)}`);
    assert.doesNotMatch(r.stderr, /\.tmp\b|stack size|heap/i, 'names a temporary file or leaks an engine error');
    if (opts.logWritten !== false) {
      const logged = rt.logLines().slice(logBefore).filter((l) => l.level === 'error');
      assert.equal(logged.length, 1, 'the error is in the --log file');
      assert.match(logged[0]?.msg ?? '', error);
    }
    assert.deepEqual(rt.containerDirs().filter((d) => !before.includes(d)), [], 'a state directory was left');
    assert.deepEqual(leftovers(rt), leftBefore);
    return r;
  }

  function bundleWith(config: string | undefined): string {
    const b = rt.bundle(probeSpec(['/bin/probe', 'report']));
    if (config !== undefined) writeFileSync(b.configPath, config);
    return b.dir;
  }

  const validConfig = (): string => JSON.stringify(probeSpec(['/bin/probe', 'report']));

  test('config.json a FIFO: refused at once, not a hang', () => {
    const dir = bundleWith(undefined);
    rmSync(join(dir, 'config.json'));
    execFileSync('mkfifo', [join(dir, 'config.json')]);
    refused(['create', '-b', 'BUNDLE', 'ID'], dir, /config\.json .*is not a regular file \(a FIFO\)/, { timeout: 10_000 });
  });

  test('config.json a symlink to /dev/zero: refused, not read until memory runs out', () => {
    const dir = bundleWith(undefined);
    rmSync(join(dir, 'config.json'));
    symlinkSync('/dev/zero', join(dir, 'config.json'));
    refused(['create', '-b', 'BUNDLE', 'ID'], dir, /config\.json .*is not a regular file \(a character device\)/, { timeout: 10_000 });
  });

  test('config.json larger than the cap: refused, naming the cap', () => {
    const dir = bundleWith(validConfig() + ' '.repeat(MAX_INPUT_BYTES));
    refused(['create', '-b', 'BUNDLE', 'ID'], dir, new RegExp(`config\\.json .*is larger than ${MAX_INPUT_BYTES >> 20} MiB`));
  });

  test('config.json nested past the depth cap: refused with where, not a stack overflow', () => {
    const dir = bundleWith(deeplyNested(validConfig(), 5000));
    refused(['create', '-b', 'BUNDLE', 'ID'], dir, new RegExp(`config\\.json: nested deeper than ${MAX_JSON_DEPTH} levels at line 1 column \\d+`));
  });

  test('config.json nested to the cap is still read', () => {
    // The nesting sits in an extension field the schema ignores; depth counts the document's own braces too.
    const dir = bundleWith(deeplyNested(validConfig(), MAX_JSON_DEPTH - 1));
    const id = `ug${n++}`;
    const r = rt.run(['create', '-b', dir, id]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(rt.run(['delete', '--force', id]).status, 0);
  });

  test('exec --process: a FIFO, a device, an oversized and an over-nested file are each refused, naming the file', () => {
    const dir = bundleWith(JSON.stringify(probeSpec(['/bin/probe', 'sleep', '100'])));
    const id = `ug${n++}`;
    assert.equal(rt.run(['run', '-d', '-b', dir, id]).status, 0);
    try {
      const fifo = join(scratch, 'process-fifo.json');
      execFileSync('mkfifo', [fifo]);
      const device = join(scratch, 'process-zero.json');
      symlinkSync('/dev/zero', device);
      const process = JSON.stringify(probeSpec(['/bin/probe', 'report']).process);
      const big = join(scratch, 'process-big.json');
      writeFileSync(big, process + ' '.repeat(MAX_INPUT_BYTES));
      const deep = join(scratch, 'process-deep.json');
      writeFileSync(deep, deeplyNested(process, 5000));
      const cases: [string, RegExp][] = [
        [fifo, /is not a regular file \(a FIFO\)/],
        [device, /is not a regular file \(a character device\)/],
        [big, /is larger than/],
        [deep, /nested deeper than/],
      ];
      for (const [file, why] of cases) {
        const r = refused(['exec', '--process', file, id], dir, new RegExp(`${file.replace(/[.]/g, '\\.')}.*`), { timeout: 10_000 });
        assert.match(r.stderr, why);
      }
    } finally {
      rt.run(['delete', '--force', id]);
    }
  });

  test('root.path a symlink leading out of the bundle: refused, naming root.path as given', () => {
    const outside = join(scratch, 'elsewhere');
    mkdirSync(outside, { recursive: true });
    const b = rt.bundle(probeSpec(['/bin/probe', 'report'], (s) => { s.root = { path: 'escape' }; }));
    symlinkSync(outside, join(b.dir, 'escape'));
    refused(['create', '-b', 'BUNDLE', 'ID'], b.dir, /root\.path "escape" leads out of the bundle/);
  });

  test('root.path a symlink that stays in the bundle still works', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'report'], (s) => { s.root = { path: 'alias' }; }));
    symlinkSync('rootfs', join(b.dir, 'alias'));
    const id = `ug${n++}`;
    const r = rt.run(['create', '-b', b.dir, id]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(rt.run(['delete', '--force', id]).status, 0);
  });

  test('a --log whose parent is not a directory: refused before anything, naming the --log given', () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, '');
    const dir = bundleWith(undefined);
    const id = `ug${n++}`;
    const before = rt.containerDirs();
    const r = spawnSync(STOCKADE, ['--root', rt.root, '--log', `${file}/log`, '--log-format', 'json', 'create', '-b', dir, id], { encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stderr, new RegExp(`--log ${file.replace(/[.]/g, '\\.')}/log: .*not a directory`));
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, JSON.stringify(r.stderr));
    assert.deepEqual(rt.containerDirs().filter((d) => !before.includes(d)), []);
    assert.deepEqual(leftovers(rt), []);
  });

  test('an id too long for the state directory: refused, naming the id, nothing made', () => {
    const dir = bundleWith(undefined);
    const long = 'x'.repeat(300);
    refused(['create', '-b', 'BUNDLE', long], dir, /container id "x{10,}.*" is too long/);
  });

  test('an id too long, given to the calls the C entry serves, is refused by the same rule', () => {
    const long = 'y'.repeat(256);
    for (const call of [['start', long], ['kill', long, 'KILL'], ['delete', long], ['delete', '--force', long]]) {
      refused(call, '/nonexistent', /container id "y{10,}.*" is too long: 256 characters, at most 255/);
    }
  });

  test('a --pid-file in a missing directory: refused, naming the --pid-file given, no container left', () => {
    const dir = bundleWith(JSON.stringify(probeSpec(['/bin/probe', 'sleep', '100'])));
    const pidFile = join(scratch, 'no-such-dir', 'pid');
    refused(['create', '--pid-file', pidFile, '-b', 'BUNDLE', 'ID'], dir, new RegExp(`--pid-file ${pidFile.replace(/[.]/g, '\\.')}: .*(does not exist|no such)`, 'i'));
  });
});
