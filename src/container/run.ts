// run: create, start and, unless detached, wait for the container and pass its exit status on.
import { StockadeError } from '../errors';
import { join, resolve } from 'node:path';
import { ConsoleRelay, relayTerminal } from './console-relay';
import { createContainer, loadSpec, type CreateOptions } from './create';
import { deleteContainer } from './delete';
import { readProcessStat } from './process-identity';
import { forwardSignals } from './signal-forward';
import { startContainer } from './start';
import { mark } from '../log/timing';
import { trimWhileWaiting } from '../native/working-set';
import { lightWaitArgs, runStarting, waitInLight } from './light-wait';

export interface RunOptions extends CreateOptions {
  detach: boolean;
  keep: boolean;
  /** The global flags for stockade-light's wait (lightGlobals): given, an attached run without a
   *  terminal to relay becomes that wait once its container runs (light-wait.ts). */
  lightGlobals?: readonly string[] | undefined;
}

export async function runContainer(opts: RunOptions): Promise<number> {
  const spec = opts.spec ?? loadSpec(resolve(opts.bundle));
  opts.store.ensureRoot();
  // As runc: an attached run of a terminal container with no console socket gets the caller's terminal.
  const relay = spec.process?.terminal === true && !opts.detach && opts.consoleSocket === undefined
    ? ConsoleRelay.listen(join(opts.store.root, `.console-${opts.id}.sock`))
    : undefined;
  let created;
  try {
    created = await createContainer({ ...opts, spec, monitor: !opts.detach, consoleSocket: relay?.path ?? opts.consoleSocket });
  } catch (e) {
    relay?.close();
    throw e;
  }
  mark('created');
  const { workload, record } = created;
  const terminal = relay === undefined ? undefined : relayTerminal(relay.receiveMaster());
  const startTime = readProcessStat(record.pid)?.startTime ?? record.pidStartTime;
  const stopForwarding = opts.detach ? () => undefined : forwardSignals(record.pid, startTime);
  // Were the planner driving this run lost once the workload is released, its front finishes the
  // run with this (runStarting): nothing more for a detached run, else the wait.
  const helper = workload.monitor;
  const waitArgs = helper?.pid !== undefined && opts.lightGlobals !== undefined ? lightWaitArgs(opts.id, helper.pid, opts.keep, opts.lightGlobals) : undefined;
  runStarting(opts.detach ? [] : waitArgs);
  try {
    await startContainer(opts.store, opts.levels, opts.id, { warn: opts.warn });
  } catch (e) {
    if (!opts.keep) await deleteContainer(opts.store, opts.levels, opts.id, true, { warn: opts.warn }).catch(() => undefined);
    throw e;
  }
  mark('started');
  if (opts.detach) return 0;
  // Only while the workload's monitor (stockade-init) is unreaped (Node reaps a child on the event
  // loop, and none has run since it was last checked here): the wait must find it. Signals that
  // came meanwhile were forwarded from here; from the execve on, the wait forwards them. The wait
  // itself goes only where the container's light record lets it (light-wait.ts).
  if (terminal === undefined && opts.lightGlobals !== undefined && helper?.pid !== undefined && helper.exitCode === null && helper.signalCode === null) {
    await waitInLight({
      store: opts.store, id: opts.id, helperPid: helper.pid, keep: opts.keep, globals: opts.lightGlobals,
      helperRunning: () => helper.exitCode === null && helper.signalCode === null,
    });
  }
  const stopTrimming = trimWhileWaiting();
  const { code, signal } = await workload.exit;
  stopTrimming();
  mark('exited');
  if (terminal !== undefined) {
    await Promise.race([terminal.finished, new Promise((r) => setTimeout(r, 500))]);
    terminal.stop();
  }
  stopForwarding();
  if (!opts.keep) await deleteContainer(opts.store, opts.levels, opts.id, true, { warn: opts.warn });
  mark('deleted');
  // Every supervised process is gone once the container is deleted: what the level runs beside it stops on its own.
  await workload.done;
  if (code === null) throw new StockadeError('SYSTEM', `stockade-init was killed by ${signal ?? 'a signal'}`);
  return code;
}
