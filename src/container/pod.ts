// A pod's containers, as containerd's and CRI-O's CRI plugins mark them: which is the sandbox, and which sandbox a container belongs to.
import { parseContainerId, type ContainerId } from './id';

/** Annotations containerd's and CRI-O's CRI plugins put on every container of a pod. */
const POD_ANNOTATIONS = [
  { type: 'io.kubernetes.cri.container-type', sandbox: 'io.kubernetes.cri.sandbox-id' },
  { type: 'io.kubernetes.cri-o.ContainerType', sandbox: 'io.kubernetes.cri-o.SandboxID' },
] as const;

/** The id of the sandbox (the pod's first container) a pod's container belongs to; undefined for the sandbox itself or a container of no pod. */
export function podSandbox(annotations: Readonly<Record<string, string>> | undefined, id: string): ContainerId | undefined {
  for (const a of POD_ANNOTATIONS) {
    const sandbox = annotations?.[a.sandbox];
    if (annotations?.[a.type] !== 'container' || sandbox === undefined || sandbox === id) continue;
    try {
      return parseContainerId(sandbox);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** A pod's sandbox ("pause") container: the one that holds the pod's namespaces. */
export function isPodSandbox(annotations: Readonly<Record<string, string>> | undefined): boolean {
  return POD_ANNOTATIONS.some((a) => annotations?.[a.type] === 'sandbox');
}
