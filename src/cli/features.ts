// stockade features: the runtime-spec features document, or with --syscalls the sentry's syscall table.
import { StockadeError } from '../errors';
import { featuresDocument } from '../oci/features';
import { availableLevels } from '../levels/registry';
import { nativeArch } from '../seccomp/arch';
import { renderTable, tableJson } from '../sentry/syscalls';
import { bool, parseArgs, str } from './args';
import type { Command } from './context';
import { out } from '../log/logger';

export const command: Command = {
  summary: 'print the features this runtime supports',
  usage: 'stockade features [--syscalls [--format table|json]]',
  async run(argv) {
    const p = parseArgs(argv, [{ name: 'syscalls', type: 'bool' }, { name: 'format', type: 'string' }], 'features');
    const format = str(p, 'format');
    if (!bool(p, 'syscalls')) {
      if (format !== undefined) throw new StockadeError('USAGE', 'features: --format goes with --syscalls', { flag: 'format' });
      out(`${JSON.stringify(featuresDocument({ levels: availableLevels() }), null, 4)}\n`);
      return 0;
    }
    const arch = nativeArch();
    switch (format ?? 'table') {
      case 'table': out(renderTable(arch)); return 0;
      case 'json': out(`${JSON.stringify(tableJson(arch), null, 2)}\n`); return 0;
      default: throw new StockadeError('USAGE', `features: --format takes table or json, not ${JSON.stringify(format)}`, { flag: 'format' });
    }
  },
};
