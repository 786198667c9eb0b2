// pgBackRest beside Lifeboat in the recovery bench: one stanza on the bench's
// primary, a repository on local disk, the settings a team would pick on two
// cores (lz4, process-max 2, asynchronous archive-get with its queue), and
// every file (config, repository, spool, locks, logs) inside the bench's work
// directory. pgBackRest runs as the postgres OS user, as it would on a server.
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { chownToOsUser } from '../src/dev/sandbox-pg';
import { pgTime } from '../src/restore/recovery-conf';
import { asPostgres, pgDir } from './common';

export const STANZA = 'bench';

export interface PgBackRest {
  config: string;
  spool: string;
  /** `pgbackrest --config=... --stanza=bench archive-push %p`, for the primary's archive_command. */
  archivePush: string;
  run: (args: string[]) => number;
}

/** Where setUpPgBackRest writes its configuration (known before the primary starts, for its archive_command). */
export function pgBackRestConfigPath(work: string): string {
  return path.join(work, 'pgbackrest', 'pgbackrest.conf');
}

/** Writes the configuration for a primary at `pgDataDir` (port, socket directory). */
export function setUpPgBackRest(
  work: string,
  primary: { dataDir: string; port: number; socketDir: string },
): PgBackRest {
  const root = pgDir(path.join(work, 'pgbackrest'));
  const config = pgBackRestConfigPath(work);
  const spool = pgDir(path.join(root, 'spool'));
  writeFileSync(
    config,
    [
      '[global]',
      `repo1-path=${pgDir(path.join(root, 'repo'))}`,
      'repo1-retention-full=10',
      'compress-type=lz4',
      'process-max=2',
      'start-fast=y',
      `spool-path=${spool}`,
      `lock-path=${pgDir(path.join(root, 'lock'))}`,
      `log-path=${pgDir(path.join(root, 'log'))}`,
      'log-level-console=warn',
      '',
      // Asynchronous for restores only: archive-get queues segments ahead of
      // replay (archive-get-queue-max, 128 MiB by default) with process-max
      // workers. Pushes stay synchronous, as Lifeboat's archive-push is.
      '[global:archive-get]',
      'archive-async=y',
      '',
      `[${STANZA}]`,
      `pg1-path=${primary.dataDir}`,
      `pg1-port=${primary.port}`,
      `pg1-socket-path=${primary.socketDir}`,
      'pg1-user=postgres',
      '',
    ].join('\n'),
  );
  chownToOsUser(config, 'postgres');
  const run = (args: string[]) => asPostgres('pgbackrest', [`--config=${config}`, `--stanza=${STANZA}`, ...args]);
  return { config, spool, archivePush: `pgbackrest --config=${config} --stanza=${STANZA} archive-push %p`, run };
}

export function pgBackRestVersion(): string {
  return execFileSync('pgbackrest', ['version'], { encoding: 'utf8' }).trim();
}

/**
 * `pgbackrest restore` of the newest backup into `dataDir` (which must not
 * exist yet; with `delta`, a stopped copy of the same cluster, rewritten in
 * place: --delta), to the restore point or time `target`, pausing there;
 * returns its wall seconds. Its restore_command (archive-get, asynchronous)
 * is the one pgBackRest writes. The queue of an earlier round is removed
 * first, so each round fetches its WAL from the repository.
 */
export function pgBackRestRestore(
  b: PgBackRest,
  dataDir: string,
  target: { name: string } | { time: string },
  settings: string[],
  { delta = false }: { delta?: boolean } = {},
): number {
  rmSync(path.join(b.spool, 'archive'), { recursive: true, force: true });
  pgDir(dataDir);
  // A time as PostgreSQL reads recovery_target_time (pgBackRest passes it on as written).
  const type =
    'name' in target ? ['--type=name', `--target=${target.name}`] : ['--type=time', `--target=${pgTime(target.time)}`];
  const seconds = b.run([
    `--pg1-path=${dataDir}`,
    ...type,
    '--target-action=pause',
    '--archive-mode=off',
    ...(delta ? ['--delta'] : []),
    'restore',
  ]);
  // After pgBackRest's own recovery settings: where this copy listens.
  appendFileSync(path.join(dataDir, 'postgresql.auto.conf'), `${settings.join('\n')}\n`);
  return seconds;
}

/**
 * The options of the stanza's last `pgbackrest restore`, from pgBackRest's
 * own log (its "restore command begin" line, at the default log-level-file
 * info): how a row proves which restore ran (--delta, --pg1-path).
 */
export function lastRestoreCommand(b: PgBackRest): string {
  const file = path.join(path.dirname(b.config), 'log', `${STANZA}-restore.log`);
  const line = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('restore command begin'))
    .at(-1);
  if (!line) throw new Error(`${file} records no pgbackrest restore`);
  return line;
}
