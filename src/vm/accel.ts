// Chooses QEMU's accelerator: KVM where /dev/kvm can run a standard guest, TCG (emulation) where it cannot.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';

export interface AccelChoice {
  readonly accel: 'kvm' | 'tcg';
  /** Why, for --debug logs. */
  readonly reason: string;
}

/**
 * `kvm_pvm` (the PVM hypervisor) serves /dev/kvm to guests built for PVM only; a standard kernel
 * hangs under it, so its presence rules KVM out even though /dev/kvm opens. This is the quick
 * rule; a `kvm` answer here is only a candidate that src/vm/accel-probe.ts confirms by booting
 * a standard guest. STOCKADE_VM_ACCEL (kvm or tcg) overrides both. `sysModule` is the
 * /sys/module path, for tests.
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
  return { accel: 'kvm', reason: `${devKvm} with a standard KVM module (still to be probed)` };
}

/**
 * Kernel arguments that spare a TCG guest its clock calibration. Under TCG the guest's TSC is
 * the host's, and the guest calibrates it against an emulated PIT; on a loaded host the
 * emulation stalls, calibration fails, and the guest was seen to hang for good after "tsc:
 * Marking TSC unstable". Told the frequency (the host's, from /proc/cpuinfo when the TSC is
 * constant; STOCKADE_VM_TSC_KHZ overrides) it skips calibration, and tsc=reliable keeps the
 * clocksource watchdog from discarding the TSC over a stall. Empty when the rate is not known.
 */
export function tcgClockArgs(cpuinfo = '/proc/cpuinfo'): string[] {
  const forced = Number(process.env['STOCKADE_VM_TSC_KHZ']);
  let khz = Number.isInteger(forced) && forced > 0 ? forced : undefined;
  if (khz === undefined) {
    let text = '';
    try {
      text = readFileSync(cpuinfo, 'utf8');
    } catch {
      return [];
    }
    const flags = /^flags\s*:\s*(.*)$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
    const mhz = Number(/^cpu MHz\s*:\s*([0-9.]+)$/m.exec(text)?.[1]);
    if (!flags.includes('constant_tsc') || !flags.includes('nonstop_tsc') || !(mhz > 0)) return [];
    khz = Math.round(mhz * 1000);
  }
  return [`tsc_early_khz=${khz}`, 'tsc=reliable'];
}
