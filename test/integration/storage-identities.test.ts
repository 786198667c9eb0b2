// Least-privilege storage identities against a MinIO of the test's own, with
// one user per role holding exactly the policy in docs/iam/<role>.json (the
// files the README shows): archive-push archives as the archive identity, a
// base backup is taken as the backup identity, a restore reads as the restore
// identity and expire deletes as the expire identity; each is refused what
// its policy leaves out, and an expire run with the archive identity fails
// naming s3:DeleteObject and leaves every object where it was.
//
// The process's own AWS keys are a key MinIO does not know: anything that
// ignored its role's credentials would fail here.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { activity } from '../harness/activity';
import { cliRunner } from '../harness/cli';
import { startOwnMinio, type OwnMinio } from '../harness/faults-services';
import {
  asPostgres,
  postgresTempDir,
  startPrimary,
  switchAndWaitArchived,
  PG_BIN,
  type Primary,
} from '../harness/postgres';
import { freePort } from '../harness/ports';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import type { LifeboatError } from '../../src/errors';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { chownToUser } from '../../src/restore/os-user';
import { stopPrefetcher } from '../../src/restore/prefetch';
import { credentialsFilePath } from '../../src/restore/secret-file';
import { readCredentialsFile } from '../../src/repository/credentials-file';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { requireTool } from '../../src/tools';
import { promoteRestored, replayWal, restoreBaseBackup, stopRestored } from '../../activities/restore';
import { appendAudit, writeEvidence } from '../../activities/recovery';
import type { Evidence } from '../../src/recovery/contract';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const ROLES = ['archive', 'backup', 'restore', 'expire'] as const;
type Role = (typeof ROLES)[number];
const PREFIX = 'iam';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const runbooksDir = postgresTempDir('runbooks');
const mcDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-mc-'));
const cluster = `ids-${process.pid}`;
let minio: OwnMinio;
let pg: Primary;
let runbook: Runbook;
let repoUrl: string;
const identity = {} as Record<Role, { id: string; secret: string }>;
let worker: { id: string; secret: string };
let firstBackup: string;
let secondBackup: string;

/** `mc` as MinIO's root user (alias lb), with a configuration directory of the test's own. */
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

/** Every object under the repository, as root sees it: key, size and ETag. */
async function objects(): Promise<string[]> {
  const out = await mc('ls', '--recursive', '--json', `lb/${minio.bucket}/${PREFIX}/`);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { key: string; size: number; etag: string })
    .map((o) => `${o.key} ${o.size} ${o.etag}`)
    .sort();
}

/** A policy document of docs/iam for this bucket and prefix. */
function policyFor(role: Role | 'worker'): string {
  return readFileSync(path.resolve(__dirname, '../../docs/iam', `${role}.json`), 'utf8')
    .replaceAll('EXAMPLE-BUCKET', minio.bucket)
    .replaceAll('EXAMPLE-PREFIX', PREFIX);
}

beforeAll(async () => {
  minio = await startOwnMinio('iam');
  cleanups.push(() => minio.stop());
  repoUrl = `s3://${minio.bucket}/${PREFIX}`;
  for (const role of ROLES) {
    identity[role] = { id: `lifeboat-${role}`, secret: `${role}-secret-${process.pid}-${Date.now().toString(36)}` };
    const file = path.join(mcDir, `${role}.json`);
    writeFileSync(file, policyFor(role));
    await mc('admin', 'policy', 'create', 'lb', `lifeboat-${role}`, file);
    await mc('admin', 'user', 'add', 'lb', identity[role].id, identity[role].secret);
    await mc('admin', 'policy', 'attach', 'lb', `lifeboat-${role}`, '--user', identity[role].id);
    process.env[`LB_${role.toUpperCase()}_ID`] = identity[role].id;
    process.env[`LB_${role.toUpperCase()}_SECRET`] = identity[role].secret;
  }
  // The worker's default identity (commands with no role): a user of its own
  // with docs/iam/worker.json; the tests that use it put its keys in the
  // default chain's variables.
  writeFileSync(path.join(mcDir, 'worker.json'), policyFor('worker'));
  await mc('admin', 'policy', 'create', 'lb', 'lifeboat-worker', path.join(mcDir, 'worker.json'));
  worker = { id: 'lifeboat-worker', secret: `worker-secret-${process.pid}-${Date.now().toString(36)}` };
  await mc('admin', 'user', 'add', 'lb', worker.id, worker.secret);
  await mc('admin', 'policy', 'attach', 'lb', 'lifeboat-worker', '--user', worker.id);
  // The default chain's keys in this process: unknown to the store.
  Object.assign(process.env, {
    S3_ENDPOINT: minio.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'no-such-key',
    AWS_SECRET_ACCESS_KEY: 'no-such-secret',
  });
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;

  // The primary's archive_command gets the archive identity as an operator
  // would give it: a credentials file only postgres can read, named in its
  // environment (never the keys themselves there).
  const home = postgresTempDir('pg-home');
  cleanups.push(() => rmSync(home, { recursive: true, force: true }));
  const archiveFile = path.join(home, 'credentials.json');
  writeFileSync(
    archiveFile,
    JSON.stringify({
      lifeboat: 'credentials',
      role: 'archive',
      env: { AWS_ACCESS_KEY_ID: identity.archive.id, AWS_SECRET_ACCESS_KEY: identity.archive.secret },
    }),
    { mode: 0o600 },
  );
  await chownToUser(archiveFile, 'postgres');
  pg = await startPrimary({
    archive: {
      repo: repoUrl,
      cluster,
      env: { LIFEBOAT_CREDENTIALS_FILE: archiveFile, S3_ENDPOINT: minio.endpoint, AWS_REGION: 'us-east-1' },
    },
  });
  cleanups.push(() => pg.stop());

  const stateDir = postgresTempDir('state');
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const doc = parseYaml(
    demoRunbookYaml({
      name: cluster,
      pgPort: pg.port,
      pgUser: 'postgres',
      database: 'postgres',
      repoUrl,
      endpointEnv: 'S3_ENDPOINT',
      host: 'ids',
      stateDir,
      restorePort: await freePort(),
      drillPort: await freePort(),
      retainFull: 1,
    }),
  ) as { repository: Record<string, unknown> };
  doc.repository.credentials = Object.fromEntries(
    ROLES.map((r) => [
      r,
      { accessKeyIdEnv: `LB_${r.toUpperCase()}_ID`, secretAccessKeyEnv: `LB_${r.toUpperCase()}_SECRET` },
    ]),
  );
  writeFileSync(path.join(runbooksDir, `${cluster}.yaml`), toYaml(doc));
  runbook = await loadRunbook(cluster);
}, 180_000);

afterAll(async () => {
  const dataDir = runbook?.restore.dataDir;
  if (dataDir) {
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => '');
    await stopPrefetcher(dataDir);
  }
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
  rmSync(mcDir, { recursive: true, force: true });
});

async function refusal(p: Promise<unknown>): Promise<LifeboatError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as LifeboatError,
  );
  expect(err).toBeDefined();
  return err!;
}

describe('storage identities with exactly the docs/iam policies', () => {
  it("archive-push archives as the archive identity and a base backup is taken as the backup identity; each is refused the other's prefix", async () => {
    await pg.query('create table t (id int primary key, v text)');
    await pg.query(`insert into t select g, 'first' from generate_series(1, 100) g`);
    firstBackup = (await takeBaseBackup({ runbook })).backupId;
    await pg.query(`insert into t select g, 'second' from generate_series(101, 200) g`);
    await switchAndWaitArchived(pg);
    secondBackup = (await takeBaseBackup({ runbook })).backupId;
    await pg.query(`insert into t select g, 'third' from generate_series(201, 300) g`);
    await pg.query(`select pg_create_restore_point('ids-point')`);
    await pg.query(`insert into t values (1000, 'after the point')`);
    const last = await switchAndWaitArchived(pg);
    const stored = await objects();
    expect(stored.some((o) => o.startsWith(`${cluster}/wal/${last}.zst `))).toBe(true);
    expect(stored.some((o) => o.startsWith(`${cluster}/base/${secondBackup}/backup.json `))).toBe(true);

    const asArchive = await openRepository(repoUrl, { ...runbook.repository, role: 'archive' });
    const err = await refusal(
      asArchive.put(keys.backupMeta(cluster, 'forged'), Buffer.from('{}'), { sha256: '0'.repeat(64) }),
    );
    expect(err.code).toBe('PRIVILEGE_MISSING');
    expect(err.message.split('\n')[0]).toBe(
      `PUT ${cluster}/base/forged/backup.json in ${repoUrl} at ${minio.endpoint} failed: AccessDenied (HTTP 403): Access Denied.: ` +
        `the archive identity ($LB_ARCHIVE_ID, runbook repository.credentials.archive) lacks s3:PutObject on s3://${minio.bucket}/${PREFIX}/`,
    );
    const asBackup = await openRepository(repoUrl, { ...runbook.repository, role: 'backup' });
    expect(
      (
        await refusal(
          asBackup.put(keys.wal(cluster, '0000000100000000000000FF'), Buffer.from('x'), { sha256: '0'.repeat(64) }),
        )
      ).code,
    ).toBe('PRIVILEGE_MISSING');
    (asArchive as { destroy?: () => void }).destroy?.();
    (asBackup as { destroy?: () => void }).destroy?.();
  });

  it("restores and replays through archive-get as the restore identity, which may read but not write; without the archive identity's keys nothing is promoted", async () => {
    const workflowId = 'wf-ids';
    await activity(restoreBaseBackup, {
      runbook: cluster,
      backupId: firstBackup,
      mode: 'side-by-side',
      workflowId,
      runId: `${workflowId}-run`,
    });
    const { result } = await activity(replayWal, {
      runbook: cluster,
      target: { name: 'ids-point' },
      workflowId,
      runId: `${workflowId}-run`,
    });
    expect(result).toMatchObject({ paused: true });
    const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      expect((await c.query('select count(*)::int as n, max(id) as max from t')).rows).toEqual([{ n: 300, max: 300 }]);
    } finally {
      await c.end();
    }
    // The copy's commands had the restore identity, and only it.
    expect(readCredentialsFile(credentialsFilePath(runbook.restore.dataDir))).toEqual({
      lifeboat: 'credentials',
      role: 'restore',
      env: {
        AWS_ACCESS_KEY_ID: identity.restore.id,
        AWS_SECRET_ACCESS_KEY: identity.restore.secret,
        LB_RESTORE_ID: identity.restore.id,
        LB_RESTORE_SECRET: identity.restore.secret,
      },
      // The repository's settings for restore_command: names only, and only the restore identity's.
      repositories: [
        {
          name: 'repo1',
          url: repoUrl,
          options: {
            endpointEnv: 'S3_ENDPOINT',
            credentials: { restore: { accessKeyIdEnv: 'LB_RESTORE_ID', secretAccessKeyEnv: 'LB_RESTORE_SECRET' } },
          },
        },
      ],
    });
    // Promoted, the copy would archive as the archive identity: without its keys on this worker, nothing is promoted.
    delete process.env.LB_ARCHIVE_SECRET;
    try {
      const refused = await refusal(
        activity(promoteRestored, { runbook: cluster, workflowId, runId: `${workflowId}-run` }),
      );
      expect(refused.message.split('\n')[0]).toBe(
        'the archive storage identity (runbook repository.credentials.archive) needs $LB_ARCHIVE_SECRET, which is not set in this process',
      );
    } finally {
      process.env.LB_ARCHIVE_SECRET = identity.archive.secret;
    }
    const again = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
    await again.connect();
    try {
      expect((await again.query('select pg_is_in_recovery() as r')).rows).toEqual([{ r: true }]);
    } finally {
      await again.end();
    }
    await activity(stopRestored, { runbook: cluster, workflowId, runId: `${workflowId}-run` });
    expect(() => readCredentialsFile(credentialsFilePath(runbook.restore.dataDir))).toThrow(/cannot be read: ENOENT/);

    const asRestore = await openRepository(repoUrl, { ...runbook.repository, role: 'restore' });
    const err = await refusal(
      asRestore.put(keys.wal(cluster, '0000000100000000000000FE'), Buffer.from('x'), { sha256: '0'.repeat(64) }),
    );
    expect(err.code).toBe('PRIVILEGE_MISSING');
    expect(err.message).toContain(
      'the restore identity ($LB_RESTORE_ID, runbook repository.credentials.restore) lacks s3:PutObject',
    );
    (asRestore as { destroy?: () => void }).destroy?.();
  });

  it('expire run with the archive identity fails naming s3:DeleteObject, and every object is still there', async () => {
    const before = await objects();
    const lifeboat = cliRunner(() => ({
      ...process.env,
      LB_EXPIRE_ID: identity.archive.id,
      LB_EXPIRE_SECRET: identity.archive.secret,
    }));
    const r = await lifeboat('expire', '--runbook', cluster, '--local');
    console.log(`expire as the archive identity: exit ${r.code}\n${r.stderr}`);
    expect(r.code).toBe(1);
    // backup.json goes first (src/catalog/catalog.ts): refused, nothing of the backup goes.
    expect(r.stderr).toBe(
      `lifeboat: while deleting backup ${firstBackup} of cluster ${cluster} from ${repoUrl}: ${repoUrl}: 1 of 1 deletions refused (AccessDenied), ` +
        `first ${PREFIX}/${cluster}/base/${firstBackup}/backup.json: the expire identity ($LB_EXPIRE_ID, runbook repository.credentials.expire) ` +
        `lacks s3:DeleteObject on s3://${minio.bucket}/${PREFIX}/; nothing of this batch was deleted\n` +
        'HINT: grant s3:DeleteObject to that identity, or run expire with the identity whose policy has it (docs/iam/expire.json); archive and backup identities never delete, on purpose\n',
    );
    expect(await objects()).toEqual(before);
  });

  it('expire with the expire identity deletes the first backup and the WAL only it needed, and nothing else', async () => {
    const before = await objects();
    const lifeboat = cliRunner(() => process.env);
    const r = await lifeboat('expire', '--runbook', cluster, '--local');
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const after = await objects();
    const gone = before.filter((o) => !after.includes(o)).map((o) => o.split(' ')[0]!);
    expect(gone.some((k) => k === `${cluster}/base/${firstBackup}/backup.json`)).toBe(true);
    expect(after.some((o) => o.startsWith(`${cluster}/base/${secondBackup}/backup.json `))).toBe(true);
    expect(gone.every((k) => k.startsWith(`${cluster}/base/${firstBackup}/`) || k.startsWith(`${cluster}/wal/`))).toBe(
      true,
    );
    console.log(`expire as the expire identity deleted ${gone.length} objects:\n${r.stdout}`);
  });

  it("the worker's default identity (docs/iam/worker.json): check, evidence and audit records work; it writes no WAL or backup and deletes nothing", async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: worker.id, AWS_SECRET_ACCESS_KEY: worker.secret });
    try {
      const lifeboat = cliRunner(() => process.env);
      const check = await lifeboat('check', '--runbook', cluster, '--no-primary');
      expect(check.stdout).not.toMatch(/AccessDenied|PRIVILEGE_MISSING|lacks s3:/);
      expect({ code: check.code, last: check.stdout.trimEnd().split('\n').pop() }).toEqual({
        code: 0,
        last: 'healthy',
      });

      const runId = `worker-${process.pid}`;
      const evidence = { runId, kind: 'recovery', runbook: cluster } as unknown as Evidence;
      const { result } = await activity(writeEvidence, { runbook: cluster, evidence });
      expect(result.key).toBe(keys.evidence(cluster, runId));
      for (const seq of [1, 2]) {
        await activity(appendAudit, {
          runbook: cluster,
          runId,
          workflowId: 'wf-worker',
          seq,
          line: { at: new Date().toISOString(), event: 'step', note: `line ${seq}` },
        });
      }
      const asWorker = await openRepository(repoUrl, runbook.repository);
      try {
        const audit = await asWorker.get(keys.audit(cluster, runId));
        expect(
          audit?.body
            .toString('utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => (JSON.parse(l) as { seq: number }).seq),
        ).toEqual([1, 2]);
        const wal = await refusal(
          asWorker.put(keys.wal(cluster, '0000000100000000000000FD'), Buffer.from('x'), { sha256: '0'.repeat(64) }),
        );
        expect(wal.code).toBe('PRIVILEGE_MISSING');
        expect(wal.message).toContain('lacks s3:PutObject');
        const before = await objects();
        const del = await refusal(asWorker.delete([keys.evidence(cluster, runId)]));
        expect(del.code).toBe('PRIVILEGE_MISSING');
        expect(del.message).toContain('lacks s3:DeleteObject');
        expect(await objects()).toEqual(before);
      } finally {
        (asWorker as { destroy?: () => void }).destroy?.();
      }
    } finally {
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: saved.id, AWS_SECRET_ACCESS_KEY: saved.secret });
    }
  });
});
