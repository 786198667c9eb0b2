// `lifeboat archive-push`, `archive-catchup`, `archive-get` and the two
// internal helpers they start: what PostgreSQL runs as archive_command and
// restore_command.
import { Option, type Command } from 'commander';
import { runCommand } from '../run';
import { fallbackRepoOption, jsonOption, repoOptions } from './options';

export function declareWal(program: Command): void {
  repoOptions(
    program
      .command('archive-push')
      .description(
        "PostgreSQL's archive_command: archive-push %p. Idempotent, atomic, checksummed, compressed; " +
          'a detached read-ahead pusher archives the other files waiting in pg_wal/archive_status, so later calls find their work done',
      )
      .argument('<path>', 'the WAL file to archive (%p, relative to the data directory)')
      .addOption(new Option('--parallel <n>', 'files the read-ahead pusher archives at once').default('4'))
      .option('--no-ahead', 'push only the given file, start no read-ahead pusher'),
  ).action((path: string, opts) => runCommand(() => import('../commands/archive-push'), { ...opts, path }));

  repoOptions(
    program
      .command('archive-catchup')
      .description(
        'copy into every other repository of the runbook (repositories:) the WAL the first one holds and it lacks; ' +
          'exit 1 while one still lacks some',
      )
      .option('--pg-wal <dir>', "also clear this pg_wal's catch-up queue (.lifeboat-catchup) of what is now copied")
      .addOption(new Option('--parallel <n>', 'files copied at once').default('4'))
      .addOption(jsonOption()),
  ).action((opts) => runCommand(() => import('../commands/archive-catchup'), opts));

  repoOptions(
    program
      .command('archive-push-ahead', { hidden: true })
      .description("internal: the read-ahead pusher archive-push starts beside PostgreSQL's archiver")
      .requiredOption('--pg-wal <dir>', 'the pg_wal directory to watch')
      .addOption(new Option('--parallel <n>', 'files archived at once').default('4')),
  ).action((opts) => runCommand(() => import('../commands/archive-push-ahead'), opts));

  repoOptions(
    program
      .command('archive-get')
      .description(
        "PostgreSQL's restore_command: archive-get %f %p. Verifies the checksum, serves from a prefetch spool; " +
          'exit 1 means "not in the archive" (the normal end of recovery), exit 255 aborts recovery on corruption',
      )
      .argument('<file>', 'WAL file name PostgreSQL asks for (%f)')
      .argument('<path>', 'where to put it (%p)')
      .addOption(new Option('--prefetch <n>', 'segments to download ahead of replay (0: none)').default('8'))
      .option('--spool-dir <dir>', 'prefetch spool (default pg_wal/.lifeboat-prefetch in the data directory)')
      .addOption(fallbackRepoOption())
      // Any failure of restore_command other than "not in the archive" must
      // abort recovery (exit > 125), never read as its end: a mistyped option
      // or a broken install included.
      .exitOverride((err) => {
        if (err.exitCode !== 0) process.exit(255);
        throw err;
      }),
  ).action((file: string, path: string, opts) =>
    runCommand(
      () =>
        import('../commands/archive-get').catch((err: unknown) => ({
          run: async () => {
            process.stderr.write(`lifeboat archive-get: FATAL: cannot load the command: ${String(err)}\n`);
            return 255;
          },
        })),
      { ...opts, file, path },
    ),
  );

  repoOptions(
    program
      .command('archive-prefetch', { hidden: true })
      .description('internal: downloads segments into the archive-get spool')
      .argument('<file>', 'first segment to fetch (with --after: the segment just served)')
      .option('--after', 'start after <file>, and only when fewer than half of the next --count segments are spooled')
      .option('--follow', 'stay: keep --count segments spooled after <file> while replay takes them, until idle')
      .option('--starting', 'with --follow: <file> itself is the first segment to fetch')
      .requiredOption('--spool-dir <dir>', 'prefetch spool')
      .addOption(new Option('--count <n>', 'how many segments').default('8'))
      .addOption(fallbackRepoOption()),
  ).action((file: string, opts) => runCommand(() => import('../commands/archive-prefetch'), { ...opts, file }));
}
