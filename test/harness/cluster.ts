// A test cluster: a fresh repository (file:// in a postgres-owned temporary
// directory, or a fresh prefix in the run's MinIO bucket), a primary archiving
// into it through `lifeboat archive-push`, and its runbook written into a
// runbooks directory with the same generator the demo uses.
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { demoRunbookYaml, type DemoRunbookParams } from '../../src/dev/demo-runbook';
import { postgresTempDir, startPrimary, type Primary, type PrimaryOptions } from './postgres';
import { freePort } from './ports';
import { s3Env, s3RepoUrl } from './services';

export type RepoKind = 'file' | 's3';

export interface TestCluster {
  name: string;
  kind: RepoKind;
  repoUrl: string;
  /** endpointEnv for openRepository (s3:// only). */
  endpointEnv?: string;
  pg: Primary;
  stateDir: string;
  runbookFile: string;
  /** Stops the primary and removes every directory made for this cluster. */
  stop(): Promise<void>;
}

export async function startTestCluster(opts: {
  name: string;
  kind: RepoKind;
  runbooksDir: string;
  host: string;
  runbook?: Partial<
    Pick<
      DemoRunbookParams,
      | 'rpoSeconds'
      | 'retainFull'
      | 'redisUrlEnv'
      | 'pgbouncer'
      | 'approvers'
      | 'rtoSeconds'
      | 'extraInvariants'
      | 'notifyWebhookUrlEnv'
    >
  >;
  /** Extra postgresql.conf lines for the primary (e.g. archive_timeout). */
  primaryConf?: string[];
  /** More options for the primary's archive-push (e.g. --encryption-key k1=/path). */
  archiveArgs?: string[];
  /** How the primary is made: more initdb options (--wal-segsize=1) and its first WAL segment (pg_resetwal -l). */
  primaryInit?: Pick<PrimaryOptions, 'initdb' | 'walStart'>;
}): Promise<TestCluster> {
  const { name, kind } = opts;
  const repoDir = kind === 'file' ? postgresTempDir('repo') : undefined;
  const repoUrl = repoDir ? `file://${repoDir}` : s3RepoUrl(name);
  const endpointEnv = kind === 's3' ? 'S3_ENDPOINT' : undefined;
  const stateDir = postgresTempDir('state');
  let pg: Primary;
  try {
    pg = await startPrimary({
      archive: {
        repo: repoUrl,
        cluster: name,
        env: kind === 's3' ? s3Env() : {},
        ...(opts.archiveArgs ? { args: opts.archiveArgs } : {}),
      },
      ...(opts.primaryConf ? { conf: opts.primaryConf } : {}),
      ...opts.primaryInit,
    });
  } catch (err) {
    for (const d of [repoDir, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
    throw err;
  }
  const runbookFile = path.join(opts.runbooksDir, `${name}.yaml`);
  writeFileSync(
    runbookFile,
    demoRunbookYaml({
      name,
      pgPort: pg.port,
      pgUser: 'postgres',
      database: 'postgres',
      repoUrl,
      endpointEnv,
      host: opts.host,
      stateDir,
      // Free ports of their own: the port after the primary's may be taken by
      // any server another test starts meanwhile (pgbouncer, Redis, MinIO).
      restorePort: await freePort(),
      drillPort: await freePort(),
      ...opts.runbook,
    }),
  );
  return {
    name,
    kind,
    repoUrl,
    endpointEnv,
    pg,
    stateDir,
    runbookFile,
    async stop() {
      await pg.stop();
      // Directories this harness made for the test: provably ours to remove.
      for (const d of [repoDir, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
    },
  };
}
