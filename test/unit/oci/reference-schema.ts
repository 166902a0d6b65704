// Upstream's runtime-spec v1.3.0 config schema, compiled as the project reads config.json on Linux,
// and a generator of documents that touch every property it defines: the cross-check's other side.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv-draft-04';
import type { ValidateFunction } from 'ajv';

type Json = null | boolean | number | string | Json[] | JsonObject;
type JsonObject = { [key: string]: Json };

function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);
}

/**
 * defs.json has `"$ref": "#definitions/uint32"` (ArrayOfUint32, reached from config-vm.json), a
 * JSON pointer without its leading slash that Ajv rightly cannot resolve: repaired in memory.
 */
function repairRefs(node: Json): Json {
  if (Array.isArray(node)) return node.map(repairRefs);
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === '$ref' && typeof value === 'string' && /^#[^/]/.test(value) ? `#/${value.slice(1)}` : repairRefs(value);
  }
  return out;
}

/**
 * What stockade needs beyond upstream's schema, as src/oci/schema.ts writes it: on Linux config.md
 * makes process.user and its uid and gid REQUIRED, and the sections of platforms stockade never
 * reads need only be objects.
 */
function tailor(config: JsonObject): void {
  const props = config['properties'];
  if (!isObject(props)) throw new Error('config-schema.json: no properties');
  for (const platform of ['solaris', 'windows', 'zos', 'freebsd']) props[platform] = { type: 'object' };
  const process = props['process'];
  if (!isObject(process)) throw new Error('config-schema.json: no process');
  process['required'] = ['cwd', 'user'];
  const user = isObject(process['properties']) ? process['properties']['user'] : undefined;
  if (!isObject(user)) throw new Error('config-schema.json: no process.user');
  user['required'] = ['uid', 'gid'];
}

export interface Reference {
  /** The tailored config schema, compiled with upstream's draft-04 semantics. */
  validate: ValidateFunction;
  /** Every schema file, refs repaired, by name. */
  schemas: ReadonlyMap<string, Json>;
}

export function loadReference(dir: string): Reference {
  const schemas = new Map<string, Json>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    schemas.set(name, repairRefs(JSON.parse(readFileSync(join(dir, name), 'utf8')) as Json));
  }
  const config = schemas.get('config-schema.json');
  if (!isObject(config)) throw new Error(`${dir}: no config-schema.json`);
  tailor(config);
  const ajv = new Ajv({ allErrors: false, strict: false });
  for (const [name, schema] of schemas) ajv.addSchema(schema as object, name);
  const validate = ajv.getSchema('config-schema.json');
  if (validate === undefined) throw new Error('config-schema.json did not compile');
  return { validate, schemas };
}

// A value each upstream pattern accepts.
const PATTERN_SAMPLES: Readonly<Record<string, string>> = {
  '^RLIMIT_[A-Z]+$': 'RLIMIT_NOFILE',
  '^[cbup]$': 'c',
  '^[1-9][0-9]*[KMG]B$': '2MB',
  '^[0-9, -]*$': '0-1',
  '^MB:[^\\n]*$': 'MB:0=100',
};

/**
 * A document valid under `schema` holding every property it defines, with one entry in every
 * array and map: so the mutations of it reach every field of upstream's schema.
 */
export function fullSample(ref: Reference, schema: Json, file = 'config-schema.json'): Json {
  if (!isObject(schema)) return {};
  const r = schema['$ref'];
  if (typeof r === 'string') {
    const [target = '', pointer = ''] = r.split('#');
    const targetFile = target === '' ? file : target;
    let node: Json | undefined = ref.schemas.get(targetFile);
    for (const key of pointer.split('/').filter((k) => k !== '')) node = isObject(node) ? node[key] : undefined;
    if (node === undefined) throw new Error(`unresolved $ref ${r} in ${file}`);
    return fullSample(ref, node, targetFile);
  }
  const allOf = schema['allOf'];
  if (Array.isArray(allOf)) {
    const merged: JsonObject = {};
    for (const part of allOf) Object.assign(merged, fullSample(ref, part, file));
    return merged;
  }
  const anyOf = schema['anyOf'];
  if (Array.isArray(anyOf) && anyOf[0] !== undefined) return fullSample(ref, anyOf[0], file);
  const en = schema['enum'];
  if (Array.isArray(en) && en[0] !== undefined) return en[0];
  switch (schema['type']) {
    case 'string': {
      const pattern = schema['pattern'];
      if (typeof pattern !== 'string') return 'x';
      const sample = PATTERN_SAMPLES[pattern];
      if (sample === undefined) throw new Error(`no sample for pattern ${pattern}`);
      return sample;
    }
    case 'integer': {
      const min = schema['minimum'];
      return typeof min === 'number' && min > 0 ? min : 1;
    }
    case 'boolean': return true;
    case 'array': {
      const items = schema['items'];
      return [fullSample(ref, Array.isArray(items) ? items[0] ?? {} : items ?? {}, file)];
    }
    default: {
      const out: JsonObject = {};
      const props = schema['properties'];
      if (isObject(props)) for (const [k, v] of Object.entries(props)) out[k] = fullSample(ref, v, file);
      const pattern = schema['patternProperties'];
      if (isObject(pattern)) for (const v of Object.values(pattern)) out['key'] = fullSample(ref, v, file);
      const additional = schema['additionalProperties'];
      if (isObject(additional)) out['key'] = fullSample(ref, additional, file);
      return out;
    }
  }
}

/** The paths of every value in `doc`, parents before children. */
export function paths(doc: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(doc)) doc.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (isObject(doc)) for (const [k, v] of Object.entries(doc)) out.push(...paths(v, [...prefix, k]));
  return out;
}

// What each value is replaced by, in turn: every JSON type, the edges of every integer range
// upstream uses, a fraction, and strings no enum or pattern holds.
export const REPLACEMENTS: readonly Json[] = [
  null, true, 'x', '', 'RLIMIT_x', 'MB:a\nb', '10', 1.5, 0, -1, 1, 255, 256, 511, 512, 65535, 65536,
  -2147483648, -2147483649, 2147483647, 2147483648, 4294967295, 4294967296,
  -(2 ** 63), -(2 ** 64), 2 ** 63, 2 ** 64, 2 ** 65, [], [1], ['x'], {}, { key: 1 }, { '': 1 },
];

/** A copy of `doc` with the value at `path` replaced, or deleted when `value` is undefined. */
export function mutate(doc: Json, path: readonly (string | number)[], value: Json | undefined): Json {
  const copy = JSON.parse(JSON.stringify(doc)) as Json;
  if (path.length === 0) return value === undefined ? null : value;
  let node: Json | undefined = copy;
  for (const key of path.slice(0, -1)) node = Array.isArray(node) ? node[key as number] : isObject(node) ? node[key as string] : undefined;
  const last = path[path.length - 1] ?? '';
  if (Array.isArray(node)) {
    if (value === undefined) node.splice(last as number, 1);
    else node[last as number] = value;
  } else if (isObject(node)) {
    if (value === undefined) delete node[last as string];
    else node[last as string] = value;
  }
  return copy;
}
