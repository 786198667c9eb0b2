// The `lifeboat` CLI (shared/DESIGN.md §9). Every command is declared up front
// so that `--help` is complete, but its code is loaded only when it runs:
// PostgreSQL starts `archive-push` and `archive-get` once per WAL segment, and
// loading the Temporal client or the AWS SDK for them would cost more than
// the work itself.
//
// Exit codes: 0 success, 1 the operation failed, 2 bad usage or input.
//
// The declarations live in src/cli/program/, one file per area, called below
// in the order `lifeboat --help` lists them; the options several commands
// share are declared once, in src/cli/program/options.ts. The commands' code
// is in src/cli/commands/, one file per command.
import { Command, CommanderError } from 'commander';
import { EXIT } from './run';
import { declareAccess } from './program/access';
import { declareBackups } from './program/backups';
import { declareDrills } from './program/drills';
import { declareRecovery } from './program/recovery';
import { declareSetup } from './program/setup';
import { declareWal } from './program/wal';

const program = new Command();

program
  .name('lifeboat')
  .description('PostgreSQL disaster recovery as durable Temporal workflows: backups, WAL archive, recovery, drills.')
  .version(require('../../../package.json').version as string)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

declareSetup(program);
declareBackups(program);
declareWal(program);
declareRecovery(program);
declareDrills(program);
declareAccess(program);

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exitCode 0.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    throw err;
  }
}

void main();
