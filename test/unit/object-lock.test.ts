// The pure parts of S3 Object Lock and server-side encryption: which keys are
// locked for how long, what a PUT sends, what counts as locked now, and the
// runbook's messages for these settings. The store's side is in
// test/integration/object-lock.test.ts (a real MinIO).
import { describe, expect, it } from 'vitest';
import { checkLocksAndEncryption } from '../../src/catalog/lock-check';
import { lockedBackupReason, lockedWalLine } from '../../src/catalog/locked';
import type { Repository as Store } from '../../src/repository/types';
import {
  lockKindOfKey,
  lockedUntil,
  retentionFor,
  sameKmsKey,
  serverSideOf,
  serverSideParams,
} from '../../src/repository/object-lock';
import { Repository, Runbook } from '../../src/runbook/schema';

const now = new Date('2026-12-03T12:00:00Z');

describe('which objects are locked, and until when', () => {
  it('locks base backup objects for days and WAL objects for walDays, nothing else', () => {
    const setting = { mode: 'compliance' as const, days: 35, walDays: 14 };
    expect(retentionFor(setting, 'orders/base/20261203T000000Z/base.0001.tar.zst', now)).toEqual({
      mode: 'compliance',
      retainUntil: new Date('2027-01-07T12:00:00Z'),
    });
    expect(retentionFor(setting, 'orders/wal/000000010000000000000001.zst', now)).toEqual({
      mode: 'compliance',
      retainUntil: new Date('2026-12-17T12:00:00Z'),
    });
    expect(retentionFor({ mode: 'governance', days: 7 }, 'orders/wal/00000002.history', now)?.retainUntil).toEqual(
      new Date('2026-12-10T12:00:00Z'),
    );
    for (const key of [
      'orders/evidence/r1.json',
      'orders/audit/r1.jsonl',
      'orders/primary.json',
      'orders/base/stray',
    ]) {
      expect(lockKindOfKey(key)).toBeUndefined();
      expect(retentionFor(setting, key, now)).toBeUndefined();
    }
    expect(retentionFor(undefined, 'orders/wal/000000010000000000000001.zst', now)).toBeUndefined();
  });

  it('counts an object as locked while its date is ahead or a legal hold stands', () => {
    const base = { key: 'k', size: 1 };
    expect(
      lockedUntil({ ...base, lock: { mode: 'governance', retainUntil: new Date('2026-12-04T00:00:00Z') } }, now),
    ).toEqual({
      mode: 'governance',
      until: new Date('2026-12-04T00:00:00Z'),
      legalHold: false,
    });
    expect(
      lockedUntil({ ...base, lock: { mode: 'compliance', retainUntil: new Date('2026-12-03T11:59:59Z') } }, now),
    ).toBeUndefined();
    expect(lockedUntil({ ...base, legalHold: true }, now)).toEqual({ legalHold: true });
    expect(lockedUntil(base, now)).toBeUndefined();
  });

  it('says what stays and when it may go, as expire prints it', () => {
    expect(
      lockedBackupReason({ backupId: 'b1', lockedObjects: 4, until: '2026-12-04T21:57:26.097Z', legalHold: false }),
    ).toBe(
      '4 objects locked (S3 Object Lock) until 2026-12-04T21:57:26.097Z; deletable after 2026-12-04T21:57:26.097Z',
    );
    expect(lockedBackupReason({ backupId: 'b1', lockedObjects: 1, legalHold: true })).toBe(
      '1 object locked (S3 Object Lock) under a legal hold; deletable after the legal hold is lifted',
    );
    expect(
      lockedWalLine({
        checked: true,
        backups: [],
        wal: {
          count: 2,
          first: '000000010000000000000001',
          last: '000000010000000000000002',
          earliestUntil: '2026-12-04T00:00:00.000Z',
          latestUntil: '2026-12-05T00:00:00.000Z',
          legalHolds: 0,
        },
      }),
    ).toBe(
      'WAL kept because locked (S3 Object Lock): 2 files, 000000010000000000000001 .. 000000010000000000000002, locked until 2026-12-04T00:00:00.000Z .. 2026-12-05T00:00:00.000Z; deletable after 2026-12-05T00:00:00.000Z',
    );
    expect(lockedWalLine({ checked: true, backups: [] })).toBeUndefined();
  });
});

describe('server-side encryption', () => {
  it('sends AES256 for SSE-S3 and aws:kms with the key for SSE-KMS, and reads them back', () => {
    expect(serverSideParams({ mode: 'SSE-S3' })).toEqual({ ServerSideEncryption: 'AES256' });
    expect(serverSideParams({ mode: 'SSE-KMS', kmsKeyId: 'alias/pg-backups' })).toEqual({
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'alias/pg-backups',
    });
    expect(serverSideParams(undefined)).toEqual({});
    expect(serverSideOf('AES256', undefined)).toEqual({ mode: 'SSE-S3' });
    expect(serverSideOf('aws:kms', 'arn:aws:kms:k')).toEqual({ mode: 'SSE-KMS', kmsKeyId: 'arn:aws:kms:k' });
    expect(serverSideOf(undefined, undefined)).toBeUndefined();
  });

  it('matches a KMS key by id whether the store reports an ARN (AWS) or arn:aws:kms:<name> (MinIO)', () => {
    const id = '1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(sameKmsKey(`arn:aws:kms:us-east-1:111122223333:key/${id}`, id)).toBe(true);
    expect(
      sameKmsKey(`arn:aws:kms:us-east-1:111122223333:key/${id}`, `arn:aws:kms:us-east-1:111122223333:key/${id}`),
    ).toBe(true);
    expect(sameKmsKey('arn:aws:kms:lifeboat-key', 'lifeboat-key')).toBe(true);
    expect(sameKmsKey('arn:aws:kms:other-key', 'lifeboat-key')).toBe(false);
    expect(sameKmsKey(undefined, 'lifeboat-key')).toBe(false);
  });
});

describe('runbook settings', () => {
  const issues = (repository: unknown) => {
    const r = Repository.safeParse(repository);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts both settings on an s3:// repository', () => {
    expect(
      issues({
        url: 's3://pg-backups/orders',
        serverSide: { mode: 'SSE-KMS', kmsKeyId: 'alias/x' },
        objectLock: { mode: 'compliance', days: 35, walDays: 14 },
      }),
    ).toEqual([]);
    expect(issues({ url: 's3://pg-backups/orders', serverSide: { mode: 'SSE-S3' } })).toEqual([]);
  });

  it('names the field and what was expected', () => {
    expect(issues({ url: 's3://pg-backups/orders', serverSide: { mode: 'SSE-C' } })).toEqual([
      'serverSide.mode: expected { mode: SSE-S3 } or { mode: SSE-KMS, kmsKeyId: <key id or ARN> }',
    ]);
    expect(issues({ url: 's3://pg-backups/orders', serverSide: { mode: 'SSE-KMS' } })).toEqual([
      'serverSide.kmsKeyId: expected a KMS key id or ARN',
    ]);
    expect(issues({ url: 's3://pg-backups/orders', objectLock: { mode: 'legal', days: 7 } })).toEqual([
      'objectLock.mode: expected "governance" or "compliance"',
    ]);
    expect(issues({ url: 's3://pg-backups/orders', objectLock: { mode: 'governance', days: 0 } })).toEqual([
      'objectLock.days: expected a whole number of days from 1 to 36500',
    ]);
    expect(issues({ url: 's3://pg-backups/orders', objectLock: { mode: 'governance', days: 7, years: 1 } })).toEqual([
      'objectLock: expected a mapping with mode (governance or compliance) and days (and optionally walDays)',
    ]);
  });

  it('refuses them on a file:// repository', () => {
    const parsed = Runbook.safeParse({
      name: 'f',
      cluster: { primary: { host: '127.0.0.1', database: 'd', user: 'u' } },
      repository: { url: 'file:///var/lib/lifeboat/repo', serverSide: { mode: 'SSE-S3' } },
      restore: { host: 'h', dataDir: '/d', port: 5433 },
      objectives: { rpoSeconds: 300, rtoSeconds: 2700 },
    });
    expect(parsed.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      "repository.serverSide: expected no serverSide on a file:// repository: it is an S3 setting (s3://bucket/prefix); a file system's own encryption and immutability are set up outside Lifeboat",
    ]);
  });
});

describe('lifeboat check names the runbook entry it read the setting from', () => {
  it('says repositories[1].objectLock for the second entry of a list, repository.objectLock for a single one', async () => {
    // A bucket without Object Lock: the finding names the field to change.
    const store = {
      url: 's3://b/orders',
      bucketObjectLock: () => Promise.resolve({ enabled: false }),
      head: () => Promise.resolve(undefined),
    } as unknown as Store;
    const sample = { keys: [], prefix: 'orders/' };
    const second = await checkLocksAndEncryption(
      store,
      { objectLock: { mode: 'governance', days: 7 }, runbookField: 'repositories[1]' },
      sample,
      now,
    );
    expect(second?.problems.map((p) => p.message)).toEqual([
      's3://b/orders: the bucket has no Object Lock configuration, but the runbook sets repositories[1].objectLock (governance, 7 days): nothing in it can be locked, and every write with a lock fails',
    ]);
    const single = await checkLocksAndEncryption(store, { objectLock: { mode: 'governance', days: 7 } }, sample, now);
    expect(single?.problems[0]?.message).toContain('the runbook sets repository.objectLock (governance, 7 days)');
  });
});
