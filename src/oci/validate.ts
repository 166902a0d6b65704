// Turns config.json (and state) text into typed values, or a one-line error that names the field.
//
// Three stages, each failing with StockadeError CONFIG_INVALID: JSON syntax and nesting depth
// (with line and column), the project's schema of runtime-spec config.json (schema.ts, compiled to
// Ajv code at build time by src/tools/gen-validator.ts), then the semantic checks in
// semantic-checks.ts.

import type { ErrorObject } from 'ajv';
import { StockadeError } from '../errors/index';
import { formatPath, pointerToSegments } from './field-path';
import { locateExcessNesting } from './json-depth';
import { locateJsonSyntaxError } from './json-syntax';
import { MAX_JSON_DEPTH } from './input-file';
import { runSemanticChecks, type ConfigProblem } from './semantic-checks';
import type { Spec, State } from './spec';
import { loadValidator, type GeneratedValidator, type SchemaValidator } from './validator-loader';

export * from './semantic-checks';

// Loaded on first use: CLI commands that never read a config.json do not pay for the validator.
const validators = new Map<GeneratedValidator, SchemaValidator<unknown>>();

function validator<T>(name: GeneratedValidator): SchemaValidator<T> {
  let v = validators.get(name);
  if (v === undefined) {
    v = loadValidator<unknown>(name).validate;
    validators.set(name, v);
  }
  return v as SchemaValidator<T>;
}

function fail(source: string, problem: ConfigProblem): never {
  throw new StockadeError(problem.code ?? 'CONFIG_INVALID', `${source}: ${problem.field === '' ? '' : `${problem.field}: `}${problem.message}`,
    { source, field: problem.field });
}

/**
 * JSON.parse with a one-line error: `<source>: malformed JSON at line L column C: <reason>`, or
 * `<source>: nested deeper than N levels at line L column C`.
 */
export function parseJson(text: string, source: string): unknown {
  const deep = locateExcessNesting(text, MAX_JSON_DEPTH);
  if (deep !== undefined) {
    throw new StockadeError('CONFIG_INVALID', `${source}: nested deeper than ${MAX_JSON_DEPTH} levels at line ${deep.line} column ${deep.column}`,
      { source, line: deep.line, column: deep.column });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const where = locateJsonSyntaxError(text);
    // The scanner and V8 should always agree; if not, V8's own words, kept to one line.
    const message = where === undefined
      ? `${source}: malformed JSON: ${String(e instanceof Error ? e.message : e).replace(/\s+/g, ' ')}`
      : `${source}: malformed JSON at line ${where.line} column ${where.column}: ${where.reason}`;
    throw new StockadeError('CONFIG_INVALID', message, where === undefined ? { source } : { source, line: where.line, column: where.column }, { cause: e });
  }
}

// Ajv reports a failed anyOf after the errors of its branches; the branch error says more.
const COMBINATOR_KEYWORDS: ReadonlySet<string> = new Set(['anyOf', 'oneOf', 'allOf', 'not', 'if']);

/** One Ajv error as a field and a message, e.g. `linux.namespaces[2].type`, `must be equal to ...`. */
export function describeSchemaError(error: ErrorObject, root: unknown): ConfigProblem {
  const path = pointerToSegments(error.instancePath, root);
  const params: Record<string, unknown> = error.params;
  switch (error.keyword) {
    case 'required':
      return { field: formatPath([...path, String(params['missingProperty'])]), message: 'is required' };
    case 'enum': {
      const allowed = Array.isArray(params['allowedValues']) ? params['allowedValues'].map(String).join(', ') : '';
      return { field: formatPath(path), message: `must be equal to one of the allowed values (${allowed})` };
    }
    default:
      return { field: formatPath(path), message: error.message ?? `fails schema keyword ${error.keyword}` };
  }
}

function schemaProblem(errors: readonly ErrorObject[] | null | undefined, root: unknown): ConfigProblem {
  const list = errors ?? [];
  const chosen = list.find((e) => !COMBINATOR_KEYWORDS.has(e.keyword)) ?? list[0];
  return chosen === undefined ? { field: '', message: 'does not match the schema' } : describeSchemaError(chosen, root);
}

/** Schema and semantic validation of an already-parsed config (the SDK builds configs in memory). */
export function validateConfig(value: unknown, source: string): Spec {
  const validate = validator<Spec>('config-validator');
  if (!validate(value)) fail(source, schemaProblem(validate.errors, value));
  const first = runSemanticChecks(value)[0];
  if (first !== undefined) fail(source, first);
  return value;
}

/** Parses and validates the text of a bundle's config.json. `source` prefixes every message. */
export function parseConfig(text: string, source: string): Spec {
  return validateConfig(parseJson(text, source), source);
}

/** Parses and schema-checks an OCI state document (`stockade state` output, state files). */
export function parseState(text: string, source: string): State {
  const value = parseJson(text, source);
  const validate = validator<State>('state-validator');
  if (!validate(value)) fail(source, schemaProblem(validate.errors, value));
  return value;
}
