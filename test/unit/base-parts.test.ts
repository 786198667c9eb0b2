// How a data directory is cut into parts (src/backup/parts.ts) and which
// backup.json file lists a restore accepts (src/catalog/backup-meta.ts),
// and the runbook's restore.parallel.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inParallel, planParts, type DataDirEntry } from '../../src/backup/parts';
import { BackupMeta, baseLayout, partName, type StoredFile } from '../../src/catalog/backup-meta';
import { validateRunbookText } from '../../src/runbook/load';

const MiB = 1024 * 1024;
const dir = (name: string): DataDirEntry => ({ name, kind: 'dir', size: 0 });
const file = (name: string, mib: number): DataDirEntry => ({ name, kind: 'file', size: mib * MiB });

describe('planParts', () => {
  it('puts every directory and symlink in part 0 and the files, in path order, into parts of at most the target, a bigger file alone', () => {
    const entries: DataDirEntry[] = [
      dir('.'),
      dir('./base'),
      dir('./base/5'),
      file('./base/5/16384', 40),
      file('./base/5/16384_fsm', 1),
      file('./base/5/16385', 200),
      file('./PG_VERSION', 0),
      { name: './pg_tblspc/16390', kind: 'other', size: 0 },
      dir('./pg_wal'),
      file('./pg_wal/000000010000000000000002', 16),
      file('./global/pg_control', 0),
    ];
    expect(planParts(entries, 64 * MiB)).toEqual([
      ['.', './base', './base/5', './pg_tblspc/16390', './pg_wal'],
      ['./PG_VERSION', './base/5/16384', './base/5/16384_fsm'],
      ['./base/5/16385'],
      ['./global/pg_control', './pg_wal/000000010000000000000002'],
    ]);
  });

  it('gives a data directory of directories only one part', () => {
    expect(planParts([dir('.'), dir('./base')])).toEqual([['.', './base']]);
  });
});

describe('inParallel', () => {
  it('runs at most n at a time, starts nothing after the first failure, waits for the running ones and throws that failure', async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const finished: number[] = [];
    const gates = new Map<number, () => void>();
    const run = inParallel([1, 2, 3, 4, 5], 2, async (i) => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await new Promise<void>((res) => gates.set(i, res));
      running--;
      finished.push(i);
      if (i === 2) throw new Error('part 2 failed');
    });
    const settle = async () => {
      for (let k = 0; k < 5; k++) await Promise.resolve();
    };
    await settle();
    expect(started).toEqual([1, 2]);
    gates.get(2)!();
    await settle();
    expect(started).toEqual([1, 2]);
    gates.get(1)!();
    await expect(run).rejects.toThrow('part 2 failed');
    expect(finished).toEqual([2, 1]);
    expect(most).toBe(2);
  });
});

const sha = (c: string) => c.repeat(64);
const part = (i: number): StoredFile => ({
  name: partName(i),
  storedSize: 10,
  size: 20,
  sha256: sha('a'),
  storedSha256: sha('b'),
  compression: 'zstd',
});
const manifest: StoredFile = { name: 'backup_manifest', storedSize: 5, size: 5, sha256: sha('c'), compression: 'none' };
const meta = (version: number, files: StoredFile[]) => ({
  version,
  backupId: '20261203T120000Z',
  cluster: 'orders',
  pgVersion: '15.8',
  systemIdentifier: '7000000000000000000',
  type: 'full',
  tool: 'pg_basebackup',
  toolVersion: 'pg_basebackup (PostgreSQL) 15.8',
  startTime: '2026-12-03T12:00:00.000Z',
  endTime: '2026-12-03T12:00:05.000Z',
  startLsn: '0/2000028',
  endLsn: '0/2000100',
  timeline: 1,
  startWal: '000000010000000000000002',
  endWal: '000000010000000000000002',
  walSegmentSize: 16777216,
  sizeBytes: 60,
  storedBytes: 35,
  files,
  manifestSha256: sha('c'),
  verifiedAt: '2026-12-03T12:00:06.000Z',
  verifiedBy: 'pg_verifybackup',
  label: 'lifeboat orders 20261203T120000Z',
});
const problem = (m: ReturnType<typeof meta>) => {
  const r = BackupMeta.safeParse(m);
  return r.success ? undefined : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
};

describe('backup.json layouts', () => {
  it('reads version 2 as part 0 (the directories) and the file parts in order, whatever order backup.json lists them in', () => {
    const m = meta(2, [part(2), part(0), part(1), manifest]);
    expect(problem(m)).toBeUndefined();
    expect(baseLayout(m)).toEqual({ kind: 'parts', dirs: part(0), files: [part(1), part(2)] });
  });

  it('reads version 1 as its single base.tar.zst', () => {
    const archive: StoredFile = {
      name: 'base.tar.zst',
      storedSize: 30,
      size: 60,
      sha256: sha('d'),
      compression: 'zstd',
    };
    const m = meta(1, [archive, manifest]);
    expect(problem(m)).toBeUndefined();
    expect(baseLayout(m)).toEqual({ kind: 'single', archive });
  });

  it('refuses (the catalog then lists the backup as incomplete) a gap in the parts, a part without storedSha256, no part at all, and a version 1 without its archive', () => {
    expect(problem(meta(2, [part(0), part(2), manifest]))).toBe(
      'files: base.0001.tar.zst is missing from the list of parts',
    );
    const { storedSha256: _, ...unhashed } = part(1);
    expect(problem(meta(2, [part(0), unhashed, manifest]))).toBe('files: base.0001.tar.zst has no storedSha256');
    expect(problem(meta(2, [manifest]))).toBe('files: version 2 lists no base.0000.tar.zst');
    expect(problem(meta(1, [part(0), manifest]))).toBe('files: version 1 lists no base.tar.zst');
    expect(problem(meta(3, [part(0), manifest]))).toMatch(/^version: /);
  });
});

describe('restore.parallel in a runbook', () => {
  const EXAMPLE = readFileSync(path.resolve(__dirname, '../../runbooks/orders.example.yaml'), 'utf8');
  const withParallel = (v: string) => {
    const text = EXAMPLE.replace(
      'port: 5433, mode: side-by-side }',
      `port: 5433, mode: side-by-side, parallel: ${v} }`,
    );
    if (text === EXAMPLE) throw new Error('the example runbook no longer has its restore line');
    return validateRunbookText(text, 'orders.yaml');
  };

  it('is absent by default (one extractor per core) and takes a whole number from 1 to 64', () => {
    const plain = validateRunbookText(EXAMPLE, 'orders.yaml');
    expect(plain.ok && plain.runbook.restore.parallel).toBeUndefined();
    const three = withParallel('3');
    expect(three.ok && three.runbook.restore.parallel).toBe(3);
    for (const bad of ['0', '65', '1.5', 'many']) {
      const r = withParallel(bad);
      expect(r.ok ? [] : r.errors).toEqual([
        expect.stringMatching(
          /^orders\.yaml:\d+: restore\.parallel: expected a whole number of extractors from 1 to 64/,
        ) as string,
      ]);
    }
  });
});
