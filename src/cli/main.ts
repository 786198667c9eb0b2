// The `lifeboat` CLI (shared/DESIGN.md §9). Every command is declared here so
// that `--help` is complete, but its code is loaded only when it runs:
// PostgreSQL starts `archive-push` and `archive-get` once per WAL segment, and
// loading the Temporal client or the AWS SDK for them would cost more than
// the work itself.
//
// Exit codes: 0 success, 1 the operation failed, 2 bad usage or input.
import { Command, CommanderError, Option } from 'commander';
import { EXIT, runCommand } from './run';

const program = new Command();

program
  .name('lifeboat')
  .description('PostgreSQL disaster recovery as durable Temporal workflows: backups, WAL archive, recovery, drills.')
  .version(require('../../../package.json').version as string)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

const repoOptions = (cmd: Command) =>
  cmd
    .option('--runbook <name|file>', 'runbook name (in --runbooks-dir) or path to a runbook YAML file')
    .option('--repo <url>', 'repository URL (file:///path or s3://bucket/prefix) instead of a runbook')
    .option('--cluster <name>', 'cluster name in the repository (with --repo)')
    .option('--runbooks-dir <dir>', 'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)')
    .option(
      '--credentials-file <path>',
      "read the repository's secrets from this file (JSON, mode 0600, owned by the user running this) instead of the environment (env LIFEBOAT_CREDENTIALS_FILE)",
    )
    .option(
      '--encryption-key <id=VARIABLE>',
      "with --repo: an encrypted repository's key, as its id and the environment variable (or /path/to/file) holding it; " +
        'repeat for previous keys, the first is used to write (a runbook names its keys in repository.encryption)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--read-unencrypted', 'with --encryption-key: also serve objects written before encryption was turned on');

// The Temporal CLI's names and its environment configuration
// (src/client/temporal-config.ts): flags, then TEMPORAL_* variables, then the profile.
const temporalOptions = (cmd: Command) =>
  cmd
    .option(
      '--address <host:port>',
      "Temporal frontend (env TEMPORAL_ADDRESS, else the profile's address, default 127.0.0.1:7233)",
    )
    .option('--namespace <ns>', 'Temporal namespace (env TEMPORAL_NAMESPACE, else the profile\'s, default "default")')
    .option(
      '--profile <name>',
      'profile of the Temporal config file (env TEMPORAL_PROFILE, default "default"), as the Temporal CLI reads it',
    )
    .option(
      '--config-file <path>',
      'Temporal config file, TOML (env TEMPORAL_CONFIG_FILE, default ~/.config/temporalio/temporal.toml)',
    )
    .option(
      '--tls',
      'connect with TLS (env TEMPORAL_TLS; on by default with a TLS profile, a certificate or an API key in TEMPORAL_API_KEY)',
    )
    .option('--tls-cert-path <path>', 'client certificate for mTLS, PEM (env TEMPORAL_TLS_CLIENT_CERT_PATH)')
    .option('--tls-key-path <path>', 'client key for mTLS, PEM (env TEMPORAL_TLS_CLIENT_KEY_PATH)')
    .option(
      '--tls-ca-path <path>',
      "CA that signed the server's certificate, PEM (env TEMPORAL_TLS_SERVER_CA_CERT_PATH)",
    )
    .option('--tls-server-name <name>', 'server name to verify the certificate against (env TEMPORAL_TLS_SERVER_NAME)')
    .option(
      '--ui-url <url>',
      'Temporal Web UI address for links to a run (env LIFEBOAT_UI_URL; none for a server not on this machine)',
    );

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
  .action((opts) => runCommand(() => import('./commands/dev'), opts));

program
  .command('dev-incident')
  .description(
    'against a running `lifeboat dev`: archive the WAL, print a safe target time, play the bad UPDATE (every pending ' +
      'order canceled) through pgbouncer, archive again, and print how to recover from the Temporal UI or the CLI',
  )
  .option('--state-dir <dir>', 'the sandbox of lifeboat dev', '.lifeboat/dev')
  .option('--json', 'print {target, rowsHit, input, workflowId} as JSON')
  .action((opts) => runCommand(() => import('./commands/dev-incident'), opts));

temporalOptions(
  program
    .command('worker')
    .description(
      "poll the `lifeboat` task queue and, with --host, `lifeboat-host-<host>` for that host's disk and processes",
    )
    .option('--host <host>', 'also run host activities (base backup staging, restore, pg_ctl) for this host')
    .option('--no-shared', 'with --host: poll only the host queue, not `lifeboat`')
    .option('--runbooks-dir <dir>', 'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)')
    .option(
      '--metrics <host:port>',
      "serve the Temporal SDK's worker metrics (temporal_*) for Prometheus at http://<host:port>/metrics (env LIFEBOAT_WORKER_METRICS)",
    ),
).action((opts) => runCommand(() => import('./commands/worker'), opts));

const runbookCmd = program.command('runbook').description('work with runbook files');
runbookCmd
  .command('validate')
  .description('check runbook files against the schema; errors name the YAML path and line')
  .argument('<file...>', 'runbook YAML files')
  .option('--json', 'print the result as JSON')
  .action((files: string[], opts) => runCommand(() => import('./commands/runbook-validate'), { ...opts, files }));
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
  .option('--runbooks-dir <dir>', 'where --out defaults to (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)')
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
  .action((opts) => runCommand(() => import('./commands/runbook-from-pgbackrest'), opts));

temporalOptions(
  repoOptions(
    program
      .command('backup')
      .description('start the `baseBackup` workflow for a runbook and wait for the verified backup')
      .option('--no-wait', 'print the workflow id and return at once')
      .option('--json', 'print the result as JSON')
      .option(
        '--type <type>',
        "full (the default), diff or incr; diff and incr need engine: pgbackrest in the runbook (Lifeboat's own engine takes full backups only)",
      )
      .option(
        '--schedule <cron>',
        "instead: create or update the Temporal Schedule lifeboat-backup-<runbook> (cron in UTC, e.g. '0 2 * * *'); its backups also run expireBackups",
      ),
  ),
).action((opts) => runCommand(() => import('./commands/backup'), opts));

repoOptions(
  program
    .command('backups')
    .description(
      "list the base backups in the repository (id, start/end time and LSN, timeline, size, verified); with engine: pgbackrest in the runbook, the stanza's backups as pgbackrest info lists them",
    )
    .option('--json', 'print the catalog as JSON'),
).action((opts) => runCommand(() => import('./commands/backups'), opts));

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
    .option('--json', 'print the report as JSON'),
).action((opts) => runCommand(() => import('./commands/check'), opts));

temporalOptions(
  program
    .command('metrics')
    .description(
      'serve /metrics for Prometheus, per runbook (labels runbook, cluster): archiver lag and failures, ready segments and ' +
        'pg_wal size on the primary; newest verified backup age and size, WAL chain gaps in the repository; the last drill ' +
        'with its RTO and RPO against the objectives; recoveries running and waiting for a person (Temporal). A source that ' +
        'fails or exceeds --timeout shows as lifeboat_up{source} 0, never as an HTTP error',
    )
    .option(
      '--runbook <name|file>',
      'a runbook to report on; repeat for more (default: every runbook in --runbooks-dir)',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--runbooks-dir <dir>', 'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)')
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
).action((opts) => runCommand(() => import('./commands/metrics'), opts));

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
    .option('--json', 'print the result as JSON'),
).action((opts) => runCommand(() => import('./commands/standby'), { ...opts, action: 'build' }));
repoOptions(
  standbyCmd
    .command('status')
    .description(
      "replay position and last replayed commit against the archive's newest segment; exits 1 when it fell off or is not running",
    )
    .option('--json', 'print the status as JSON'),
).action((opts) => runCommand(() => import('./commands/standby'), { ...opts, action: 'status' }));

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
      .option('--json', 'print the result as JSON'),
  ),
).action((opts) => runCommand(() => import('./commands/expire'), opts));

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
).action((path: string, opts) => runCommand(() => import('./commands/archive-push'), { ...opts, path }));

repoOptions(
  program
    .command('archive-catchup')
    .description(
      'copy into every other repository of the runbook (repositories:) the WAL the first one holds and it lacks; ' +
        'exit 1 while one still lacks some',
    )
    .option('--pg-wal <dir>', "also clear this pg_wal's catch-up queue (.lifeboat-catchup) of what is now copied")
    .addOption(new Option('--parallel <n>', 'files copied at once').default('4'))
    .option('--json', 'print the result as JSON'),
).action((opts) => runCommand(() => import('./commands/archive-catchup'), opts));

repoOptions(
  program
    .command('archive-push-ahead', { hidden: true })
    .description("internal: the read-ahead pusher archive-push starts beside PostgreSQL's archiver")
    .requiredOption('--pg-wal <dir>', 'the pg_wal directory to watch')
    .addOption(new Option('--parallel <n>', 'files archived at once').default('4')),
).action((opts) => runCommand(() => import('./commands/archive-push-ahead'), opts));

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
    .option(
      '--fallback-repo <url>',
      "with --repo: another repository of the runbook's, asked (in the order given) when --repo is unreachable, holds a damaged copy or lacks the file",
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
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
      import('./commands/archive-get').catch((err: unknown) => ({
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
    .option(
      '--fallback-repo <url>',
      "with --repo: another repository of the runbook's, asked (in the order given) when --repo is unreachable, holds a damaged copy or lacks the file",
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    ),
).action((file: string, opts) => runCommand(() => import('./commands/archive-prefetch'), { ...opts, file }));

// ---------------------------------------------------------------- recovery (DESIGN.md §4, §9)

const targetOptions = (cmd: Command) =>
  cmd
    .option(
      '--to-time <iso>',
      'recover up to this time, ISO 8601 with its zone: 2026-06-04T14:31:59Z or 2026-06-04T16:31:59+02:00',
    )
    .option('--to-name <name>', 'recover up to a restore point (pg_create_restore_point, lifeboat checkpoint)')
    .option('--to-lsn <lsn>', 'recover up to a WAL position, e.g. 0/3000060')
    .option('--to-xid <xid>', 'recover up to and including this transaction id')
    .option('--to-latest', 'recover to the end of the archived WAL');

temporalOptions(
  targetOptions(
    program
      .command('recover')
      .description(
        'start `recoverToPointInTime`: restore the newest base backup before the target, replay WAL to it, ' +
          'check invariants, promote and resume traffic, pausing for approvals; give exactly one --to-... target',
      )
      .option('--runbook <name|file>', 'runbook name (in --runbooks-dir) or path to a runbook YAML file')
      .option(
        '--runbooks-dir <dir>',
        'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)',
      ),
  )
    .option('--incident <id>', 'incident reference, e.g. INC-1234 (shown in the UI and the evidence)')
    .option('--reason <text>', 'why the recovery is run, e.g. "bad UPDATE on orders"')
    .addOption(
      new Option('--mode <mode>', "where to restore (default: the runbook's restore.mode)").choices([
        'side-by-side',
        'in-place',
      ]),
    )
    .option('--dry-run', 'preflight, forensics and invariants on a side-by-side restore; no gate, no traffic')
    .option('--backup <id>', 'restore this base backup instead of the one preflight would choose')
    .option(
      '--repo-index <n|name>',
      'runbook repositories: read only this repository (position from 1, or its name) instead of the first that serves, falling back in order',
    )
    .option(
      '--concurrent',
      'run even while another recovery of this runbook runs (without it, a second one is refused with RECOVERY_ALREADY_RUNNING naming the first)',
    )
    .option('--workflow-id <id>', 'workflow id (default recover-<runbook>-<time>)')
    .option(
      '--follow',
      'after starting, watch it like `status --watch` until it ends; exit 0 when it completes, 1 when not',
    )
    .option('--interval <s>', 'with --follow: seconds between looks', '2')
    .option('--json', 'print the started run (and with --follow each change) as JSON'),
).action((opts) => runCommand(() => import('./commands/recover'), opts));

temporalOptions(
  program
    .command('repair')
    .description(
      'start `repairFromPointInTime`: repair rows damaged by a bad statement WITHOUT failover. An isolated copy (the drill site) ' +
        'is restored to --before and, with --after, replayed on to the end of the bad statement; every row of --tables is compared ' +
        'with the live primary: damaged (changed by the incident, untouched since) and deleted rows are restored after approve-repair, ' +
        'in one audited transaction per table that skips any row changed meanwhile; rows changed since the incident are conflicts, ' +
        'left unless an approver includes them; new rows and other tables are never touched',
    )
    .option(
      '--runbook <name|file>',
      'runbook name (in --runbooks-dir) or path to a runbook YAML file (needs a drill: section)',
    )
    .option('--runbooks-dir <dir>', 'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)')
    .option('--tables <t,...>', 'tables to repair, comma-separated, e.g. public.orders (each needs a primary key)')
    .option(
      '--where <sql>',
      'only rows matching this predicate, run as given on the copy and the primary in a READ ONLY transaction, e.g. "status = \'canceled\'"',
    )
    .option(
      '--before <target>',
      'just before the incident: 2026-06-04T14:31:59Z (with its zone), name:<restore point>, lsn:0/3000060 or xid:7421',
    )
    .option(
      '--after <target>',
      'right after the bad statement (same forms; e.g. xid:<its transaction>): without it nothing is classified safe, every difference is a candidate',
    )
    .option('--incident <id>', 'incident reference, e.g. INC-1234 (shown in the UI and the evidence)')
    .option('--reason <text>', 'why, e.g. "bad UPDATE on orders"')
    .option('--dry-run', 'stop after the diff: counts, samples and the exact SQL, nothing written to the primary')
    .option('--keep-copy', 'leave the copy running (paused, loopback only) after the run, to read from by hand')
    .option('--workflow-id <id>', 'workflow id (default repair-<runbook>-<time>)')
    .option(
      '--follow',
      'after starting, watch it like `status --watch` until it ends; exit 0 when it completes, 1 when not',
    )
    .option('--interval <s>', 'with --follow: seconds between looks', '2')
    .option('--json', 'print the started run (and with --follow each change) as JSON')
    .addHelpText(
      'after',
      "\nExample (the seed incident: UPDATE orders SET status = 'canceled' WHERE status = 'pending'):\n" +
        '  lifeboat repair --runbook orders --tables public.orders --before 2026-06-04T14:31:59Z --after xid:7421 --dry-run\n' +
        '  lifeboat repair --runbook orders --tables public.orders --before 2026-06-04T14:31:59Z --after xid:7421 --follow\n' +
        '  lifeboat approve <workflowId> approve-repair --as alice [--include changedSince]\n',
    ),
).action((opts) => runCommand(() => import('./commands/repair'), opts));

const DECISIONS = {
  approve: 'approve a step waiting for approval',
  reject: 'reject a step waiting for approval (needs --reason); the run ends without promoting',
  retry: 'run a failed step again',
  skip: 'skip a failed step the runbook marks skippable (needs --reason)',
  abort: 'abort the run at a failed step (needs --reason); writers stay fenced',
} as const;

for (const [decision, description] of Object.entries(DECISIONS)) {
  temporalOptions(
    program
      .command(decision)
      .description(`${description} (the \`decide\` update: prints the workflow's answer)`)
      .argument('<workflowId>', 'the recovery run (printed by lifeboat recover)')
      .argument('<step>', 'step id, e.g. approve-promote (lifeboat status shows the one waiting)')
      .option('--as <who>', "who decides: a name in the runbook's approvers, written to the audit log")
      .option('--comment <text>', 'a comment kept with the decision')
      .option('--reason <text>', 'why (required for reject, skip and abort)')
      .option(
        '--override',
        'approve only: promote although an invariant failed on the paused copy (needs --comment with the reason, kept in the evidence)',
      )
      .option(
        '--include <classes>',
        'approve approve-repair only: also restore changedSince (conflicts: rows changed since the incident) or candidate rows',
      )
      .option(
        '--signal',
        'send the signal instead of the update, like the Temporal UI: no answer, check with lifeboat status',
      )
      .option('--json', 'print the answer as JSON'),
  ).action((workflowId: string, step: string, opts) =>
    runCommand(() => import('./commands/decide'), { ...opts, decision, workflowId, step }),
  );
}

temporalOptions(
  targetOptions(
    program
      .command('retarget')
      .description(
        'move the target of a run waiting at approve-promote (later continues the replay, earlier restores again) or whose replay-wal failed (restores again)',
      )
      .argument('<workflowId>', 'the recovery run'),
  )
    .option('--as <who>', "who decides: a name in the runbook's approvers")
    .option('--comment <text>', 'a comment kept with the decision')
    .option('--json', 'print the outcome and the status as JSON'),
).action((workflowId: string, opts) => runCommand(() => import('./commands/retarget'), { ...opts, workflowId }));

temporalOptions(
  program
    .command('status')
    .description(
      'a recovery run: every step with its state and duration, restore and replay progress, the decision it waits for ' +
        'and the commands to give it; exits 1 when the run ended without success',
    )
    .argument('<workflowId>', 'the recovery run')
    .option('--watch', 'redraw until the run ends')
    .option('--interval <s>', 'with --watch: seconds between looks', '2')
    .option('--json', 'print {status, progress, closed, result} as JSON (with --watch: one line per change)'),
).action((workflowId: string, opts) => runCommand(() => import('./commands/status'), { ...opts, workflowId }));

temporalOptions(
  program
    .command('pending')
    .description(
      'running recoveries waiting for a decision (an approval, or a failed step waiting for retry/skip/abort): ' +
        'the step, who may decide, how many approvals are still needed, since when, and the command to give it',
    )
    .option('--runbook <name>', 'only recoveries of this runbook')
    .option('--json', 'print the list as JSON')
    .option(
      '--query',
      'print the visibility query instead (paste it into the Temporal UI\'s workflow list and save it as a view: "waiting for a person")',
    ),
).action((opts) => runCommand(() => import('./commands/pending'), opts));

// ---------------------------------------------------------------- drills, schedules, evidence, checkpoints (DESIGN.md §4, §7, §9)

temporalOptions(
  targetOptions(
    program
      .command('drill')
      .description(
        'start `restoreDrill` and wait: an isolated restore to a random time in drill.targetWindow (or the --to-... target), ' +
          'invariants, promotion in isolation, a smoke write, measured RTO and RPO, evidence, teardown; no gate, no traffic. ' +
          'Prints RTO with its phases, RPO, WAL segments, the verdict and the evidence key; exits 1 when the drill failed',
      )
      .option('--runbook <name|file>', 'runbook name (in --runbooks-dir) or path to a runbook YAML file')
      .option(
        '--runbooks-dir <dir>',
        'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)',
      ),
  )
    .option('--keep', 'leave the drill instance running after the drill (for a look), instead of tearing it down')
    .option(
      '--repo-index <n|name>',
      "runbook repositories: restore the drill's copy from this repository only (position from 1, or its name)",
    )
    .option(
      '--from-standby',
      "restore the drill's copy from a clone of the runbook's warm standby (pg_basebackup from it while it keeps replaying; it is never taken) instead of a backup; a standby that cannot serve (unhealthy, another host, past the target) falls back to the backup, with the reason in the evidence",
    )
    .option('--no-wait', 'print the workflow id and return at once')
    .option('--json', 'print {workflowId, runId, evidenceKey, evidence} as JSON')
    .option(
      '--schedule <cron>',
      "instead: create or update the Temporal Schedule lifeboat-drill-<runbook> (cron in UTC, e.g. '0 3 * * *' or '@daily'); a run still going when the next is due is skipped",
    ),
).action((opts) => runCommand(() => import('./commands/drill'), opts));

const schedulesCmd = temporalOptions(
  program
    .command('schedules')
    .description(
      'the Temporal Schedules Lifeboat made (lifeboat-drill-<runbook>, lifeboat-backup-<runbook>): kind, runbook, cron, ' +
        'paused, next run and the last run with its result. They are plain Temporal schedules: the Temporal UI pauses, triggers and deletes them too',
    )
    .option('--json', 'print the schedules as JSON'),
).action((opts) => runCommand(() => import('./commands/schedules'), { ...opts, action: 'list' }));

const SCHEDULE_ACTIONS = {
  pause: 'pause a schedule: no run starts until it is unpaused (runs going on are not touched)',
  unpause: 'unpause a paused schedule',
  trigger: 'start the scheduled workflow now (skipped when its previous run is still going)',
  delete: 'delete a schedule; runs it started are not touched',
} as const;

for (const [action, description] of Object.entries(SCHEDULE_ACTIONS)) {
  temporalOptions(
    schedulesCmd
      .command(action)
      .description(description)
      .argument(
        '<schedule...>',
        'a runbook and a kind (orders drill, orders backup) or a schedule id (lifeboat-drill-orders)',
      )
      .option('--json', 'print the schedule afterwards as JSON'),
  )
    .addOption(
      new Option('--note <text>', 'the note Temporal keeps with the pause or unpause').hideHelp(
        action !== 'pause' && action !== 'unpause',
      ),
    )
    // Options given before the action (lifeboat schedules --address X pause ...) land on the parent.
    .action((target: string[], opts: Record<string, unknown>) =>
      runCommand(() => import('./commands/schedules'), { ...schedulesCmd.opts(), ...opts, action, target }),
    );
}

repoOptions(
  program
    .command('evidence')
    .description(
      "the evidence history of a runbook's cluster: every recovery and drill recorded in <cluster>/evidence/, oldest first, " +
        'with kind, start, target, RTO, RPO, verdict and run id',
    )
    .option('--json', 'print the records as JSON'),
).action((opts) => runCommand(() => import('./commands/evidence'), opts));

repoOptions(
  program
    .command('report')
    .description(
      'write a self-contained HTML report for auditors: RTO and RPO of drills and recoveries over time against the ' +
        'objectives (an inline SVG chart), the table of runs, and the approvals of the last recovery',
    )
    .option('--out <file>', 'where to write the HTML page', 'lifeboat-report.html'),
).action((opts) => runCommand(() => import('./commands/report'), opts));

temporalOptions(
  program
    .command('checkpoint')
    .description(
      'start `migrationCheckpoint` before a risky change: checks (read-only) that the archiver is healthy within the RPO and ' +
        'a verified backup with an unbroken WAL chain exists, then pg_create_restore_point(<label>), switches the WAL segment ' +
        'and waits until it is archived; prints how to recover to it. Refuses, with the reason, when a check fails',
    )
    .option('--runbook <name|file>', 'runbook name (in --runbooks-dir) or path to a runbook YAML file')
    .option('--runbooks-dir <dir>', 'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)')
    .option('--label <label>', 'the restore point name, at most 63 bytes, e.g. before-migration-0042')
    .option('--json', 'print {name, lsn, time, backupId, segment} and the recovery input as JSON'),
).action((opts) => runCommand(() => import('./commands/checkpoint'), opts));

// ---------------------------------------------------------------- least privilege (issue 11)

const runbookOptions = (cmd: Command) =>
  cmd
    .option('--runbook <name|file>', 'runbook name (in --runbooks-dir) or path to a runbook YAML file')
    .option(
      '--runbooks-dir <dir>',
      'where runbook names are looked up (env LIFEBOAT_RUNBOOKS_DIR, default ./runbooks)',
    );

runbookOptions(
  program
    .command('grants')
    .description(
      "print the exact SQL that gives the runbook's role (cluster.primary.user) what Lifeboat needs and nothing more, " +
        'each line with a comment saying why; nothing else goes to stdout. Run it as a superuser connected to the ' +
        "runbook's database on the primary, before the next base backup; safe to run again; it sets no password",
    )
    .addHelpText(
      'after',
      `
Example:
  lifeboat grants --runbook bank | psql -h db1 -U postgres -d bank -v ON_ERROR_STOP=1 -f -
  lifeboat doctor --runbook bank      # checks each piece as the role
  lifeboat backup --runbook bank      # a restored copy has the grants of its backup, not those made since
Role attributes (REPLICATION, CREATEROLE) and memberships (pg_signal_backend) hold in the whole cluster; EXECUTE on
functions and table privileges exist per database, so the script refuses to run in another database.
pg_basebackup also needs a pg_hba.conf line for replication, which no SQL can grant:
  host  replication  <role>  <worker address>/32  scram-sha-256
With --repair-tables, also what lifeboat repair needs for those tables (SELECT, INSERT, UPDATE, their sequences,
TEMPORARY, a schema for lifeboat_repair_audit); grant it before the backup a repair restores.`,
    )
    .option(
      '--repair-tables <t,...>',
      'also grant what lifeboat repair needs for these tables (comma-separated, e.g. public.orders,public.payments)',
    ),
).action((opts) => runCommand(() => import('./commands/grants'), opts));

runbookOptions(
  program
    .command('doctor')
    .description(
      "connect to the primary as the runbook's role and name every privilege it lacks with the exact SQL that grants it, " +
        'and for every base backup whether the privileges recorded when it was taken let a restored copy do its part ' +
        "(invariants, sequence check, replay pause, gates re-asserted, outbox, the drill's smoke write); exits 0 when " +
        'nothing is missing, 1 when something is (or the newest backup lacks a piece)',
    )
    .option('--json', 'print {ok, primary: {missing, notes}, backups} as JSON')
    .addHelpText(
      'after',
      `
Run it after lifeboat grants and after every change to the runbook's invariants, capture queries or gates, and on a
schedule: a missing grant found on a Tuesday is not found during the incident. Recoveries and drills run the same
check in preflight and stop with PRIVILEGE_MISSING, touching nothing, when a piece is missing.`,
    ),
).action((opts) => runCommand(() => import('./commands/doctor'), opts));

// ---------------------------------------------------------------- chat-ops (DESIGN.md §1, §4.2)

temporalOptions(
  program
    .command('chatops')
    .description(
      'serve the HTTP endpoint for chat bots: Slack slash commands, the Approve / Reject buttons of the approval message and a JSON API send the `decide` update or read `status` ' +
        "as the approver the chat user is mapped to (--users); every POST must carry Slack's request signature",
    )
    .option('--port <port>', 'port to listen on (0: any free port)', '8787')
    .option('--host <host>', 'address to listen on; keep it on loopback behind a TLS proxy', '127.0.0.1')
    .option(
      '--users <file>',
      'chat user -> approver table, YAML or JSON: "slack:U024BE7LH: alice" lines, or a list of {chatUser, approver} (env LIFEBOAT_CHATOPS_USERS)',
    )
    .option(
      '--secret-env <name>',
      'the environment variable holding the signing secret (never a flag)',
      'LIFEBOAT_CHATOPS_SIGNING_SECRET',
    )
    .option('--rate <n>', 'requests a minute per chat user, beyond which 429', '20')
    .option('--command <name>', 'the slash command shown in help and usage lines', '/lifeboat')
    .option(
      '--redis-url-env <name>',
      'the environment variable holding a redis:// URL: replay guard and rate limit shared by every replica (without: in this process, run one replica)',
    )
    .addHelpText(
      'after',
      `
Endpoints:
  POST /slack/commands  a Slack slash command (form-encoded, user_id and text): approve|retry <workflowId> <step> [comment],
                        reject|skip|abort <workflowId> <step> <reason>, status <workflowId>, help
  POST /slack/interactions  the Slack app's interactivity Request URL: Approve / Reject pressed on the approval message
                        a runbook with notify.slack posts; the message is updated through its response_url
  POST /v1/decide       {"workflowId", "step", "decision", "user": "ops:bob", "comment"?, "reason"?}
  POST /v1/status       {"workflowId", "user"}
  GET  /healthz         {"ok": true, "temporal": true|false}; no signature needed
Every POST: X-Slack-Request-Timestamp (Unix seconds) and X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">.
Answers, first failing check wins:
  401 unsigned, bad signature, timestamp more than 5 min off    409 the same signed request again (replay)
  400 malformed   429 over --rate (Retry-After)   403 unmapped chat user, or not an approver of the waiting step
  404 unknown run   409 run ended, or that step is not waiting   422 refused by the workflow   503 Temporal unreachable
  200 accepted ({"accepted": true, "state": ...})
/slack/commands answers usage mistakes and refusals with 200 and an ephemeral text, since Slack shows only a 200's
text; 401, 409 (replay), 429, and 400 for a form without user_id stay non-2xx. X-Lifeboat-Outcome names the outcome.
A slash command Temporal takes over 2.5 s to answer gets "follows" at once, and the outcome through its response_url.
With --redis-url-env, a Redis that does not answer refuses every request (503, or an ephemeral Slack text): fail closed.`,
    ),
).action((opts) => runCommand(() => import('./commands/chatops'), opts));

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

export { Option };
