// stockade spec [--bundle DIR] [--rootless]: writes a default config.json.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultSpec } from '../oci/default-spec';
import { defaultSeccompProfile } from '../seccomp';
import { StockadeError } from '../errors';
import { bool, parseArgs, str } from './args';
import type { Command } from './context';

export const command: Command = {
  summary: 'write a default config.json',
  usage: 'stockade spec [--bundle DIR] [--rootless]',
  async run(argv) {
    const p = parseArgs(argv, [{ name: 'bundle', type: 'string', short: 'b' }, { name: 'rootless', type: 'bool' }], 'spec');
    const path = join(str(p, 'bundle') ?? process.cwd(), 'config.json');
    if (existsSync(path)) throw new StockadeError('USAGE', `${path} already exists: remove it first`, { path });
    const spec = defaultSpec({ rootless: bool(p, 'rootless') });
    // Unlike runc, the default bundle carries Docker's default seccomp profile, cut to its capabilities.
    const caps = spec.process?.capabilities?.bounding ?? [];
    spec.linux = { ...spec.linux, seccomp: defaultSeccompProfile({ capabilities: caps }) };
    writeFileSync(path, `${JSON.stringify(spec, null, '\t')}\n`);
    return 0;
  },
};
