// Layers import downward only (docs: STYLE "Shape of the tree"): reads every import of src/ and
// fails on one that reaches up, or sideways into a sibling layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { packageRoot } from '../../src/native/paths';

// Rank of each top-level folder of src/; a file may import its own folder and any lower rank.
// Folders of equal rank are siblings and import neither each other.
const LAYERS: readonly (readonly string[])[] = [
  ['abi'],
  ['errors', 'log', 'loader'],
  ['oci'],
  ['native'],
  ['seccomp', 'cgroups', 'image'],
  ['container'],
  ['namespaces', 'sentry', 'vm'],
  ['levels'],
  ['cli', 'shim', 'sdk'],
  // The planner runs the CLI's own main() for the calls its front sends.
  ['planner'],
  ['tools'],
];

function rankOf(layer: string): number | undefined {
  const i = LAYERS.findIndex((names) => names.includes(layer));
  return i < 0 ? undefined : i;
}

interface Edge { from: string; to: string; spec: string; toDir?: boolean }

/** `a/b.ts` (or the folder `a`, which names a/index.ts) -> `a`; a file directly in src/ has no layer. */
function layerOf(srcRelative: string, isDir = false): string | undefined {
  const parts = srcRelative.split(sep);
  return parts.length > 1 || isDir ? parts[0] : undefined;
}

/** Every relative module a file names: import/export ... from, import(), require(). */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]*)['"]/gm;
  for (const m of source.matchAll(re)) out.push(m[1] ?? '');
  return out;
}

/** The edges of `edges` that break the layering, as readable lines. */
export function violations(edges: readonly Edge[]): string[] {
  const bad: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from);
    const to = layerOf(e.to, e.toDir);
    if (from === undefined) { bad.push(`${e.from}: a file directly in src/ belongs to no layer`); continue; }
    if (to === undefined) { bad.push(`${e.from} imports ${e.spec}, a file directly in src/ (no layer)`); continue; }
    if (from === to) continue;
    const rf = rankOf(from);
    const rt = rankOf(to);
    if (rf === undefined) { bad.push(`${e.from}: src/${from}/ is in no layer of this test's table`); continue; }
    if (rt === undefined) { bad.push(`${e.to}: src/${to}/ is in no layer of this test's table`); continue; }
    if (rt > rf) bad.push(`${e.from} (${from}) imports ${e.spec} (${to}): upward`);
    else if (rt === rf) bad.push(`${e.from} (${from}) imports ${e.spec} (${to}): sibling layers`);
  }
  return bad;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const srcDir = join(packageRoot(), 'src');

function edgesOfSrc(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(srcDir)) {
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      const to = relative(srcDir, target);
      assert.ok(!to.startsWith('..'), `${relative(srcDir, file)} imports ${spec}, outside src/`);
      edges.push({ from: relative(srcDir, file), to, spec, toDir: existsSync(target) && statSync(target).isDirectory() });
    }
  }
  return edges;
}

test('the checker sees imports of every form and refuses upward and sideways ones', () => {
  assert.deepEqual(importsOf([
    "import { a } from '../cli/log';",
    "import type { B } from './b';",
    "export { c } from '../oci/c';",
    "const d = require('../native/d');",
    "import './side-effect';",
    "const e = await import('../sentry/e');",
    "import { f } from 'node:fs';",
  ].join('\n')), ['../cli/log', './b', '../oci/c', '../native/d', './side-effect', '../sentry/e']);
  assert.deepEqual(violations([
    { from: join('sentry', 'daemon.ts'), to: join('cli', 'log'), spec: '../cli/log' },
    { from: join('sentry', 'x.ts'), to: join('vm', 'y'), spec: '../vm/y' },
    { from: join('container', 'x.ts'), to: join('oci', 'spec'), spec: '../oci/spec' },
    { from: join('oci', 'x.ts'), to: join('oci', 'y'), spec: './y' },
    { from: join('oci', 'x.ts'), to: 'errors', spec: '../errors', toDir: true },
    { from: join('newdir', 'x.ts'), to: join('oci', 'y'), spec: '../oci/y' },
  ]).length, 3);
});

test('src/ imports run downward only', () => {
  const edges = edgesOfSrc();
  assert.ok(edges.length > 300, `only ${edges.length} imports found under ${srcDir}: the reader is broken`);
  assert.deepEqual(violations(edges), []);
});
