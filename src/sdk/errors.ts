// The SDK's errors: one class per way a sandbox call can fail, each with a stable code and a one-line message.
import type { ExecResult } from './types';

export type SandboxErrorCode =
  | 'SANDBOX_OPTIONS'   // an option of create, exec or spawn is wrong (the message names it)
  | 'SANDBOX_CREATE'    // the sandbox could not be made (image, level, limits the host cannot apply)
  | 'SANDBOX_CLOSED'    // the sandbox was killed, disposed, or its level's part died
  | 'SANDBOX_TIMEOUT'   // a command, or the sandbox itself, ran past its time
  | 'SANDBOX_ABORTED'   // the AbortSignal given to exec fired
  | 'SANDBOX_EXIT'      // a command exited non-zero and exec was asked to check
  | 'SANDBOX_OOM'       // a command was killed by the OOM killer at the sandbox's memory limit
  | 'SANDBOX_FILE'      // a files.* call failed in the sandbox (the message says why)
  | 'SANDBOX_OUTPUT'    // a command wrote more than exec's maxBuffer on stdout or stderr
  | 'SANDBOX_EXEC';     // a command could not be started (no such program, ...)

export class SandboxError extends Error {
  readonly code: SandboxErrorCode;
  constructor(code: SandboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SandboxError';
    this.code = code;
  }
}

/** An option of create, exec or spawn is wrong: `option` names it. */
export class SandboxOptionsError extends SandboxError {
  readonly option: string;
  constructor(option: string, message: string) {
    super('SANDBOX_OPTIONS', `${option}: ${message}`);
    this.name = 'SandboxOptionsError';
    this.option = option;
  }
}

/** The sandbox could not be made; nothing of it is left. */
export class SandboxCreateError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SANDBOX_CREATE', message, options);
    this.name = 'SandboxCreateError';
  }
}

/** The sandbox is gone (killed, disposed, past its timeoutMs, or its wall's own part died). */
export class SandboxClosedError extends SandboxError {
  constructor(message: string) {
    super('SANDBOX_CLOSED', message);
    this.name = 'SandboxClosedError';
  }
}

/** A command ran past its timeoutMs and was killed; what it wrote until then is kept. */
export class SandboxTimeoutError extends SandboxError {
  readonly timeoutMs: number;
  readonly stdout: string;
  readonly stderr: string;
  constructor(message: string, timeoutMs: number, partial: { stdout: string; stderr: string }) {
    super('SANDBOX_TIMEOUT', message);
    this.name = 'SandboxTimeoutError';
    this.timeoutMs = timeoutMs;
    this.stdout = partial.stdout;
    this.stderr = partial.stderr;
  }
}

/** exec's AbortSignal fired: the command was killed. */
export class SandboxAbortError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SANDBOX_ABORTED', message, options);
    this.name = 'SandboxAbortError';
  }
}

/** A command exited non-zero and exec was called with `check: true`. */
export class SandboxExitError extends SandboxError {
  readonly result: ExecResult;
  constructor(message: string, result: ExecResult) {
    super('SANDBOX_EXIT', message);
    this.name = 'SandboxExitError';
    this.result = result;
  }
  get exitCode(): number { return this.result.exitCode; }
}

/** A command was killed by the kernel's OOM killer: the sandbox's memoryMb was not enough. */
export class SandboxOutOfMemoryError extends SandboxError {
  readonly result: ExecResult;
  readonly memoryMb: number | undefined;
  constructor(message: string, result: ExecResult, memoryMb: number | undefined) {
    super('SANDBOX_OOM', message);
    this.name = 'SandboxOutOfMemoryError';
    this.result = result;
    this.memoryMb = memoryMb;
  }
}

/** A command wrote more than exec's maxBuffer (or files.read more than its bound): it was killed. */
export class SandboxOutputLimitError extends SandboxError {
  /** Which stream went past the bound. */
  readonly stream: 'stdout' | 'stderr';
  readonly maxBuffer: number;
  /** What came on each stream, up to the bound. */
  readonly stdout: string;
  readonly stderr: string;
  constructor(message: string, stream: 'stdout' | 'stderr', maxBuffer: number, partial: { stdout: string; stderr: string }) {
    super('SANDBOX_OUTPUT', message);
    this.name = 'SandboxOutputLimitError';
    this.stream = stream;
    this.maxBuffer = maxBuffer;
    this.stdout = partial.stdout;
    this.stderr = partial.stderr;
  }
}

/** A files.* call failed inside the sandbox: `path` is the sandbox's path it was about. */
export class SandboxFileError extends SandboxError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('SANDBOX_FILE', message);
    this.name = 'SandboxFileError';
    this.path = path;
  }
}

/** A command could not be started in the sandbox. */
export class SandboxExecError extends SandboxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SANDBOX_EXEC', message, options);
    this.name = 'SandboxExecError';
  }
}
