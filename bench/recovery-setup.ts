// The recovery bench's setting up, untimed: a MinIO, the primary archiving
// into Lifeboat's repository and a pgBackRest stanza at once, a runbook per
// Lifeboat row, the dataset (bench/common.ts makeDataset) copied into every
// row's repository, the limit's inputs, a Temporal dev server and a worker.
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../src/dev/ports';
import { startPrimary } from '../src/dev/scratch-primary';
import { openRepository } from '../src/repository';
import { keys } from '../src/repository/layout';
import type { Repository } from '../src/repository/types';
import { lifeboatCommand } from '../src/tools';
import { makeDataset, pgDir, startMinio, writeBenchRunbook } from './common';
import { CpuMeter, enableDelayAccounting, pidsWithCmdline } from './cpu';
import { pgBackRestConfigPath, setUpPgBackRest, STANZA } from './pgbackrest';
import { CLUSTER, KEY_ENV, progress, ROWS, SCALE, WAL_MB, type Bench, type LifeboatKind } from './recovery-config';
import { prepareLimit } from './recovery-rows';
import { startBenchTemporal } from './temporal';
import { addStandby } from './warm';

export interface Setup {
  b: Bench;
  runbooksDir: string;
  /** The limit's preparation (restore once, decode the WAL), untimed. */
  prepSeconds: number;
  pgbrBackupSeconds: number;
  cpuModel: string;
  loadAtStart: string;
}

/** Copies every object of the cluster, with its recorded sha256 and restore point count, from one repository to another. */
async function copyCluster(from: Repository, to: Repository): Promise<number> {
  const objects = await from.list(keys.clusterPrefix(CLUSTER));
  for (const o of objects) {
    const got = await from.getStream(o.key);
    if (!got?.info.sha256) throw new Error(`cannot copy ${o.key}: missing, or no recorded sha256`);
    const { restorePoints } = got.info;
    await to.put(o.key, got.stream, {
      sha256: got.info.sha256,
      ifAbsent: true,
      ...(restorePoints !== undefined ? { restorePoints } : {}),
    });
  }
  return objects.length;
}

/**
 * Sets the bench up in `work`; what it starts is stopped by `cleanups`
 * (run in reverse), and `restored` lists the restore directories to clear.
 */
export async function setUpBench(
  work: string,
  cleanups: Array<() => Promise<unknown>>,
  restored: string[],
): Promise<Setup> {
  const minio = await startMinio(work, 'bench');
  cleanups.push(minio.stop);
  // The worker in this process reads the runbooks and the S3 settings from its environment.
  Object.assign(process.env, minio.env);
  process.env.LIFEBOAT_LOG_LEVEL ??= 'WARN';
  const runbooksDir = pgDir(path.join(work, 'runbooks'));
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const fileUrl = `file://${pgDir(path.join(work, 'repo'))}`;
  const s3Url = 's3://bench/recovery';
  // The warm row's own copy: the file row's last round promotes a timeline 2 into the file:// repository.
  const warmUrl = `file://${pgDir(path.join(work, 'repo-warm'))}`;
  // The encrypted rows' and the two-repository row's own copies of the same objects.
  process.env[KEY_ENV] = randomBytes(32).toString('base64');
  const encryption = { keyId: 'bench', keyEnv: KEY_ENV };
  const encYaml = `encryption: { keyId: ${encryption.keyId}, keyEnv: ${KEY_ENV} }`;
  const fileEncUrl = `file://${pgDir(path.join(work, 'repo-enc'))}`;
  const s3EncUrl = 's3://bench/recovery-enc';
  const twoFileUrl = `file://${pgDir(path.join(work, 'repo-two'))}`;
  const twoS3Url = 's3://bench/recovery-two';
  // The engine rows' backups and WAL are the stanza's; these repositories only receive their evidence.
  const engineUrl = `file://${pgDir(path.join(work, 'repo-engine'))}`;
  const engineDeltaUrl = `file://${pgDir(path.join(work, 'repo-engine-delta'))}`;
  const repositoriesYaml: Partial<Record<LifeboatKind, string>> = {
    'file-enc': `repository: { url: "${fileEncUrl}", ${encYaml} }`,
    's3-enc': `repository: { url: "${s3EncUrl}", endpointEnv: S3_ENDPOINT, ${encYaml} }`,
    two: `repositories:\n  - { name: local, url: "${twoFileUrl}" }\n  - { name: minio, url: "${twoS3Url}", endpointEnv: S3_ENDPOINT }\nrepositoryPolicy: all`,
  };
  pgDir(path.join(work, 'runs'));
  const sockets = pgDir(path.join(work, 'sock'));
  // Both archivers in one archive_command: the same segments reach both repositories.
  // debug3: restore_command's "executing restore command" line (restore-log.ts), inherited by every restored copy.
  const pg = await startPrimary({
    archive: { repo: fileUrl, cluster: CLUSTER },
    conf: [
      'max_wal_size = 1GB',
      'checkpoint_timeout = 5min',
      `archive_command = '${lifeboatCommand()} archive-push %p --repo ${fileUrl} --cluster ${CLUSTER} && pgbackrest --config=${pgBackRestConfigPath(work)} --stanza=${STANZA} archive-push %p'`,
      `log_line_prefix = '%m [%p] '`,
      'log_min_messages = debug3',
    ],
  });
  cleanups.push(() => pg.stop());
  const pgbr = setUpPgBackRest(work, { dataDir: pg.dataDir, port: pg.port, socketDir: pg.root });
  pgbr.run(['stanza-create']);
  const host = `bench${process.pid}`;
  const kinds = {} as Bench['kinds'];
  const kindRepos: Array<readonly [LifeboatKind, string, string | undefined]> = [
    ['file', fileUrl, undefined],
    ['file-enc', fileEncUrl, undefined],
    ['s3', s3Url, 'S3_ENDPOINT'],
    ['s3-enc', s3EncUrl, 'S3_ENDPOINT'],
    ['two', twoFileUrl, undefined],
    ['warm', warmUrl, undefined],
    ['engine-delta', engineDeltaUrl, undefined],
    ['engine', engineUrl, undefined],
  ];
  for (const [kind, url, endpointEnv] of kindRepos) {
    const stateDir = pgDir(path.join(work, `state-${kind}`));
    const restorePort = await freePort();
    kinds[kind] = { runbook: `bench-${kind}`, restoreDir: path.join(stateDir, 'recovery'), restorePort };
    restored.push(kinds[kind].restoreDir);
    writeBenchRunbook(
      runbooksDir,
      CLUSTER,
      {
        name: `bench-${kind}`,
        pgPort: pg.port,
        pgUser: 'postgres',
        database: 'postgres',
        repoUrl: url,
        ...(endpointEnv ? { endpointEnv } : {}),
        host,
        stateDir,
        restorePort,
        drillPort: await freePort(),
      },
      repositoriesYaml[kind],
    );
    if (kind === 'warm') restored.push(addStandby(runbooksDir, { host, stateDir, port: await freePort() }));
    if (kind === 'engine' || kind === 'engine-delta')
      appendFileSync(
        path.join(runbooksDir, `bench-${kind}.yaml`),
        `engine: { kind: pgbackrest, stanza: ${STANZA}, configPath: ${pgBackRestConfigPath(work)}${kind === 'engine-delta' ? ', delta: true' : ''} }\n`,
      );
  }

  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const loadAtStart = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  let pgbrBackupSeconds = 0;
  const ds = await makeDataset(pg, work, 'bench-file', {
    scale: SCALE,
    walMb: WAL_MB,
    cluster: CLUSTER,
    progress,
    afterBackup: () => {
      pgbrBackupSeconds = pgbr.run(['--type=full', 'backup']);
      progress(`pgBackRest full backup: ${pgbrBackupSeconds.toFixed(1)} s`);
    },
  });
  const fileRepo = await openRepository(fileUrl);
  const s3Repo = await openRepository(s3Url, { endpointEnv: 'S3_ENDPOINT' });
  const copied = await copyCluster(fileRepo, s3Repo);
  await copyCluster(fileRepo, await openRepository(warmUrl));
  // Sealed as archive-push and the base backup would have sealed them: the same compressed bytes, the same recorded sha256.
  await copyCluster(fileRepo, await openRepository(fileEncUrl, { encryption }));
  await copyCluster(fileRepo, await openRepository(s3EncUrl, { endpointEnv: 'S3_ENDPOINT', encryption }));
  await copyCluster(fileRepo, await openRepository(twoFileUrl));
  await copyCluster(fileRepo, await openRepository(twoS3Url, { endpointEnv: 'S3_ENDPOINT' }));
  progress(
    `dataset ready: target ${ds.targetName} (${ds.target}), ${copied} objects copied into MinIO, the warm row's, the encrypted rows' and the two-repository row's repositories; preparing the limit`,
  );

  if (!enableDelayAccounting())
    progress("kernel.task_delayacct is off (not root?): the startup process's disk wait reads 0");
  const taskQueue = `bench-recovery-${process.pid}`;
  const temporal = await startBenchTemporal(work, host, taskQueue, cleanups);

  const prep = ROWS.includes('limit')
    ? await prepareLimit(work, fileRepo, ds, kinds.file.restoreDir)
    : { ready: '', walDir: '', prepSeconds: 0 };
  const primaryPid = Number(readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const services = [minio.pid, ...pidsWithCmdline(`--port ${temporal.address.split(':')[1]}`)];
  const b: Bench = {
    work,
    sockets,
    ds,
    meter: () => new CpuMeter(work, services, [primaryPid]),
    ready: prep.ready,
    walDir: prep.walDir,
    pgbr,
    client: temporal.client,
    taskQueue,
    kinds,
  };
  return { b, runbooksDir, prepSeconds: prep.prepSeconds, pgbrBackupSeconds, cpuModel, loadAtStart };
}
