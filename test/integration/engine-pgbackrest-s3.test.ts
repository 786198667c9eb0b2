// The pgBackRest engine on an S3 repository (issue 18): a real pgBackRest
// 2.45 stanza with repo1-type=s3 on a MinIO of this file's own serving HTTPS
// with a test CA made at test time (test/harness/minio-tls.ts), the CA as
// repo1-storage-ca-file, verification on. stanza-create, archive-push,
// backup, info (the engine's list and archive range), and a restore to a
// named restore point that pauses there with exactly the rows written before
// it, its WAL fetched from S3 by the restore_command pgBackRest wrote. The S3
// keys: in pgBackRest's configuration file, or in the worker's
// PGBACKREST_REPO1_S3_KEY* variables, which reach pgbackrest run as the
// postgres OS user (a restore is refused then: its copy's restore_command,
// run by a postmaster that gets no secret, would fetch no WAL). A wrong CA,
// no keys and a wrong key are refused with mapped errors that name the
// cause, write nothing, and quote no key; so is (by pgBackRest 2.45) a
// certificate naming 127.0.0.1 only as an IP address.
import { existsSync, readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import * as path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import type { EngineBackup } from '../../src/engine/types';
import { isLifeboatError, type LifeboatError } from '../../src/errors';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTlsMinio, type TlsMinio } from '../harness/minio-tls';
import { S3_KEY_LINE, startPgBackRestS3Primary, type PgBackRestS3Stanza } from '../harness/pgbackrest-s3';
import { startCopy } from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';
import { freePort } from '../harness/ports';

let minio: TlsMinio;
let s: PgBackRestS3Stanza;
let engine: PgBackRestEngine;
let full: EngineBackup;
/** The newest segment archived before the checks below. */
let lastArchived: string;
const cleanups: Cleanups = [];

beforeAll(async () => {
  minio = await startTlsMinio('engine');
  cleanups.push(() => minio.stop());
  s = await startPgBackRestS3Primary(minio);
  cleanups.push(() => s.stop());
  engine = new PgBackRestEngine(s.setting, { osUser: 'postgres' });
  const pg = s.primary;
  await pg.query('create table t (id int primary key, v text)');
  await pg.query(`insert into t select g, 'before full' from generate_series(1, 100) g`);
  full = await engine.takeBackup({ type: 'full' });
  await pg.query(`insert into t select g, 'after full' from generate_series(101, 150) g`);
  await pg.query(`select pg_create_restore_point('s3-before-damage')`);
  await pg.query(`update t set v = 'damaged'`);
  await pg.query(`insert into t values (9999, 'after the restore point')`);
  lastArchived = await switchAndWaitArchived(pg);
});

afterAll(() => runCleanups(cleanups));

/** Everything an error carries, as text: no key may be in it. */
function allOf(err: LifeboatError): string {
  return JSON.stringify({ what: err.what, message: err.message, hints: err.hints, details: err.details });
}

async function refusal(p: Promise<unknown>): Promise<LifeboatError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isLifeboatError(err)) throw new Error(`expected a LifeboatError, got ${String(err)}`);
  return err;
}

/** The object names under the stanza's prefix in the bucket, read over TLS with the test CA. */
async function objectsInBucket(): Promise<string[]> {
  const agent = new Agent({ ca: readFileSync(minio.ca.caFile) });
  const s3 = new S3Client({
    endpoint: minio.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
    requestHandler: { httpsAgent: agent },
  });
  try {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({
          Bucket: minio.bucket,
          Prefix: `${s.repoPrefix.slice(1)}/`,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      names.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    return names.sort();
  } finally {
    s3.destroy();
    agent.destroy();
  }
}

describe('pgBackRest engine on S3 (MinIO over TLS, test CA)', () => {
  it('lists the backup and the archive range that pgbackrest info gives, all of it stored in the bucket', async () => {
    const listed = await engine.listBackups();
    expect(listed.map((b) => [b.backupId, b.type])).toEqual([[full.backupId, 'full']]);
    const raw = JSON.parse(await s.run(['info', '--output=json'])) as Array<{
      archive: Array<{ id: string; min: string; max: string }>;
      repo: Array<{ key: number; status: { code: number } }>;
    }>;
    expect(raw[0]!.repo).toEqual([expect.objectContaining({ key: 1, status: expect.objectContaining({ code: 0 }) })]);
    const [archive] = raw[0]!.archive;
    const report = await engine.readArchive();
    expect(report.gaps).toEqual([]);
    expect(report.problems).toEqual([]);
    expect(report.notes).toEqual([]);
    expect(report.timelines).toEqual([
      { timeline: 1, first: archive!.min, last: archive!.max, segmentCount: expect.any(Number) as number },
    ]);
    expect(archive!.max >= lastArchived).toBe(true);
    expect(full.startWal >= archive!.min && full.endWal <= archive!.max).toBe(true);
    // Where it all is: the S3 bucket, under the stanza's prefix (the backup's manifest and the segments themselves).
    const objects = await objectsInBucket();
    const prefix = `${s.repoPrefix.slice(1)}/`;
    expect(objects).toContain(`${prefix}backup/${s.stanza}/${full.backupId}/backup.manifest`);
    expect(
      objects.some((o) =>
        o.startsWith(`${prefix}archive/${s.stanza}/15-1/${lastArchived.slice(0, 16)}/${lastArchived}-`),
      ),
    ).toBe(true);
  });

  it('restores the backup into a directory to a named restore point, paused there with exactly its rows, WAL from S3', async () => {
    const choice = engine.chooseBackup(await engine.listBackups(), { name: 's3-before-damage' });
    expect(choice.backupId).toBe(full.backupId);
    const dataDir = path.join(s.root, 'copy');
    const port = await freePort();
    const result = await engine.restore({
      backupId: choice.backupId,
      dataDir,
      target: { name: 's3-before-damage' },
      settings: [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${s.root}'`],
    });
    expect(result.recoverySettings).toBe('written');
    const autoConf = readFileSync(path.join(dataDir, 'postgresql.auto.conf'), 'utf8');
    // pgBackRest's restore_command names the configuration file, which holds the keys: none in the copy's settings.
    expect(autoConf).toMatch(
      new RegExp(
        `^restore_command = 'pgbackrest --config=${s.config} .*--stanza=${s.stanza} archive-get %f "%p"'$`,
        'm',
      ),
    );
    expect(autoConf).not.toContain(minio.secretKey);
    expect(autoConf).not.toContain(minio.accessKey);
    const copy = await startCopy(cleanups, dataDir, port, path.join(s.root, 'copy.log'));
    await copy.paused();
    const rows = await copy.query<{ n: string; damaged: string; after: string; max: number }>(
      `select count(*)::text as n, count(*) filter (where v = 'damaged')::text as damaged,
              count(*) filter (where id = 9999)::text as after, max(id) as max from t`,
    );
    expect(rows[0]).toEqual({ n: '150', damaged: '0', after: '0', max: 150 });
    // Replay crossed segments written after the backup: fetched from the bucket by archive-get.
    expect(readFileSync(path.join(s.root, 'copy.log'), 'utf8')).toMatch(
      /restored log file "[0-9A-F]{24}" from archive/,
    );
    await copy.stop();
  });

  it("takes the S3 keys from the worker's PGBACKREST_REPO1_S3_KEY* variables when the configuration has none", async () => {
    const noKeys = s.variant('no-keys', (lines) => lines.filter((l) => !S3_KEY_LINE.test(l)));
    expect(readFileSync(noKeys, 'utf8')).not.toContain(minio.secretKey);
    const keyless = new PgBackRestEngine({ ...s.setting, configPath: noKeys }, { osUser: 'postgres' });
    const missing = await refusal(keyless.listBackups());
    expect([missing.code, missing.what]).toEqual([
      'SECRET_MISSING',
      'pgbackrest info failed: no repo1-s3-key for the repository',
    ]);
    expect(missing.hints[0]).toBe('pgBackRest error [037]: info command requires option: repo1-s3-key');
    expect(missing.hints[1]).toContain('PGBACKREST_REPO1_S3_KEY in its environment');
    process.env.PGBACKREST_REPO1_S3_KEY = minio.accessKey;
    process.env.PGBACKREST_REPO1_S3_KEY_SECRET = minio.secretKey;
    try {
      expect((await keyless.listBackups()).map((b) => b.backupId)).toEqual([full.backupId]);
      // A restore would succeed, then its copy's restore_command (run by a postmaster, which gets no secret) fetch no WAL.
      const dataDir = path.join(s.root, 'keys-only-in-env');
      const restore = await refusal(keyless.restore({ backupId: full.backupId, dataDir, target: { latest: true } }));
      expect([restore.code, restore.what]).toEqual([
        'SECRET_MISSING',
        `pgBackRest stanza ${s.stanza} is readable only with the worker's PGBACKREST_REPO1_S3_KEY, PGBACKREST_REPO1_S3_KEY_SECRET: the restored copy's restore_command (pgbackrest archive-get, run by its postmaster) would not have them`,
      ]);
      expect(restore.hints).toContain('without them: pgbackrest info failed: no repo1-s3-key for the repository');
      expect(existsSync(dataDir)).toBe(false);
      expect(allOf(restore)).not.toContain(minio.secretKey);
      // A key the store does not know: refused by the store, named so, the key quoted nowhere.
      process.env.PGBACKREST_REPO1_S3_KEY_SECRET = `${minio.secretKey}-wrong`;
      const refused = await refusal(keyless.listBackups());
      expect([refused.code, refused.what]).toEqual([
        'REPOSITORY_UNREACHABLE',
        "pgbackrest info failed: the S3 store refused pgBackRest's request (HTTP 403 SignatureDoesNotMatch)",
      ]);
      expect(allOf(refused)).not.toContain(minio.secretKey);
      expect(allOf(refused)).toContain('authorization: <redacted>');
    } finally {
      delete process.env.PGBACKREST_REPO1_S3_KEY;
      delete process.env.PGBACKREST_REPO1_S3_KEY_SECRET;
    }
    expect(allOf(missing)).not.toContain(minio.secretKey);
  });

  it('refuses a CA that did not sign the endpoint certificate: a mapped error naming TLS, nothing written', async () => {
    // io-timeout: pgBackRest retries a refused handshake until it runs out (60 s by default), then says why.
    const wrongCa = s.variant('wrong-ca', (lines) =>
      lines.flatMap((l) =>
        l === '[global]'
          ? [l, 'io-timeout=1']
          : l.startsWith('repo1-storage-ca-file=')
            ? [`repo1-storage-ca-file=${minio.ca.otherCaFile}`]
            : [l],
      ),
    );
    expect(readFileSync(wrongCa, 'utf8')).not.toMatch(/verify-tls/);
    const untrusting = new PgBackRestEngine({ ...s.setting, configPath: wrongCa }, { osUser: 'postgres' });
    const before = await objectsInBucket();

    const listed = await refusal(untrusting.listBackups());
    expect(listed.code).toBe('REPOSITORY_UNREACHABLE');
    expect(listed.what).toBe(
      `pgbackrest info failed: the repository's TLS certificate was refused: unable to verify certificate presented by '127.0.0.1:${minio.port}': [20] unable to get local issuer certificate`,
    );
    expect(listed.hints[0]).toMatch(/^pgBackRest error \[095\]: unable to verify certificate/);
    expect(listed.hints[1]).toMatch(
      /^pgBackRest verifies the S3 endpoint's TLS certificate against repoN-storage-ca-file/,
    );

    const dataDir = path.join(s.root, 'never-restored');
    const restore = await refusal(untrusting.restore({ backupId: full.backupId, dataDir, target: { latest: true } }));
    expect([restore.code, restore.what]).toEqual([listed.code, listed.what]);
    expect(existsSync(dataDir)).toBe(false);

    const backup = await refusal(untrusting.takeBackup({ type: 'full' }));
    expect(backup.code).toBe('REPOSITORY_UNREACHABLE');
    expect(backup.what).toContain("the repository's TLS certificate was refused");
    for (const err of [listed, restore, backup]) expect(allOf(err)).not.toContain(minio.secretKey);

    // lifeboat check: pgBackRest's check and the archive's listing refused the same way; its verify (which exits 0) says only "status: error".
    const check = await untrusting.check();
    expect(check.ok).toBe(false);
    expect(check.problems.map((p) => [p.kind, p.message])).toEqual([
      [
        'pgbackrest-check',
        expect.stringContaining("pgbackrest check failed: the repository's TLS certificate was refused"),
      ],
      ['pgbackrest-verify', 'pgbackrest verify: stanza status: error'],
      ['pgbackrest-archive', listed.what],
    ]);

    // Nothing reached the bucket: the same objects, and the trusted engine lists the same backups.
    expect(await objectsInBucket()).toEqual(before);
    expect((await engine.listBackups()).map((b) => b.backupId)).toEqual([full.backupId]);
  });

  it("refuses, as pgBackRest 2.45 does, a certificate that names the endpoint's IP address only as an IP address", async () => {
    // The reason ./minio-tls.ts names 127.0.0.1 as a DNS name too: here a MinIO whose certificate does not.
    const ipOnly = await startTlsMinio('ip-only', { ipOnly: true });
    cleanups.push(() => ipOnly.stop());
    const config = s.variant('ip-only', (lines) =>
      lines.flatMap((l) =>
        l === '[global]'
          ? [l, 'io-timeout=1']
          : l.startsWith('repo1-storage-ca-file=')
            ? [`repo1-storage-ca-file=${ipOnly.ca.caFile}`]
            : l.startsWith('repo1-storage-port=')
              ? [`repo1-storage-port=${ipOnly.port}`]
              : [l],
      ),
    );
    const err = await refusal(
      new PgBackRestEngine({ ...s.setting, configPath: config }, { osUser: 'postgres' }).listBackups(),
    );
    expect([err.code, err.what]).toEqual([
      'REPOSITORY_UNREACHABLE',
      "pgbackrest info failed: the repository's TLS certificate was refused: unable to find hostname '127.0.0.1' in certificate common name or subject alternative names",
    ]);
    expect(err.hints).toContain(
      "pgBackRest 2.45 matches repoN-s3-endpoint against the certificate's DNS names and common name only, not its IP addresses: a certificate for an IP endpoint must also carry it as a DNS name (subjectAltName DNS:<ip>)",
    );
  });
});
