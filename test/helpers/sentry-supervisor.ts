// A minimal sentry supervisor for tests, run as a worker_thread: takes the listener, answers execve and getppid, reports what it saw.
//
// workerData: { addon: path of src/native/addon, socket: fd the listener arrives on, getppid: the
// value to answer getppid with, execveNr, getppidNr }. Posts one SupervisorReport when the
// workload is gone (notifRecv says 1) or something failed.
import { parentPort, workerData } from 'node:worker_threads';

export interface SupervisorReport {
  /** What recvFd brought: the listener arrived with the one byte "L". */
  readonly handoff: { readonly gotFd: boolean; readonly data: string };
  /** args[0] of each execve, read with memReadString. */
  readonly execs: (string | number)[];
  /** notifIdValid before and after the answer, per notification. */
  readonly validBefore: boolean[];
  readonly validAfter: boolean[];
  readonly getppids: number;
  /** The last notifRecv result: 1 when the workload exited. */
  readonly end: number;
  readonly error?: string;
}

interface Data {
  readonly addon: string;
  readonly socket: number;
  readonly getppid: number;
  readonly execveNr: number;
  readonly getppidNr: number;
  readonly continueFlag: number;
}

type Native = typeof import('../../src/native/addon');

function main(): SupervisorReport {
  const d = workerData as Data;
  const addon = require(d.addon) as Native;
  const n = addon.sentryNative();
  const report = {
    handoff: { gotFd: false, data: '' }, execs: [] as (string | number)[], validBefore: [] as boolean[],
    validAfter: [] as boolean[], getppids: 0, end: 0,
  };
  const got = addon.recvFd(d.socket);
  report.handoff = { gotFd: got.fd !== null, data: got.data.toString('latin1') };
  if (got.fd === null) return { ...report, error: 'no listener arrived (EOF)' };
  const listener = got.fd;
  const buf = Buffer.alloc(80);
  for (;;) {
    const r = n.notifRecv(listener, buf);
    if (r === -2) continue; // ENOENT: the task died before we read it
    if (r !== 0) return { ...report, end: r };
    const id = buf.readBigUInt64LE(0);
    const pid = buf.readUInt32LE(8);
    const nr = buf.readInt32LE(16);
    const arg0 = buf.readBigUInt64LE(32);
    report.validBefore.push(n.notifIdValid(listener, id));
    let sent: number;
    if (nr === d.execveNr) {
      report.execs.push(n.memReadString(pid, arg0, 4096));
      sent = n.notifSend(listener, id, 0n, 0, d.continueFlag);
    } else if (nr === d.getppidNr) {
      report.getppids++;
      sent = n.notifSend(listener, id, BigInt(d.getppid), 0, 0);
    } else {
      sent = n.notifSend(listener, id, 0n, 0, d.continueFlag);
    }
    if (sent !== 0 && sent !== -2) return { ...report, error: `notifSend: ${sent}` };
    report.validAfter.push(n.notifIdValid(listener, id));
  }
}

let out: SupervisorReport;
try {
  out = main();
} catch (e) {
  out = { handoff: { gotFd: false, data: '' }, execs: [], validBefore: [], validAfter: [], getppids: 0, end: 0, error: String(e) };
}
parentPort?.postMessage(out);
