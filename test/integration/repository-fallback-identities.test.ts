// A recovery that falls back to a second repository readable only with that
// repository's own settings (runbook `repositories:`): the first is a
// file:// repository encrypted with key id k1 from $LB1_KEY; the second is
// an s3:// repository on a MinIO of this test's own, encrypted with another
// key under the same id k1 ($LB2_KEY), and readable only by a MinIO user
// holding docs/iam/restore.json for its prefix (runbook
// credentials.restore). The worker's default identity (what the first
// repository's restore uses) is a MinIO user whose restore policy covers
// another prefix: it cannot read the second.
//
// In the first, a byte of a base backup part and a byte of a WAL segment the
// replay needs are flipped. Then:
//   - the prefetcher (archive-prefetch --fallback-repo, as replay-wal starts
//     it) spools the damaged segment from the second and records that it did;
//   - restore-base-backup fails on the damaged part midway, moves what it
//     extracted aside (kept) and restores the same backup from the second;
//   - replay-wal's restore_command takes the damaged segment from the second,
//     with the second's identity and key, read from the copy's credentials
//     file (none of them on its command line or in the postmaster's
//     environment), and pauses at the target with exactly its rows.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from 'pg';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import { isLifeboatError } from '../../src/errors';
import { repositorySourceNotes, repositorySources } from '../../src/recovery/repository-sources';
import { openRepository } from '../../src/repository';
import { readCredentialsFile } from '../../src/repository/credentials-file';
import { keys } from '../../src/repository/layout';
import { findBackup } from '../../src/restore/extract';
import { MARKER_FILE } from '../../src/restore/marker';
import { stopPrefetcher } from '../../src/restore/prefetch';
import { credentialsFilePath, postmasterEnvWithCredentials } from '../../src/restore/secret-file';
import { loadRunbook } from '../../src/runbook/load';
import { requireTool } from '../../src/tools';
import { fetchWalFile } from '../../src/wal/get';
import { WAL_SOURCES_FILE, readWalSources } from '../../src/wal/get-fallback';
import { PART_RE } from '../../src/catalog/backup-meta';
import { activity } from '../harness/activity';
import { CLI } from '../harness/cli';
import { startOwnMinio, type OwnMinio } from '../harness/faults-services';
import { freePort } from '../harness/ports';
import { asPostgres, PG_BIN, postgresTempDir, startPrimary, type Primary } from '../harness/postgres';
import { archiveByRunbook, rowsAroundATarget, runbookWithRepositories } from '../harness/two-repositories';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const name = `fbids-${process.pid}`;
const runbooksDir = postgresTempDir('runbooks');
const repoDir = postgresTempDir('repo1');
const stateDir = postgresTempDir('state');
const mcDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-mc-'));
const cleanups: Array<() => unknown> = [];
let minio: OwnMinio;
let pg: Primary;
let offsiteUrl: string;
const secrets = {
  LB1_KEY: randomBytes(32).toString('base64'),
  LB2_KEY: randomBytes(32).toString('base64'),
  LB2_RESTORE_SECRET: `second-restore-${randomBytes(8).toString('hex')}`,
  FIRST_RESTORE_SECRET: `first-restore-${randomBytes(8).toString('hex')}`,
};

async function mc(...args: string[]): Promise<string> {
  const { stdout } = await exec(requireTool('mc'), ['--config-dir', mcDir, '--no-color', ...args], {
    env: {
      ...process.env,
      MC_HOST_lb: minio.endpoint.replace(
        '://',
        `://${minio.env.AWS_ACCESS_KEY_ID}:${minio.env.AWS_SECRET_ACCESS_KEY}@`,
      ),
    },
  });
  return stdout;
}

/** A MinIO user holding docs/iam/restore.json for `prefix` of the bucket. */
async function restoreUser(user: string, secret: string, prefix: string): Promise<void> {
  const file = path.join(mcDir, `${user}.json`);
  writeFileSync(
    file,
    readFileSync(path.resolve(__dirname, '../../docs/iam/restore.json'), 'utf8')
      .replaceAll('EXAMPLE-BUCKET', minio.bucket)
      .replaceAll('EXAMPLE-PREFIX', prefix),
  );
  await mc('admin', 'policy', 'create', 'lb', `${user}-policy`, file);
  await mc('admin', 'user', 'add', 'lb', user, secret);
  await mc('admin', 'policy', 'attach', 'lb', `${user}-policy`, '--user', user);
}

beforeAll(async () => {
  minio = await startOwnMinio('fbids');
  cleanups.push(() => minio.stop());
  offsiteUrl = `s3://${minio.bucket}/second`;
  await restoreUser('second-restore', secrets.LB2_RESTORE_SECRET, 'second');
  await restoreUser('first-restore', secrets.FIRST_RESTORE_SECRET, 'first');
  // The worker's default chain (the first repository's restore identity): it cannot read "second".
  Object.assign(process.env, {
    ...secrets,
    AWS_ACCESS_KEY_ID: 'first-restore',
    AWS_SECRET_ACCESS_KEY: secrets.FIRST_RESTORE_SECRET,
    AWS_REGION: 'us-east-1',
    LB2_ENDPOINT: minio.endpoint,
    LB2_RESTORE_ID: 'second-restore',
    // Archive and backup into the second as MinIO's root (their identities are not this test's subject).
    LB2_WRITER_ID: minio.env.AWS_ACCESS_KEY_ID,
    LB2_WRITER_SECRET: minio.env.AWS_SECRET_ACCESS_KEY,
    LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
  });
  const archiveEnv: Record<string, string> = {};
  for (const k of ['LB1_KEY', 'LB2_KEY', 'AWS_REGION', 'LB2_ENDPOINT', 'LB2_WRITER_ID', 'LB2_WRITER_SECRET'])
    archiveEnv[k] = process.env[k]!;
  pg = await startPrimary({ archive: { repo: `file://${repoDir}`, cluster: name, env: archiveEnv } });
  cleanups.push(() => pg.stop());
  const writer = '{ accessKeyIdEnv: LB2_WRITER_ID, secretAccessKeyEnv: LB2_WRITER_SECRET }';
  const params = {
    name,
    pgPort: pg.port,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: `file://${repoDir}`,
    host: 'fbids',
    stateDir,
    restorePort: await freePort(),
    drillPort: await freePort(),
  };
  const yaml = runbookWithRepositories(
    params,
    [
      `  - { name: local, url: "file://${repoDir}", encryption: { keyId: k1, keyEnv: LB1_KEY } }`,
      `  - name: offsite`,
      `    url: "${offsiteUrl}"`,
      '    endpointEnv: LB2_ENDPOINT',
      '    encryption: { keyId: k1, keyEnv: LB2_KEY }',
      `    credentials: { archive: ${writer}, backup: ${writer}, restore: { accessKeyIdEnv: LB2_RESTORE_ID, secretAccessKeyEnv: LB2_RESTORE_SECRET } }`,
    ],
    'all',
  );
  await archiveByRunbook(pg, runbooksDir, name, yaml);
}, 180_000);

afterAll(async () => {
  const dataDir = path.join(stateDir, 'recovery');
  if (existsSync(path.join(dataDir, 'postmaster.pid')))
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => '');
  await stopPrefetcher(dataDir).catch(() => undefined);
  await runCleanups(cleanups);
  // Directories this test made: provably ours.
  for (const d of [runbooksDir, repoDir, stateDir, mcDir]) rmSync(d, { recursive: true, force: true });
});

async function onRestored<T>(port: number, sql: string): Promise<T[]> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

function flipMiddleByte(file: string): void {
  const bytes = readFileSync(file);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(file, bytes);
}

const escape = (s: string) => s.replace(/[/.]/g, '\\$&');

it(
  'falls back to a second repository with its own identity and key: a damaged base part, a damaged segment (prefetched and replayed), exact rows, evidence names the second',
  { timeout: 400_000 },
  async () => {
    const runbook = await loadRunbook(name);
    const { backup, target, damaged } = await rowsAroundATarget(pg, runbook);
    expect(damaged > backup.startWal).toBe(true);

    const local = await openRepository(`file://${repoDir}`, { encryption: { keyId: 'k1', keyEnv: 'LB1_KEY' } });
    const asSecond = {
      endpointEnv: 'LB2_ENDPOINT',
      encryption: { keyId: 'k1', keyEnv: 'LB2_KEY' },
      role: 'restore' as const,
      credentials: { restore: { accessKeyIdEnv: 'LB2_RESTORE_ID', secretAccessKeyEnv: 'LB2_RESTORE_SECRET' } },
    };
    const offsite = await openRepository(offsiteUrl, asSecond);
    // The first repository's identity (the default chain here) with the second's key: refused by the store.
    const asFirst = await openRepository(offsiteUrl, {
      endpointEnv: 'LB2_ENDPOINT',
      encryption: { keyId: 'k1', keyEnv: 'LB2_KEY' },
    });
    // The second's identity with the first's key (what restore_command gave every repository before): the objects do not open.
    const withFirstKey = await openRepository(offsiteUrl, {
      ...asSecond,
      encryption: { keyId: 'k1', keyEnv: 'LB1_KEY' },
    });
    cleanups.push(() => [offsite, asFirst, withFirstKey].forEach((r) => (r as { destroy?: () => void }).destroy?.()));
    const segKey = keys.wal(name, damaged);
    const good = await fetchWalFile(offsite, name, damaged);
    expect(good?.sha256).toBe((await fetchWalFile(local, name, damaged))?.sha256);
    const denied = await fetchWalFile(asFirst, name, damaged).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLifeboatError(denied) && denied.code).toMatch(/PRIVILEGE_MISSING|REPOSITORY_UNREACHABLE/);
    const wrongKey = await fetchWalFile(withFirstKey, name, damaged).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLifeboatError(wrongKey) && wrongKey.code).toBe('ENCRYPTION_KEY_MISMATCH');

    // The first damaged: a byte of its biggest file part and a byte of the segment flipped (never deleted).
    const meta = await findBackup(local, name, backup.backupId, name);
    const part = meta.files
      .filter((f) => Number(PART_RE.exec(f.name)?.[1] ?? 0) > 0)
      .sort((a, b) => b.storedSize - a.storedSize)[0];
    expect(part, `backup.json lists ${meta.files.map((f) => f.name).join(', ')}`).toBeDefined();
    flipMiddleByte(path.join(repoDir, keys.backupFile(name, backup.backupId, part!.name)));
    flipMiddleByte(path.join(repoDir, segKey));

    // The prefetcher, as replay-wal starts it (src/restore/prefetch.ts), in a directory of the test's own with a
    // credentials file written as for a copy: it spools the damaged segment from the second and records so.
    const probe = path.join(stateDir, 'probe');
    mkdirSync(probe, { recursive: true });
    writeFileSync(path.join(probe, 'PG_VERSION'), '15\n');
    // The environment the copy's postmaster and prefetcher get: no secret, the path of the credentials file.
    const env = await postmasterEnvWithCredentials(
      runbook,
      { dataDir: probe, pgBin: PG_BIN, osUser: 'postgres' },
      'restore',
    );
    const spoolDir = path.join(probe, 'pg_wal', '.lifeboat-prefetch');
    for (const secret of Object.values(secrets)) expect(Object.values(env).join('\n')).not.toContain(secret);
    await exec(
      CLI,
      [
        'archive-prefetch',
        damaged,
        '--count',
        '1',
        '--spool-dir',
        spoolDir,
        '--repo',
        `file://${repoDir}`,
        '--cluster',
        name,
        '--encryption-key',
        'k1=LB1_KEY',
        '--fallback-repo',
        `${offsiteUrl}#endpointEnv=LB2_ENDPOINT`,
      ],
      { cwd: probe, env },
    );
    const spooled = readFileSync(path.join(spoolDir, damaged));
    expect(createHash('sha256').update(spooled).digest('hex')).toBe(good!.sha256);
    expect(await readWalSources(probe)).toEqual([
      {
        walFile: damaged,
        servedBy: offsiteUrl,
        via: 'prefetcher',
        skipped: [{ url: `file://${repoDir}`, reason: expect.any(String) as string }],
      },
    ]);
    process.stdout.write(
      `prefetcher: ${damaged} from ${offsiteUrl}; passed over: ${(await readWalSources(probe))[0]?.skipped[0]?.reason}\n`,
    );
    expect(readdirSync(probe)).toContain(WAL_SOURCES_FILE);

    // restore_command itself, as replay-wal writes it (no prefetching here, so Node's archive-get serves the file).
    const getter = path.join(stateDir, 'probe-get');
    mkdirSync(getter, { recursive: true });
    writeFileSync(path.join(getter, 'PG_VERSION'), '15\n');
    const getterEnv = await postmasterEnvWithCredentials(
      runbook,
      { dataDir: getter, pgBin: PG_BIN, osUser: 'postgres' },
      'restore',
    );
    await exec(
      CLI,
      [
        'archive-get',
        damaged,
        'pg_wal/RECOVERYXLOG',
        '--prefetch',
        '0',
        '--repo',
        `file://${repoDir}`,
        '--cluster',
        name,
        '--encryption-key',
        'k1=LB1_KEY',
        '--fallback-repo',
        `${offsiteUrl}#endpointEnv=LB2_ENDPOINT`,
      ],
      { cwd: getter, env: getterEnv },
    );
    expect(
      createHash('sha256')
        .update(readFileSync(path.join(getter, 'pg_wal', 'RECOVERYXLOG')))
        .digest('hex'),
    ).toBe(good!.sha256);
    expect(await readWalSources(getter)).toEqual([
      {
        walFile: damaged,
        servedBy: offsiteUrl,
        skipped: [{ url: `file://${repoDir}`, reason: expect.any(String) as string }],
      },
    ]);

    const workflowId = 'wf-fbids';
    const { result: restored } = await activity(restoreBaseBackup, {
      runbook: name,
      backupId: backup.backupId,
      mode: 'side-by-side',
      workflowId,
      runId: `${workflowId}-run`,
    });
    expect(restored.repository).toEqual({
      name: 'offsite',
      url: offsiteUrl,
      skipped: [
        {
          name: 'local',
          url: `file://${repoDir}`,
          reason: expect.stringContaining(`extracting backup ${backup.backupId} failed`) as string,
          partial: expect.any(String) as string,
        },
      ],
    });
    // What the first gave before it failed is kept beside the copy, with its marker, never deleted.
    const partial = restored.repository!.skipped[0]!.partial!;
    expect(existsSync(path.join(partial, MARKER_FILE))).toBe(true);
    process.stdout.write(
      `base backup from offsite; local passed over: ${restored.repository?.skipped[0]?.reason}; partial kept in ${partial}\n`,
    );

    const { result: replayed } = await activity(replayWal, {
      runbook: name,
      target: { time: target },
      workflowId,
      runId: `${workflowId}-run`,
    });
    expect(
      await onRestored(
        restored.port,
        `select count(*)::int as n, max(id) as max, count(*) filter (where v = 'after backup')::int as after from t`,
      ),
    ).toEqual([{ n: 200, max: 200, after: 100 }]);
    // restore_command or the copy's prefetcher took it (whichever asked first): from the second, the first passed over.
    expect(replayed.walFromOtherRepositories).toEqual([
      expect.objectContaining({
        walFile: damaged,
        servedBy: offsiteUrl,
        skipped: [{ url: `file://${repoDir}`, reason: expect.any(String) as string }],
      }),
    ]);
    const notes = repositorySourceNotes(repositorySources(restored, replayed));
    expect(notes).toEqual([
      expect.stringMatching(
        new RegExp(
          `^base backup served by repository offsite \\(${escape(offsiteUrl)}\\); passed over: local \\(file://.*extracting backup`,
        ),
      ) as string,
      expect.stringMatching(new RegExp(`^WAL ${damaged} served by ${escape(offsiteUrl)}`)) as string,
    ]);
    process.stdout.write(`evidence notes:\n${notes.join('\n')}\n`);

    // The second's settings reach restore_command through the copy's credentials file, by name only;
    // no secret is on its command line or in the postmaster's environment.
    const dataDir = restored.dataDir;
    const file = readCredentialsFile(credentialsFilePath(dataDir));
    expect(file.repositories?.map((r) => [r.name, r.url])).toEqual([
      ['local', `file://${repoDir}`],
      ['offsite', offsiteUrl],
    ]);
    expect(file.repositories?.[1]?.options).toMatchObject({
      endpointEnv: 'LB2_ENDPOINT',
      encryption: { keyId: 'k1', keyEnv: 'LB2_KEY' },
      credentials: { restore: { accessKeyIdEnv: 'LB2_RESTORE_ID' } },
    });
    const conf = readFileSync(path.join(dataDir, 'postgresql.auto.conf'), 'utf8');
    const pid = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!;
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    for (const secret of Object.values(secrets)) {
      expect(conf).not.toContain(secret);
      expect(environ).not.toContain(secret);
    }
  },
);
