// stockade features: the runtime-spec features document.
import { featuresDocument } from '../oci/features';
import { parseArgs } from './args';
import type { Command } from './context';
import { out } from './log';

export const command: Command = {
  summary: 'print the features this runtime supports',
  usage: 'stockade features',
  async run(argv) {
    parseArgs(argv, [], 'features');
    out(`${JSON.stringify(featuresDocument(), null, 4)}\n`);
    return 0;
  },
};
