// The guest's RAM changed while it runs, through QEMU's virtio-balloon (QMP `balloon`).
//
// microvm has no memory hot-plug (no ACPI, no PCI), but a cold VM has a balloon device
// (vmm.ts): inflating it takes pages from the guest (its driver allocates them and hands them to
// QEMU, which punches them out of the memfd, so QEMU's resident memory shrinks), and the guest's
// MemTotal drops by as much (QEMU's balloon offers no deflate-on-OOM, so the guest kernel counts
// those pages as gone). Deflating gives them back, up to the RAM the VM booted with: the balloon
// lowers a VM's memory and raises it again, never past its boot size.
//
// The guest's driver inflates only with pages it can get without reclaim pressure of its own
// (__GFP_NORETRY): a guest that cannot free enough stalls short of the target and retries for
// ever. So the target is followed until reached or until it stops moving; then it is set to
// where the guest got, and that is what the caller is told.
import { VmError } from './errors';
import type { Qmp } from './qmp';

const MiB = 1024 * 1024;

export class Balloon {
  #ready: Promise<unknown> | undefined;

  constructor(readonly qmp: Qmp, readonly bootMiB: number) {}

  /** The guest's RAM now (MiB, rounded up), as the balloon driver last reported it. */
  async currentMiB(): Promise<number> {
    await this.#negotiate();
    return Math.ceil((await this.#actual()) / MiB);
  }

  /**
   * Moves the guest's RAM to targetMiB (at most its boot size) and resolves with where it got, in
   * MiB: the target, or more when the guest could not free enough within stallMs of no progress
   * (the balloon is then left there, not pressing on).
   */
  async resize(targetMiB: number, o: { stallMs?: number; timeoutMs?: number } = {}): Promise<number> {
    if (!Number.isInteger(targetMiB) || targetMiB < 1) throw new RangeError(`vm balloon: target ${targetMiB} MiB is not a positive whole number`);
    const target = Math.min(targetMiB, this.bootMiB) * MiB;
    await this.#negotiate();
    await this.#execute('balloon', { value: target });
    const stallMs = o.stallMs ?? 3000;
    const deadline = Date.now() + (o.timeoutMs ?? 20000);
    let last = await this.#actual();
    let movedAt = Date.now();
    while (last !== target) {
      if (Date.now() - movedAt > stallMs || Date.now() > deadline) {
        // Held where it got: the guest's driver would otherwise retry without end, a busy guest under TCG.
        await this.#execute('balloon', { value: last });
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
      const now = await this.#actual();
      if (now !== last) movedAt = Date.now();
      last = now;
    }
    return Math.ceil(last / MiB);
  }

  /** A QMP command, given up on after 10 s (a frozen VM's QEMU, paused with its container, answers nothing). */
  async #execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new VmError('TIMEOUT', `vm: QEMU did not answer ${command} within 10 s`, { command })), 10000);
    });
    try {
      return await Promise.race([this.qmp.execute(command, args), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #negotiate(): Promise<unknown> {
    this.#ready ??= this.#execute('qmp_capabilities');
    return this.#ready;
  }

  async #actual(): Promise<number> {
    const r = (await this.#execute('query-balloon')) as { actual?: unknown } | undefined;
    const actual = r?.actual;
    if (typeof actual !== 'number' || !Number.isSafeInteger(actual) || actual < 0) throw new VmError('PROTOCOL', 'vm: QEMU\'s query-balloon gave no size');
    return actual;
  }
}
