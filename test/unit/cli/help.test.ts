// stockade help CMD / CMD --help (issue 19, item 5): every command's every option described, with an example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS } from '../../../src/cli/commands';
import { HELP } from '../../../src/cli/help';
import { parseArgs } from '../../../src/cli/args';

test('every command has a help with an example, and describes every flag its synopsis names', () => {
  for (const [name, load] of Object.entries(COMMANDS)) {
    const cmd = load();
    const help = HELP[name] ?? cmd.usage;
    assert.ok(help.length > cmd.usage.length || name === 'do', `${name}: only its synopsis`);
    assert.match(help, /\nExamples?:\n {2}\S/, `${name}: no example`);
    for (const [flag] of cmd.usage.matchAll(/--[a-z][a-z-]*/g)) {
      assert.match(help, new RegExp(`^ +(-[a-zA-Z], )?${flag}\\b`, 'm'), `${name}: ${flag} is not described`);
    }
  }
  assert.deepEqual(Object.keys(HELP).filter((k) => COMMANDS[k] === undefined), [], 'help for a command that does not exist');
});

test('an unknown flag names itself and points at the help', () => {
  assert.throws(() => parseArgs(['--bogus'], [], 'create'), /^StockadeError: create: unknown flag --bogus \(see stockade create --help\)$/);
  assert.throws(() => parseArgs(['--bogus=1'], [], 'stockade'), /unknown flag --bogus \(see stockade --help\)$/);
});
