// OCI lifecycle hooks: runs the runtime's own (prestart, createRuntime, poststart, poststop), plans the container's.
import { spawn } from 'node:child_process';
import { StockadeError } from '../errors';
import { HOOK_PHASE, PLAN, type PlanRecord } from '../native/protocol';
import type { Hook, HookName, Spec } from '../oci/spec';
import type { ContainerRecord } from './state-store';

/** The OCI state a hook reads on its stdin (runtime.md "State"). */
export interface HookState {
  ociVersion: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped';
  pid: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export type Warn = (msg: string) => void;

/** Hooks run by the runtime, in its own namespaces; the others run inside the container (stockade-init). */
export type RuntimeHookName = Extract<HookName, 'prestart' | 'createRuntime' | 'poststart' | 'poststop'>;

// Enough of a failing hook's output to say why it failed, on one line.
const OUTPUT_KEPT = 4096;
const OUTPUT_SHOWN = 300;
// A hook that leaves a child holding its stdout must not hold up the lifecycle once it has exited.
const OUTPUT_GRACE_MS = 100;
// setTimeout fires at once past 2^31-1 ms; a longer timeout (24 days and more) is as good as none.
const MAX_TIMER_MS = 0x7fffffff;

export function hookState(record: ContainerRecord, status: HookState['status']): HookState {
  const state: HookState = { ociVersion: record.ociVersion, id: record.id, status, pid: record.pid, bundle: record.bundle };
  if (Object.keys(record.annotations).length > 0) state.annotations = record.annotations;
  return state;
}

export function encodeState(state: HookState): Buffer {
  return Buffer.from(JSON.stringify(state), 'utf8');
}

function hooksOf(spec: Spec, name: HookName): readonly Hook[] {
  return spec.hooks?.[name] ?? [];
}

/** The container must pause after its mounts: some hook runs at that point. */
export function hasCreateHooks(spec: Spec): boolean {
  return (['prestart', 'createRuntime', 'createContainer'] as const).some((n) => hooksOf(spec, n).length > 0);
}

/** One TAG_HOOK per createContainer and startContainer hook, in config order within each phase. */
export function containerHookRecords(spec: Spec): PlanRecord[] {
  const phases = [['createContainer', HOOK_PHASE.CREATE_CONTAINER], ['startContainer', HOOK_PHASE.START_CONTAINER]] as const;
  return phases.flatMap(([name, phase]) => hooksOf(spec, name).map((h): PlanRecord => ({
    tag: PLAN.TAG_HOOK,
    phase,
    // The schema allows any positive integer; past u32 milliseconds (49 days) is as good as none.
    timeoutMs: h.timeout === undefined ? 0 : Math.min(h.timeout * 1000, 0xffffffff),
    path: h.path,
    args: h.args ?? [],
    env: h.env ?? [],
  })));
}

/**
 * The create-time hook point: prestart, then createRuntime (runc's order), in the runtime's
 * namespaces. Resolves to the state the container's createContainer hooks read, when it has such hooks.
 */
export async function runCreateHooks(spec: Spec, state: HookState): Promise<Buffer | undefined> {
  await runHooks(spec, 'prestart', state);
  await runHooks(spec, 'createRuntime', state);
  return hooksOf(spec, 'createContainer').length > 0 ? encodeState(state) : undefined;
}

/** Runs the hooks of one kind in order; the first failure is thrown and the rest do not run. */
export async function runHooks(spec: Spec, name: RuntimeHookName, state: HookState): Promise<void> {
  const hooks = hooksOf(spec, name);
  if (hooks.length === 0) return;
  const input = encodeState(state);
  for (const [i, hook] of hooks.entries()) await runHook(`hooks.${name}[${i}]`, hook, input);
}

/** poststart and poststop: a failure is reported as a warning and the lifecycle goes on (runtime.md). */
export async function runHooksWarning(spec: Spec, name: 'poststart' | 'poststop', state: HookState, warn: Warn | undefined): Promise<void> {
  try {
    await runHooks(spec, name, state);
  } catch (e) {
    (warn ?? (() => undefined))((e as Error).message);
  }
}

/** `env` as execve takes it: each entry is KEY=VALUE; one without "=" passes as KEY with an empty value. */
function envObject(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq < 0) out[entry] = '';
    else out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

function oneLine(output: Buffer): string {
  const text = output.toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > OUTPUT_SHOWN ? `${text.slice(0, OUTPUT_SHOWN)}...` : text;
}

/** Runs one hook with the state on its stdin and exactly its own environment. */
export function runHook(label: string, hook: Hook, input: Buffer): Promise<void> {
  const where = `${label} (${hook.path})`;
  const args = hook.args ?? [];
  return new Promise<void>((resolvePromise, reject) => {
    let settled = false;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const output: Buffer[] = [];
    let kept = 0;
    const child = spawn(hook.path, args.slice(1), {
      argv0: args[0] ?? hook.path,
      env: envObject(hook.env ?? []),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const finish = (failure: string | undefined, errno?: string): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.stdin?.destroy();
      if (failure === undefined) {
        resolvePromise();
        return;
      }
      const said = oneLine(Buffer.concat(output));
      reject(new StockadeError('HOOK_FAILED', said === '' ? `${where}: ${failure}` : `${where}: ${failure}: ${said}`,
        { hook: label, path: hook.path, errno }));
    };
    const keep = (chunk: Buffer): void => {
      if (kept >= OUTPUT_KEPT) return;
      output.push(chunk.subarray(0, OUTPUT_KEPT - kept));
      kept += chunk.length;
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('error', (e: NodeJS.ErrnoException) => finish(e.code === undefined ? e.message : `cannot run: ${e.message}`, e.code));
    child.on('exit', (code, signal) => {
      const failure = timedOut
        ? `timed out after ${hook.timeout ?? 0}s`
        : signal !== null ? `killed by ${signal}` : code !== 0 ? `exit status ${code ?? '?'}` : undefined;
      const grace = setTimeout(() => finish(failure), OUTPUT_GRACE_MS);
      child.once('close', () => { clearTimeout(grace); finish(failure); });
    });
    // A hook that never reads its stdin, or exits first, is not a failure of ours.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
    if (hook.timeout !== undefined && hook.timeout > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, Math.min(hook.timeout * 1000, MAX_TIMER_MS));
    }
  });
}
