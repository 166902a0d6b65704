// The client tier for containerd: ctr scenarios under stockade (and runc, in the full run) on a private containerd.
import { CONTAINERD_LACKS, containerdMissing, startContainerdClient } from './containerd';
import { clientSuite } from './suite';

clientSuite({ name: 'containerd', missing: containerdMissing, start: startContainerdClient, lacks: CONTAINERD_LACKS });
