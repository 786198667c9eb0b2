// `lifeboat backup`, `backups`, `check`, `metrics`, `standby ...`, `expire`:
// base backups, the archive's health, the warm standby and retention.
import type { Command } from 'commander';
import { runCommand } from '../run';
import {
  jsonOption,
  noWaitOption,
  repeatable,
  repoOptions,
  runbookOption,
  runbooksDirOption,
  temporalOptions,
} from './options';

export function declareBackups(program: Command): void {
  temporalOptions(
    repoOptions(
      program
        .command('backup')
        .description('start the `baseBackup` workflow for a runbook and wait for the verified backup')
        .addOption(noWaitOption())
        .addOption(jsonOption())
        .option(
          '--type <type>',
          "full (the default), diff or incr; diff and incr need engine: pgbackrest in the runbook (Lifeboat's own engine takes full backups only)",
        )
        .option(
          '--schedule <cron>',
          "instead: create or update the Temporal Schedule lifeboat-backup-<runbook> (cron in UTC, e.g. '0 2 * * *'); its backups also run expireBackups",
        ),
    ),
  ).action((opts) => runCommand(() => import('../commands/backup'), opts));

  repoOptions(
    program
      .command('backups')
      .description(
        "list the base backups in the repository (id, start/end time and LSN, timeline, size, verified); with engine: pgbackrest in the runbook, the stanza's backups as pgbackrest info lists them",
      )
      .addOption(jsonOption('print the catalog as JSON')),
  ).action((opts) => runCommand(() => import('../commands/backups'), opts));

  repoOptions(
    program
      .command('check')
      .description(
        'archiver health (pg_stat_archiver against the RPO) and WAL chain continuity from the oldest backup; with engine: pgbackrest in the runbook, also pgbackrest check and verify; exits 1 when unhealthy',
      )
      .option('--no-primary', 'skip the archiver health query (check the repository only)')
      .option(
        '--host <host>',
        'the runbook host this runs on (as lifeboat worker --host); the warm standby is read only on its own host (default: the OS host name names it)',
      )
      .addOption(jsonOption('print the report as JSON')),
  ).action((opts) => runCommand(() => import('../commands/check'), opts));

  temporalOptions(
    program
      .command('metrics')
      .description(
        'serve /metrics for Prometheus, per runbook (labels runbook, cluster): archiver lag and failures, ready segments and ' +
          'pg_wal size on the primary; newest verified backup age and size, WAL chain gaps in the repository; the last drill ' +
          'with its RTO and RPO against the objectives; recoveries running and waiting for a person (Temporal). A source that ' +
          'fails or exceeds --timeout shows as lifeboat_up{source} 0, never as an HTTP error',
      )
      .addOption(
        runbookOption('a runbook to report on; repeat for more (default: every runbook in --runbooks-dir)').argParser(
          repeatable,
        ),
      )
      .addOption(runbooksDirOption())
      .option(
        '--listen <host:port>',
        'address to serve on; keep it on loopback or a private network (port 0: any free port)',
        '127.0.0.1:9188',
      )
      .option(
        '--timeout <s>',
        'time limit of each read (the primary, the repository, the evidence, Temporal) in a scrape',
        '10',
      )
      .option('--cache <s>', "serve a scrape's result again for this long, so several scrapers cause one read", '5')
      .option('--no-temporal', 'leave out the recoveries (no Temporal server to ask)')
      .addHelpText(
        'after',
        `
Example:
  lifeboat metrics --runbook orders --listen 127.0.0.1:9188
  curl -s http://127.0.0.1:9188/metrics | grep lifeboat_archive_lag_seconds
Every metric, and example alert rules: README, "Monitoring with Prometheus". The worker's own metrics (Temporal SDK):
lifeboat worker --metrics 127.0.0.1:9464.`,
      ),
  ).action((opts) => runCommand(() => import('../commands/metrics'), opts));

  const standbyCmd = program
    .command('standby')
    .description(
      'the warm standby of a runbook (its standby: section): built from a backup, replaying from the archive `delay` behind; run on its host',
    );
  repoOptions(
    standbyCmd
      .command('build')
      .description(
        'build the standby from the newest usable backup (the old copy moved aside, never deleted) and start it; a healthy one is kept, a stopped one restarted',
      )
      .option('--force', 'rebuild from a backup even when the standby is healthy')
      .addOption(jsonOption()),
  ).action((opts) => runCommand(() => import('../commands/standby'), { ...opts, action: 'build' }));
  repoOptions(
    standbyCmd
      .command('status')
      .description(
        "replay position and last replayed commit against the archive's newest segment; exits 1 when it fell off or is not running",
      )
      .addOption(jsonOption('print the status as JSON')),
  ).action((opts) => runCommand(() => import('../commands/standby'), { ...opts, action: 'status' }));

  temporalOptions(
    repoOptions(
      program
        .command('expire')
        .description("apply retention: keep the runbook's newest full backups and the WAL they need")
        .option('--dry-run', 'list what would be deleted and delete nothing')
        .option('--local', 'run in this process instead of through the `expireBackups` workflow')
        .option(
          '--keep <n>',
          'keep the n newest full backups instead of backup.retainFull (refused when the runbook has retention: tiers)',
        )
        .option(
          '--repo-index <n|name>',
          'runbook repositories: expire only this repository (position from 1, or its name) instead of every one in order',
        )
        .addOption(jsonOption()),
    ),
  ).action((opts) => runCommand(() => import('../commands/expire'), opts));
}
