// `lifeboat dev`, `dev-incident`, `worker` and `runbook ...`: trying Lifeboat
// on one machine, running its worker, writing and checking runbooks.
import type { Command } from 'commander';
import { runCommand } from '../run';
import { jsonOption, runbooksDirOption, temporalOptions } from './options';

export function declareSetup(program: Command): void {
  program
    .command('dev')
    .description(
      'embedded stack for trying Lifeboat: Temporal dev server with its UI on 127.0.0.1:8233, a sandbox primary with the ' +
        'demo application (orders, system_gate, outbox) archiving to a file:// repository, its Redis cache and pgbouncer, ' +
        'a worker and a first base backup, all under --state-dir and reused by the next start; Ctrl-C stops everything',
    )
    .option('--state-dir <dir>', 'where the sandbox keeps its data', '.lifeboat/dev')
    .option('--ui-port <port>', 'Temporal Web UI port', '8233')
    .option('--temporal-port <port>', 'Temporal frontend port', '7233')
    .option(
      '--pg-port <port>',
      'sandbox primary port (fixed when the sandbox is created; recoveries and drills of the demo use the next two)',
      '55432',
    )
    .option('--redis-port <port>', "Redis port (the demo application's cache)", '56379')
    .option('--pgbouncer-port <port>', "pgbouncer port (the demo application's address)", '56432')
    .action((opts) => runCommand(() => import('../commands/dev'), opts));

  program
    .command('dev-incident')
    .description(
      'against a running `lifeboat dev`: archive the WAL, print a safe target time, play the bad UPDATE (every pending ' +
        'order canceled) through pgbouncer, archive again, and print how to recover from the Temporal UI or the CLI',
    )
    .option('--state-dir <dir>', 'the sandbox of lifeboat dev', '.lifeboat/dev')
    .addOption(jsonOption('print {target, rowsHit, input, workflowId} as JSON'))
    .action((opts) => runCommand(() => import('../commands/dev-incident'), opts));

  temporalOptions(
    program
      .command('worker')
      .description(
        "poll the `lifeboat` task queue and, with --host, `lifeboat-host-<host>` for that host's disk and processes",
      )
      .option('--host <host>', 'also run host activities (base backup staging, restore, pg_ctl) for this host')
      .option('--no-shared', 'with --host: poll only the host queue, not `lifeboat`')
      .addOption(runbooksDirOption())
      .option(
        '--metrics <host:port>',
        "serve the Temporal SDK's worker metrics (temporal_*) for Prometheus at http://<host:port>/metrics (env LIFEBOAT_WORKER_METRICS)",
      ),
  ).action((opts) => runCommand(() => import('../commands/worker'), opts));

  const runbookCmd = program.command('runbook').description('work with runbook files');
  runbookCmd
    .command('validate')
    .description('check runbook files against the schema; errors name the YAML path and line')
    .argument('<file...>', 'runbook YAML files')
    .addOption(jsonOption())
    .action((files: string[], opts) => runCommand(() => import('../commands/runbook-validate'), { ...opts, files }));
  runbookCmd
    .command('from-pgbackrest')
    .description(
      'start using Lifeboat on a cluster that already archives with pgBackRest, archive_command untouched: checks that it ' +
        'is pgbackrest archive-push for --stanza, reads pgbackrest info, writes a runbook with engine: pgbackrest (never ' +
        'over an existing file), then runs lifeboat check and doctor on it and says what runs on this engine and what does not yet',
    )
    .requiredOption('--stanza <name>', 'the pgBackRest stanza the primary archives to (its archive_command names it)')
    .option(
      '--config <file>',
      "pgBackRest's configuration file for engine.configPath (default: the --config of archive_command, else pgBackRest's own default)",
    )
    .option('--name <name>', 'the runbook name (default: the stanza)')
    .option('--host <host>', 'the primary: host', '127.0.0.1')
    .option('--port <port>', 'the primary: port', '5432')
    .option('--database <db>', 'the primary: database Lifeboat connects to', 'postgres')
    .option('--user <role>', 'the primary: role (lifeboat grants prints what it needs)', 'lifeboat')
    .option(
      '--password-env <VARIABLE>',
      "the primary: environment variable holding the role's password (never the password)",
    )
    .option('--os-user <user>', 'OS user that runs pgbackrest and owns data directories', 'postgres')
    .option('--pg-bin <dir>', 'PostgreSQL bin directory', '/usr/lib/postgresql/15/bin')
    .requiredOption(
      '--repository <url>',
      "Lifeboat's own repository (file:///path or s3://bucket/prefix) for evidence, audit and overlays; backups stay in pgBackRest",
    )
    .option('--restore-host <host>', 'host whose worker restores (lifeboat worker --host); default: this host name')
    .requiredOption('--restore-data-dir <dir>', 'data directory a recovery restores into (side-by-side)')
    .requiredOption('--restore-port <port>', 'port of the restored copy')
    .option('--rpo-seconds <s>', 'objectives.rpoSeconds', '300')
    .option('--rto-seconds <s>', 'objectives.rtoSeconds', '2700')
    .option(
      '--out <file>',
      'where to write the runbook (default: <runbooks-dir>/<name>.yaml); an existing file is refused',
    )
    .addOption(runbooksDirOption('where --out defaults to (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)'))
    .option('--print', 'print the runbook on stdout instead of writing it (not checked)')
    .option('--no-check', 'write the runbook without running lifeboat check on it')
    .addHelpText(
      'after',
      `
Example (archive_command is 'pgbackrest --stanza=main archive-push %p'):
  lifeboat runbook from-pgbackrest --stanza main --config /etc/pgbackrest/pgbackrest.conf \\
    --database appdb --user lifeboat --password-env ORDERS_PG_PASSWORD --repository file:///var/lib/lifeboat/repo \\
    --restore-data-dir /var/lib/postgresql/15/recovery --restore-port 5433 --name orders
Refused (exit 2, nothing written): archive_mode off, an archive_command that is not pgbackrest archive-push for
--stanza, a stanza of another database system, an existing --out. README "Moving from pgBackRest alone".`,
    )
    .action((opts) => runCommand(() => import('../commands/runbook-from-pgbackrest'), opts));
}
