// Client-side encryption end to end (src/repository/encrypted.ts), on a real
// PostgreSQL 15 primary archiving through `lifeboat archive-push` into
// file:// and into MinIO: the base backup and the WAL written sealed, a key
// rotation half-way (segments archived with k1, then with k2 and k1 listed as
// previous), and a real point-in-time recovery through the restore host's
// activities (restore-base-backup, replay-wal: restore_command is
// `lifeboat archive-get ... --encryption-key ...`, the key reaching it through
// the copy's credentials file) with exactly the rows of the target. Every
// stored object is read back raw and searched for a plaintext marker row:
// none has it, while the same objects decrypted (what an unencrypted
// repository stores) do, so the search can fail. A wrong or missing key is
// refused naming the object and the key id, with nothing written at %p and
// nothing restored.
//
// The primary's archive_command names its keys as files (keyFile), the
// runbook as environment variables (keyEnv): the same keys, both ways.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { parseDocument } from 'yaml';
import { activity, failureOf } from '../harness/activity';
import { asPostgres, postgresTempDir, switchAndWaitArchived, PG_BIN } from '../harness/postgres';
import { startTestCluster, type RepoKind, type TestCluster } from '../harness/cluster';
import { waitFor } from '../harness/ports';
import { s3Env, useS3Env } from '../harness/services';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { startSandboxPrimary, type SandboxPg } from '../../src/dev/sandbox-pg';
import { openRepository } from '../../src/repository';
import { sealedKeyId } from '../../src/repository/encryption-format';
import { keys, walFileOfKey } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { lifeboatCommand } from '../../src/tools';
import { isAlive } from '../../src/wal/pid';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import { stopPrefetcher } from '../../src/restore/prefetch';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const K1_ENV = 'LIFEBOAT_IT_ENC_K1';
const K2_ENV = 'LIFEBOAT_IT_ENC_K2';
const WRONG_ENV = 'LIFEBOAT_IT_ENC_WRONG';
const UNSET_ENV = 'LIFEBOAT_IT_ENC_UNSET';

beforeAll(() => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  process.env[K1_ENV] = randomBytes(32).toString('base64');
  process.env[K2_ENV] = randomBytes(32).toString('base64');
  process.env[WRONG_ENV] = randomBytes(32).toString('base64');
  delete process.env[UNSET_ENV];
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** Key files the postgres user can read (0600, its own), for the primary's archive_command. */
function keyFiles(): { k1: string; k2: string } {
  const dir = postgresTempDir('keys');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
  const write = (name: string, env: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, `${process.env[env]}\n`, { mode: 0o600 });
    chownSync(file, uid, gid);
    return file;
  };
  return { k1: write('k1.key', K1_ENV), k2: write('k2.key', K2_ENV) };
}

/** Sets repository.encryption in the test cluster's runbook file. */
function setRunbookEncryption(tc: TestCluster, encryption: Record<string, unknown>): void {
  const doc = parseDocument(readFileSync(tc.runbookFile, 'utf8'));
  doc.setIn(['repository', 'encryption'], encryption);
  writeFileSync(tc.runbookFile, doc.toString());
}

/**
 * A new archive_command, taken by a restart: what is ready when the server
 * stops is archived with the old command (no reload was asked for), and every
 * segment archived after this returns with the new one (a reload would race
 * the next segment switch).
 */
async function setArchiveCommand(tc: TestCluster, command: string): Promise<void> {
  const pg = tc.pg;
  await pg.query(`alter system set archive_command = '${command.replace(/'/g, "''")}'`);
  await pg.pgCtl('stop', '-m', 'fast', '-w');
  // The read-ahead pusher of the old command runs on for a few idle seconds
  // and would archive what becomes ready after the restart with the old key:
  // the new command starts when it is gone.
  const markers = path.join(pg.dataDir, 'pg_wal', '.lifeboat-pushed');
  await waitFor('the old read-ahead pusher to exit', async () => {
    const pids = existsSync(markers)
      ? readdirSync(markers)
          .filter((n) => /^\.pusher-.*\.pid$/.test(n))
          .map((n) => Number(readFileSync(path.join(markers, n), 'utf8')))
      : [];
    return pids.every((pid) => !isAlive(pid)) ? true : undefined;
  });
  const sandbox: SandboxPg = {
    dataDir: pg.dataDir,
    port: pg.port,
    socketDir: pg.root,
    logFile: pg.logFile,
    pgBin: PG_BIN,
    osUser: 'postgres',
    env: tc.kind === 's3' ? s3Env() : {},
  };
  await startSandboxPrimary(sandbox);
  const [row] = await pg.query<{ archive_command: string }>('show archive_command');
  expect(row?.archive_command).toBe(command);
}

/** The marker (its bytes) found in `stored`, or in it zstd-decompressed. */
function holdsMarker(stored: Buffer, marker: string): boolean {
  if (stored.includes(marker)) return true;
  if (stored.length < 4 || stored.readUInt32LE(0) !== 0xfd2fb528) return false;
  return execFileSync('zstd', ['-dc'], { input: stored, maxBuffer: 1 << 30 }).includes(marker);
}

async function runLifeboat(
  args: string[],
  cwd: string,
  env: Record<string, string | undefined>,
): Promise<{ code: number; stderr: string }> {
  // lifeboatCommand() is what PostgreSQL runs: `LIFEBOAT_NODE=... bin/lifeboat`, through a shell.
  return exec('sh', ['-c', `${lifeboatCommand()} "$@"`, 'sh', ...args], { cwd, env: { ...process.env, ...env } }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code?: number; stderr?: string }) => ({ code: e.code ?? -1, stderr: e.stderr ?? '' }),
  );
}

describe.each(['file', 's3'] as const)('an encrypted %s:// repository', (kind: RepoKind) => {
  it('archives and backs up sealed, rotates keys, and recovers to a restore point with exactly its rows; no stored object holds a plaintext row', async () => {
    const marker = `plaintext-marker-${randomBytes(8).toString('hex')}`;
    const files = keyFiles();
    const tc = await startTestCluster({
      name: `enc-${kind}`,
      kind,
      runbooksDir,
      host: `enc${kind}`,
      archiveArgs: ['--encryption-key', `k1=${files.k1}`],
    });
    cleanups.push(() => tc.stop());
    const push = (keysArgs: string) =>
      `${lifeboatCommand()} archive-push %p --repo ${tc.repoUrl} --cluster ${tc.name} ${keysArgs}`;
    setRunbookEncryption(tc, { keyId: 'k1', keyEnv: K1_ENV });
    const pg = tc.pg;

    await pg.query('create table t (id int primary key, v text)');
    await pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
    await pg.query(`insert into t values (0, $1)`, [marker]);
    const backup = await takeBaseBackup({ runbook: await loadRunbook(tc.name) });
    await pg.query(`insert into t select g, 'after backup' from generate_series(101, 200) g`);
    await switchAndWaitArchived(pg);

    // Rotation: k2 writes from now on, k1 stays readable.
    await setArchiveCommand(tc, push(`--encryption-key k2=${files.k2} --encryption-key k1=${files.k1}`));
    setRunbookEncryption(tc, { keyId: 'k2', keyEnv: K2_ENV, previous: [{ keyId: 'k1', keyEnv: K1_ENV }] });
    await pg.query(`insert into t select g, 'after rotation' from generate_series(201, 250) g`);
    await pg.query(`update t set v = $1 || ' again' where id = 0`, [marker]);
    await pg.query(`select pg_create_restore_point('rotated')`);
    await pg.query('delete from t where id > 50');
    await pg.query(`insert into t values (1000, 'after the restore point')`);
    await switchAndWaitArchived(pg);

    // Raw, the store holds only sealed objects (audit lines aside), WAL of both keys.
    const raw: Repository = await openRepository(tc.repoUrl, tc.endpointEnv ? { endpointEnv: tc.endpointEnv } : {});
    const sealed = await openRepository(tc.repoUrl, {
      ...(tc.endpointEnv ? { endpointEnv: tc.endpointEnv } : {}),
      ...(await loadRunbook(tc.name)).repository,
    });
    const objects = await raw.list(keys.clusterPrefix(tc.name));
    const wal = objects.filter((o) => walFileOfKey(tc.name, o.key) !== undefined);
    const keyIdOf = new Map<string, string | undefined>();
    let plainHits = { wal: 0, base: 0 };
    for (const o of objects) {
      const stored = (await raw.get(o.key))!.body;
      keyIdOf.set(o.key, sealedKeyId(stored));
      expect({ key: o.key, holdsMarker: holdsMarker(stored, marker) }).toEqual({ key: o.key, holdsMarker: false });
      expect({ key: o.key, sealed: sealedKeyId(stored) !== undefined }).toEqual({ key: o.key, sealed: true });
      // The control: decrypted, as an unencrypted repository would store it, the marker is there.
      const plain = (await sealed.get(o.key))!.body;
      if (holdsMarker(plain, marker))
        plainHits = o.key.includes('/wal/')
          ? { ...plainHits, wal: plainHits.wal + 1 }
          : { ...plainHits, base: plainHits.base + 1 };
    }
    expect(plainHits.wal).toBeGreaterThanOrEqual(2);
    expect(plainHits.base).toBeGreaterThanOrEqual(1);
    const backupStart = keys.wal(tc.name, backup.startWal);
    const lastSegment = wal
      .map((o) => o.key)
      .filter((k) => k.endsWith('.zst'))
      .sort()
      .at(-1)!;
    expect([
      keyIdOf.get(backupStart),
      keyIdOf.get(lastSegment),
      keyIdOf.get(keys.backupMeta(tc.name, backup.backupId)),
    ]).toEqual(['k1', 'k2', 'k1']);
    if (kind === 'file') {
      // The literal search too, over the directory.
      const root = tc.repoUrl.slice('file://'.length);
      const grep = await exec('grep', ['-r', '-l', '-F', marker, root]).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? '' }),
      );
      expect(grep).toEqual({ code: 1, out: '' });
    }

    // A wrong key for the runbook: refused before the data directory is touched.
    const runbook = await loadRunbook(tc.name);
    const input = {
      runbook: tc.name,
      backupId: backup.backupId,
      mode: 'side-by-side' as const,
      workflowId: `wf-enc-${kind}`,
      runId: `wf-enc-${kind}-run`,
    };
    const goodK1 = process.env[K1_ENV];
    process.env[K1_ENV] = process.env[WRONG_ENV];
    const failure = await failureOf(activity(restoreBaseBackup, input)).finally(() => (process.env[K1_ENV] = goodK1));
    expect(failure.type).toBe('ENCRYPTION_KEY_MISMATCH');
    expect(failure.message).toContain(
      `object ${keys.backupMeta(tc.name, backup.backupId)} in ${tc.repoUrl} was encrypted with key id k1, but the key read from environment variable ${K1_ENV} is not that key`,
    );
    expect(existsSync(runbook.restore.dataDir) ? readdirSync(runbook.restore.dataDir) : []).toEqual([]);

    // The recovery: the base backup (k1) and WAL of both keys, through the real restore_command.
    await activity(restoreBaseBackup, input);
    cleanups.push(async () => {
      await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', runbook.restore.dataDir, '-m', 'immediate', '-w']).catch(
        () => '',
      );
      await stopPrefetcher(runbook.restore.dataDir);
    });
    const { result } = await activity(replayWal, {
      runbook: tc.name,
      target: { name: 'rotated' },
      workflowId: input.workflowId,
      runId: input.runId,
    });
    expect(result.paused).toBe(true);
    const conf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    const restoreCommand = conf.split('\n').find((l) => l.startsWith('restore_command'));
    expect(restoreCommand).toBe(
      `restore_command = '${lifeboatCommand()} archive-get %f %p --repo ${tc.repoUrl} --cluster ${tc.name} --encryption-key k2=${K2_ENV} --encryption-key k1=${K1_ENV}'`,
    );
    for (const env of [K1_ENV, K2_ENV]) expect(conf).not.toContain(process.env[env]);
    const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      const { rows } = await c.query(
        `select count(*)::int as n, min(id) as min, max(id) as max,
                count(*) filter (where v = 'after backup')::int as after_backup,
                count(*) filter (where v = 'after rotation')::int as after_rotation,
                (select v from t where id = 0) as marker_row
           from t`,
      );
      expect(rows).toEqual([
        { n: 251, min: 0, max: 250, after_backup: 100, after_rotation: 50, marker_row: `${marker} again` },
      ]);
    } finally {
      await c.end();
    }
    (raw as { destroy?: () => void }).destroy?.();
    (sealed as { destroy?: () => void }).destroy?.();

    // archive-get as PostgreSQL runs it: the right keys serve the segment; a
    // wrong, missing or unconfigured key exits 255 naming the object and the
    // key id, and writes nothing at %p.
    const seg = backup.startWal;
    const object = keys.wal(tc.name, seg);
    const work = postgresTempDir('get');
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    mkdirSync(path.join(work, 'pg_wal'));
    const get = (...extra: string[]) =>
      runLifeboat(
        ['archive-get', seg, `pg_wal/${seg}`, '--repo', tc.repoUrl, '--cluster', tc.name, '--prefetch', '0', ...extra],
        work,
        kind === 's3' ? s3Env() : {},
      );
    for (const [extra, message] of [
      [
        ['--encryption-key', `k1=${WRONG_ENV}`],
        `object ${object} in ${tc.repoUrl} was encrypted with key id k1, but the key read from environment variable ${WRONG_ENV} is not that key`,
      ],
      [
        ['--encryption-key', `k1=${UNSET_ENV}`],
        `encryption key k1 for object ${object} in ${tc.repoUrl}: environment variable ${UNSET_ENV} is not set`,
      ],
      [
        ['--encryption-key', `k2=${K2_ENV}`],
        `object ${object} in ${tc.repoUrl} was encrypted with key id k1, which is not configured (configured: k2)`,
      ],
      [
        [],
        `${seg} in ${tc.repoUrl} (cluster ${tc.name}, object ${object}) is encrypted (key id k1), and no encryption key is configured`,
      ],
    ] as const) {
      const r = await get(...extra);
      expect({ code: r.code, named: r.stderr.includes(message) }).toEqual({ code: 255, named: true });
      expect(readdirSync(path.join(work, 'pg_wal'))).toEqual([]);
    }
    expect((await get('--encryption-key', `k2=${K2_ENV}`, '--encryption-key', `k1=${K1_ENV}`)).code).toBe(0);
    expect(readdirSync(path.join(work, 'pg_wal'))).toEqual([seg]);

    // One byte of the stored segment changed (this test's own repository):
    // refused as a damaged segment, which aborts recovery; nothing at %p.
    rmSync(path.join(work, 'pg_wal', seg));
    const store = await openRepository(tc.repoUrl, tc.endpointEnv ? { endpointEnv: tc.endpointEnv } : {});
    const stored = (await store.get(object))!;
    const tampered = Buffer.from(stored.body);
    tampered[tampered.length - 100] = (tampered[tampered.length - 100] as number) ^ 0x01;
    await store.put(object, tampered, { sha256: stored.info.sha256! });
    (store as { destroy?: () => void }).destroy?.();
    const r = await get('--encryption-key', `k2=${K2_ENV}`, '--encryption-key', `k1=${K1_ENV}`);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(
      new RegExp(
        `cannot restore ${seg}: ${seg}: object ${object.replace(/[.]/g, '\\.')} in \\S+ \\(key id k1\\) fails authentication at chunk \\d+, its last: changed, or cut short`,
      ),
    );
    expect(readdirSync(path.join(work, 'pg_wal'))).toEqual([]);
  });
});
