// The SDK's public shapes: what Sandbox.create, exec, spawn and files take and give.

/** The wall a sandbox runs behind (the CLI's --isolation). */
export type Isolation = 'namespaces' | 'sentry' | 'vm';

/** Sandbox.create's options. Exactly one of `image` and `hostRoot`. */
export interface SandboxOptions {
  /**
   * An image reference as `stockade pull` takes it (`oci:DIR[:TAG]`, `docker-archive:FILE`,
   * `HOST/NAME:TAG`, `docker://...`): pulled into the store unless it is there already. Its Env,
   * WorkingDir and User apply to every command.
   */
  image?: string | undefined;
  /** The host's root file system, read-only, with fresh in-memory /tmp, /var/tmp and /run, as `stockade do`. */
  hostRoot?: true | undefined;
  /** The wall: namespaces (default), sentry, or vm. `network: { allow }` needs sentry (its default then). */
  isolation?: Isolation | undefined;
  /** Memory for the whole sandbox, its in-memory file systems included (default 2048; at least 32). */
  memoryMb?: number | undefined;
  /** CPU time, in CPUs (0.5, 2); default: no limit. */
  cpus?: number | undefined;
  /** Processes and threads at most (default 1024). */
  pids?: number | undefined;
  /**
   * 'none' (default): a network of the sandbox's own with loopback only. `{ allow: [...] }`: the
   * host's network, reaching only these destinations, as `stockade do --allow-net` takes them:
   * HOST[:PORT], CIDR[:PORT], N, N-M, dns=ADDR (isolation sentry).
   */
  network?: 'none' | { allow: readonly string[] } | undefined;
  /** Variables every command gets, over the image's (KEY: value). */
  env?: Readonly<Record<string, string>> | undefined;
  /** The sandbox's lifetime: past it the sandbox is killed, and what runs fails with SandboxTimeoutError. */
  timeoutMs?: number | undefined;
  /** The state directory (the CLI's --root; default /run/stockade). */
  root?: string | undefined;
  /** A file the runtime's warnings and errors go to (JSON lines, as the CLI's --log). */
  logFile?: string | undefined;
  /** For an image from a registry that asks for them. */
  registry?: { creds?: string | undefined; plainHttp?: boolean | undefined } | undefined;
}

/** What a command run to its end gives. */
export interface ExecResult {
  /** The exit status: 0-255, or 128+N when signal N killed it. */
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Options of exec and spawn. */
export interface SpawnOptions {
  /** The working directory, an absolute path in the sandbox (default: the image's WorkingDir, else /). */
  cwd?: string | undefined;
  /** Variables over the sandbox's. */
  env?: Readonly<Record<string, string>> | undefined;
  /** Kill the command (its whole process group) after this long: exec then fails with SandboxTimeoutError. */
  timeoutMs?: number | undefined;
  /** Kill the command when this fires: exec then fails with SandboxAbortError. */
  signal?: AbortSignal | undefined;
  /**
   * Who the command runs as, as `docker exec --user` takes it: NAME, UID, NAME:GROUP or UID:GID
   * (names from the image's /etc/passwd and /etc/group), or a uid number; HOME follows the user.
   * Default: the image's User. Not for hostRoot sandboxes, whose commands all run as one identity.
   */
  user?: string | number | undefined;
  /**
   * A terminal: the command's stdin, stdout and stderr are one pty, read as stdout (stderr ends at
   * once); ending stdin sends ^D. `true` is 24 rows by 80 columns; SandboxProcess.resize changes it.
   */
  tty?: boolean | { rows: number; cols: number } | undefined;
}

export interface ExecOptions extends SpawnOptions {
  /** What the command reads on its stdin (default: nothing, an immediate end). */
  stdin?: string | Uint8Array | AsyncIterable<string | Uint8Array> | undefined;
  /** Each piece of stdout as it comes (UTF-8, split only between characters). */
  onStdout?: ((chunk: string) => void) | undefined;
  /** Each piece of stderr as it comes. */
  onStderr?: ((chunk: string) => void) | undefined;
  /** A non-zero exit fails exec with SandboxExitError instead of resolving. */
  check?: boolean | undefined;
  /**
   * The most bytes of stdout, and of stderr, that exec keeps (as child_process's maxBuffer): past
   * it the command is killed and exec fails with SandboxOutputLimitError, which holds what came up
   * to the bound. Default 16 MiB (DEFAULT_MAX_BUFFER); Infinity for no bound.
   */
  maxBuffer?: number | undefined;
}

/** One entry of files.list. */
export interface FileEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
}
