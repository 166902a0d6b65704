// The vm level's errors: a StockadeError whose `reason` says which part of the VM failed.
import { StockadeError, type ErrorCode, type ErrorContext } from '../errors';

export type VmFailure =
  | 'ASSETS'       // the kernel, initramfs, agent or stockade-init could not be had
  | 'VMM_MISSING'  // qemu-system-x86_64 or virtiofsd is not installed
  | 'VMM_EXITED'   // QEMU or virtiofsd died: the guest and everything in it are gone
  | 'BOOT_TIMEOUT' // the agent did not answer in time
  | 'PROTOCOL'     // the guest sent something the protocol does not allow
  | 'AGENT'        // the agent refused a request (errno in context)
  | 'TIMEOUT'      // the agent did not answer a request in time
  | 'LIMIT'        // a process's output passed what the caller agreed to hold
  | 'TEMPLATE'     // a VM template was corrupt, made by other inputs or half written: refused
  | 'DESTROYED';   // the VM was destroyed while the request was open

export class VmError extends StockadeError {
  readonly reason: VmFailure;
  constructor(reason: VmFailure, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    const code: ErrorCode = reason === 'VMM_MISSING' || reason === 'ASSETS' ? 'UNSUPPORTED' : 'SYSTEM';
    super(code, message, { ...context, reason }, options);
    this.name = 'VmError';
    this.reason = reason;
  }
}
