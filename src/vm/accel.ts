// Chooses QEMU's accelerator: KVM where /dev/kvm can run a standard guest, TCG (emulation) where it cannot.
import { accessSync, constants, existsSync } from 'node:fs';

export interface AccelChoice {
  readonly accel: 'kvm' | 'tcg';
  /** Why, for --debug logs. */
  readonly reason: string;
}

/**
 * `kvm_pvm` (the PVM hypervisor) serves /dev/kvm to guests built for PVM only; a standard kernel
 * hangs under it, so its presence rules KVM out even though /dev/kvm opens. STOCKADE_VM_ACCEL
 * (kvm or tcg) overrides the probe. `sysModule` is the /sys/module path, for tests.
 */
export function chooseAccel(sysModule = '/sys/module', devKvm = '/dev/kvm'): AccelChoice {
  const forced = process.env['STOCKADE_VM_ACCEL'];
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: `STOCKADE_VM_ACCEL=${forced}` };
  if (existsSync(`${sysModule}/kvm_pvm`)) {
    return { accel: 'tcg', reason: `${devKvm} is served by kvm_pvm, which runs only PVM guests: using TCG` };
  }
  if (!existsSync(`${sysModule}/kvm_intel`) && !existsSync(`${sysModule}/kvm_amd`)) {
    return { accel: 'tcg', reason: 'neither kvm_intel nor kvm_amd is loaded: using TCG' };
  }
  try {
    accessSync(devKvm, constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: `${devKvm} is not usable: using TCG` };
  }
  return { accel: 'kvm', reason: `${devKvm} with a standard KVM module` };
}
