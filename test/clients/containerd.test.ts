// The client tier for containerd: ctr scenarios under stockade (and runc, in the full run) on a private containerd.
import { containerdMissing, startContainerdClient } from './containerd';
import { clientSuite } from './suite';

clientSuite({ name: 'containerd', missing: containerdMissing, start: startContainerdClient });
