// A pgBackRest stanza on a harness primary (./postgres.ts), set up as
// bench/pgbackrest.ts does for the recovery bench: a posix repository on
// local disk, lock, log and spool paths, all in one temporary directory the
// postgres OS user owns; pgBackRest runs as that user, as on a server. The
// primary archives through `pgbackrest archive-push`, set once the stanza
// exists (ALTER SYSTEM, reload), so no push fails before there is a stanza.
// `repo` replaces the posix repository's lines (./pgbackrest-s3.ts: S3 on a
// MinIO over TLS).
import { writeFileSync, rmSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { chownToOsUser } from '../../src/dev/sandbox-pg';
import type { PgBackRestSetting } from '../../src/runbook/engine';
import { asPostgres, postgresTempDir, startPrimary, switchAndWaitArchived, type Primary } from './postgres';

export interface PgBackRestStanza {
  stanza: string;
  /** The configuration file (engine.configPath). */
  config: string;
  /** The posix repository (repo1-path), unless `repo` named another: tests move files aside in it, never delete them. */
  repoPath: string;
  root: string;
  primary: Primary;
  /** The runbook engine block for this stanza. */
  setting: PgBackRestSetting;
  /** `pgbackrest --config --stanza <args>` as postgres; resolves with stdout. */
  run(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startPgBackRestPrimary(
  stanza = 'lb',
  opts: {
    repo?: string[];
    /** The configuration file's mode (0600 when it holds keys). */ mode?: number;
    /** The primary's WAL segment size in MiB (initdb --wal-segsize); PostgreSQL's default (16) otherwise. */
    walSegSizeMb?: number;
    /** The primary's first WAL segment (pg_resetwal -l before its first start). */
    walStart?: string;
  } = {},
): Promise<PgBackRestStanza> {
  const root = postgresTempDir('pgbackrest');
  const primary = await startPrimary({
    conf: ['archive_mode = on', "archive_command = ''", 'archive_timeout = 0'],
    ...(opts.walSegSizeMb ? { initdb: [`--wal-segsize=${opts.walSegSizeMb}`] } : {}),
    ...(opts.walStart ? { walStart: opts.walStart } : {}),
  });
  const config = path.join(root, 'pgbackrest.conf');
  const repoPath = path.join(root, 'repo');
  writeFileSync(
    config,
    [
      '[global]',
      ...(opts.repo ?? [`repo1-path=${repoPath}`]),
      'repo1-retention-full=10',
      'compress-type=lz4',
      'process-max=2',
      'start-fast=y',
      `spool-path=${path.join(root, 'spool')}`,
      `lock-path=${path.join(root, 'lock')}`,
      `log-path=${root}`,
      'log-level-file=off',
      '',
      `[${stanza}]`,
      `pg1-path=${primary.dataDir}`,
      `pg1-port=${primary.port}`,
      `pg1-socket-path=${primary.root}`,
      'pg1-user=postgres',
      '',
    ].join('\n'),
    { mode: opts.mode ?? 0o644 },
  );
  chownToOsUser(config, 'postgres');
  const run = (args: string[]) =>
    asPostgres('pgbackrest', [`--config=${config}`, `--stanza=${stanza}`, '--log-level-console=warn', ...args]);
  await run(['stanza-create']);
  const push = `pgbackrest --config=${config} --stanza=${stanza} archive-push %p`;
  await primary.query(`alter system set archive_command = '${push}'`);
  await primary.query('select pg_reload_conf()');
  // What was written before the stanza existed goes now; then pgBackRest's own check.
  await switchAndWaitArchived(primary);
  await run(['check']);
  return {
    stanza,
    config,
    repoPath,
    root,
    primary,
    setting: { kind: 'pgbackrest', stanza, configPath: config },
    run,
    async stop() {
      await primary.stop();
      if (existsSync(root)) rmSync(root, { recursive: true, force: true });
    },
  };
}
