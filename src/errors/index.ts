// The error base class: a stable code, the context it happened in, and a one-line message.

export type ErrorCode =
  | 'CONFIG_INVALID'        // config.json unreadable, malformed or violating the schema
  | 'BUNDLE_INVALID'        // bundle directory or rootfs missing
  | 'CONTAINER_EXISTS'
  | 'CONTAINER_NOT_FOUND'
  | 'CONTAINER_ID_INVALID'
  | 'STATE_TRANSITION'      // an operation not allowed in the container's status
  | 'SIGNAL_INVALID'
  | 'INIT_FAILED'           // stockade-init reported a failed setup step
  | 'EXEC_FAILED'           // the container process could not be executed
  | 'USAGE'                 // bad command line
  | 'UNSUPPORTED'           // asked for something this host or this build cannot do
  | 'SECCOMP_INVALID'
  | 'CGROUP_FAILED'
  | 'HOOK_FAILED'
  | 'IMAGE_INVALID'         // an image, layer or reference refused (bad digest, hostile layer, unknown format)
  | 'IMAGE_NOT_FOUND'       // no such image in the store or at the source
  | 'SYSTEM';               // an unexpected failure of a host call

export type ErrorContext = Readonly<Record<string, string | number | boolean | undefined>>;

export class StockadeError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StockadeError';
    this.code = code;
    this.context = context;
  }
}

export function isStockadeError(e: unknown): e is StockadeError {
  return e instanceof StockadeError;
}

/** Node's system errors carry `code` ('ENOENT') and `errno`. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = (e as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
