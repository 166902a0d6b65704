// Compiles the runtime-spec JSON Schemas into standalone Ajv validators (plus V8 code caches) in dist/oci.
//
// Run by `npm run build` after tsc. Output, for NAME in config-validator and state-validator:
//   dist/oci/NAME.js     CommonJS module exporting one Ajv validate function
//   dist/oci/NAME.cache  V8 code cache of that module after a warm-up run (see src/oci/validator-loader.ts)
// Schema directory: $STOCKADE_OCI_SCHEMA, else <repo>/../shared/oci-schema/runtime-spec-v1.3.0.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import Ajv from 'ajv-draft-04';
import standaloneCode from 'ajv/dist/standalone';
import { defaultSpec } from '../oci/default-spec';
import { runModuleSource } from '../loader/module-source';

const REPO_ROOT = resolve(__dirname, '..', '..');

export function schemaDir(): string {
  return process.env['STOCKADE_OCI_SCHEMA'] ?? resolve(REPO_ROOT, '..', 'shared', 'oci-schema', 'runtime-spec-v1.3.0');
}

type Json = null | boolean | number | string | Json[] | JsonObject;
type JsonObject = { [key: string]: Json };

function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);
}

/**
 * runtime-spec v1.3.0's defs.json has `"$ref": "#definitions/uint32"` (ArrayOfUint32, reached from
 * config-vm.json), a JSON pointer without its leading slash that Ajv rightly cannot resolve.
 * Repair any such local ref in memory; the files stay as upstream ships them.
 */
function repairRefs(node: Json): Json {
  if (Array.isArray(node)) return node.map(repairRefs);
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === '$ref' && typeof value === 'string' && /^#[^/]/.test(value)
      ? `#/${value.slice(1)}`
      : repairRefs(value);
  }
  return out;
}

// Platform sections stockade never reads. Each compiled validator for them would add code every
// `create` pays to load; they are kept to "must be an object". The vm section stays: the
// microVM level reads it.
const FOREIGN_PLATFORMS = ['solaris', 'windows', 'zos', 'freebsd'];

// Fields config.md makes REQUIRED on Linux (POSIX) that the schema leaves optional because other
// platforms may omit them. Requiring them here keeps src/oci/spec.ts's types exactly what the
// generated validator guarantees.
const LINUX_REQUIRED: readonly { path: readonly string[]; required: readonly string[] }[] = [
  { path: ['properties', 'process'], required: ['user'] },
  { path: ['properties', 'process', 'properties', 'user'], required: ['uid', 'gid'] },
];

function tailorConfigSchema(config: Json | undefined): void {
  if (!isObject(config)) throw new Error('config-schema.json: not a JSON object');
  const props = config['properties'];
  if (isObject(props)) {
    for (const platform of FOREIGN_PLATFORMS) {
      if (platform in props) props[platform] = { type: 'object' };
    }
  }
  for (const rule of LINUX_REQUIRED) {
    let node: Json | undefined = config;
    for (const key of rule.path) node = isObject(node) ? node[key] : undefined;
    if (!isObject(node)) throw new Error(`config-schema.json: no ${rule.path.join('.')} to tighten`);
    const have = Array.isArray(node['required']) ? node['required'] : [];
    node['required'] = [...have, ...rule.required.filter((r) => !have.includes(r))];
  }
}

function loadSchemas(dir: string): Map<string, Json> {
  if (!existsSync(join(dir, 'config-schema.json'))) {
    throw new Error(`OCI runtime-spec schema not found: ${join(dir, 'config-schema.json')} is missing ` +
      '(set STOCKADE_OCI_SCHEMA to the directory holding config-schema.json)');
  }
  const schemas = new Map<string, Json>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    schemas.set(name, repairRefs(JSON.parse(readFileSync(join(dir, name), 'utf8')) as Json));
  }
  tailorConfigSchema(schemas.get('config-schema.json'));
  return schemas;
}

/**
 * Every require() in generated code must be an Ajv runtime helper (ajv is a runtime dependency,
 * ajv-draft-04 is not) that resolves from where the module will live.
 */
function checkRequires(code: string, outDir: string, name: string): void {
  const resolveFrom = createRequire(join(outDir, `${name}.js`));
  const all = code.match(/\brequire\s*\(/g)?.length ?? 0;
  const literal = [...code.matchAll(/\brequire\s*\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? '');
  if (literal.length !== all) throw new Error(`${name}: generated code calls require() with something other than a string literal`);
  for (const id of literal) {
    if (!id.startsWith('ajv/dist/runtime/')) {
      throw new Error(`${name}: generated code requires ${JSON.stringify(id)}, not an Ajv runtime module`);
    }
    resolveFrom.resolve(id);
  }
}

interface Target {
  name: 'config-validator' | 'state-validator';
  schema: string;
  /** Documents run through the fresh module so that the code cache holds compiled functions. */
  warmUp: unknown[];
}

const TARGETS: readonly Target[] = [
  {
    name: 'config-validator',
    schema: 'config-schema.json',
    warmUp: [defaultSpec(), defaultSpec({ rootless: true, hostUid: 1000, hostGid: 1000 })],
  },
  {
    name: 'state-validator',
    schema: 'state-schema.json',
    warmUp: [{ ociVersion: '1.3.0', id: 'warm-up', status: 'running', pid: 1, bundle: '/', annotations: {} }],
  },
];

function writeAtomic(file: string, data: string | Buffer): void {
  writeFileSync(`${file}.tmp`, data);
  renameSync(`${file}.tmp`, file);
}

export function generateValidators(dir: string, outDir: string): void {
  const ajv = new Ajv({
    // Stop at the first error: one-line messages need only one, and it is faster.
    allErrors: false,
    // One function per referenced definition instead of copies at every use: ~12% less code to load.
    inlineRefs: false,
    // The OCI schemas use keywords and shapes strict mode refuses ($ref beside type, ...).
    strict: false,
    code: { source: true, lines: false, optimize: true },
  });
  for (const [name, schema] of loadSchemas(dir)) ajv.addSchema(schema as object, name);

  mkdirSync(outDir, { recursive: true });
  for (const target of TARGETS) {
    const validate = ajv.getSchema(target.schema);
    if (validate === undefined) throw new Error(`${target.schema}: not found in ${dir}`);
    const code = `/* Generated by src/tools/gen-validator.ts from ${target.schema}. Do not edit. */\n${standaloneCode(ajv, validate)}`;
    checkRequires(code, outDir, target.name);

    const file = join(outDir, `${target.name}.js`);
    const { exports, script } = runModuleSource(file, code);
    if (typeof exports !== 'function') throw new Error(`${target.name}: generated module does not export a function`);
    for (const doc of target.warmUp) {
      if (exports(doc) !== true) throw new Error(`${target.name}: warm-up document fails its own schema`);
    }
    writeAtomic(file, code);
    writeAtomic(join(outDir, `${target.name}.cache`), script.createCachedData());
  }
}

if (require.main === module) {
  try {
    generateValidators(schemaDir(), join(REPO_ROOT, 'dist', 'oci'));
  } catch (e) {
    process.stderr.write(`gen-validator: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
