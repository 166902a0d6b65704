// The package's entry: `import { Sandbox } from 'stockade'`, sandboxes at the wall a program chooses.
export { Sandbox, DEFAULT_MAX_BUFFER } from './sandbox';
export { SandboxProcess } from './process';
export { SandboxFiles } from './files';
export {
  SandboxError, SandboxOptionsError, SandboxCreateError, SandboxClosedError, SandboxTimeoutError, SandboxAbortError,
  SandboxExitError, SandboxOutOfMemoryError, SandboxFileError, SandboxExecError, SandboxOutputLimitError, type SandboxErrorCode,
} from './errors';
export type { ExecOptions, ExecResult, FileEntry, Isolation, SandboxOptions, SpawnOptions } from './types';
