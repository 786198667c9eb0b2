// archive-push refuses WAL of a timeline that a newer archived timeline
// branched off (src/wal/superseded.ts): the rule, and pushWalFile against a
// real file:// repository.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLifeboatError, type LifeboatError } from '../../src/errors';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { writePrimaryOverlay } from '../../src/catalog/primary';
import { formatLsn, segmentName } from '../../src/wal/names';
import { pushWalFile } from '../../src/wal/push';
import { supersededBy, TimelineWatch, type ArchivedHistory } from '../../src/wal/superseded';

const SEG = 16 * 1024 * 1024;
const seg = (tli: number, n: number) => segmentName(tli, BigInt(n));
const lsn = (n: number, offset: number) => formatLsn(BigInt(n) * BigInt(SEG) + BigInt(offset));
const history = (timeline: number, lines: string[]): ArchivedHistory => ({ timeline, text: `${lines.join('\n')}\n` });

describe('which WAL a newer timeline supersedes', () => {
  // Timeline 2 branched off 1 inside segment 8; timeline 3 off 2 inside segment 12.
  const h2 = history(2, [`1\t${lsn(8, 0x60)}\tbefore 2026-12-03 13:00:00+00`]);
  const h3 = history(3, [
    `1\t${lsn(8, 0x60)}\tbefore 2026-12-03 13:00:00+00`,
    `2\t${lsn(12, 0x1000)}\tat restore point "x"`,
  ]);

  it('accepts segments before the switch point and the segment holding it, refuses the next one and everything after', () => {
    expect(supersededBy(seg(1, 7), [h2])).toBeUndefined();
    expect(supersededBy(seg(1, 8), [h2])).toBeUndefined();
    expect(supersededBy(seg(1, 9), [h2])).toEqual({
      walFile: seg(1, 9),
      timeline: 1,
      startLsn: lsn(9, 0),
      by: 2,
      switchLsn: lsn(8, 0x60),
      historyFile: '00000002.history',
      reason: 'before 2026-12-03 13:00:00+00',
    });
    expect(supersededBy(seg(1, 40), [h2])?.by).toBe(2);
  });

  it('refuses the segment that starts exactly at a switch point on a segment boundary (its bytes are all after the branch)', () => {
    const atBoundary = history(2, [`1\t${lsn(9, 0)}\tno recovery target specified`]);
    expect(supersededBy(seg(1, 8), [atBoundary])).toBeUndefined();
    expect(supersededBy(seg(1, 9), [atBoundary])?.switchLsn).toBe(lsn(9, 0));
  });

  it('follows several timelines: each is refused past the branch of the one that replaced it, the newest never', () => {
    const all = [h3, h2]; // any order
    expect(supersededBy(seg(1, 9), all)?.by).toBe(2); // the oldest timeline that replaced it is named
    expect(supersededBy(seg(2, 11), all)).toBeUndefined();
    expect(supersededBy(seg(2, 12), all)).toBeUndefined();
    expect(supersededBy(seg(2, 13), all)).toMatchObject({ timeline: 2, by: 3, switchLsn: lsn(12, 0x1000) });
    expect(supersededBy(seg(3, 13), all)).toBeUndefined();
    expect(supersededBy(seg(3, 500), all)).toBeUndefined();
  });

  it('leaves a timeline alone that a newer one did not branch off', () => {
    // Timeline 3 went back to timeline 1 (a second recovery to a point before timeline 2 began).
    const h3off1 = history(3, [`1\t${lsn(5, 0x28)}\tbefore 2026-12-03 12:00:00+00`]);
    expect(supersededBy(seg(2, 20), [h2, h3off1])).toBeUndefined();
    expect(supersededBy(seg(1, 6), [h2, h3off1])?.by).toBe(3);
  });

  it('applies to .partial and .backup files by their start, never to history files; an unreadable history is left out', () => {
    expect(supersededBy(`${seg(1, 9)}.partial`, [h2])?.by).toBe(2);
    expect(supersededBy(`${seg(1, 8)}.partial`, [h2])).toBeUndefined();
    // A backup that started on timeline 1 in segment 8 after the branch (offset 0x100 > 0x60).
    expect(supersededBy(`${seg(1, 8)}.00000100.backup`, [h2])?.startLsn).toBe(lsn(8, 0x100));
    expect(supersededBy(`${seg(1, 8)}.00000028.backup`, [h2])).toBeUndefined();
    expect(supersededBy('00000002.history', [h3])).toBeUndefined();
    expect(supersededBy(seg(1, 9), [history(2, ['1\tnot-an-lsn\tbroken'])])).toBeUndefined();
  });
});

describe('archive-push of a superseded timeline (file:// repository)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-superseded-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const repoDir = path.join(dir, 'repo');
  const pgWal = path.join(dir, 'pg_wal');
  mkdirSync(repoDir);
  mkdirSync(pgWal);
  const walFile = (name: string, fill: number) => {
    const f = path.join(pgWal, name);
    writeFileSync(f, Buffer.alloc(SEG, fill));
    return f;
  };
  const refusal = async (p: Promise<unknown>): Promise<LifeboatError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!isLifeboatError(err)) throw new Error(`expected a LifeboatError, got ${String(err)}`);
    return err;
  };

  it('refuses the old timeline past the branch once the history is archived, keeps accepting before it, and names the new primary', async () => {
    const repo = await openRepository(`file://${repoDir}`);
    const cluster = 'bank';
    const watch = new TimelineWatch(repo, cluster);
    // Before any newer timeline exists, the old primary's segment 9 is archived.
    expect((await pushWalFile(repo, cluster, walFile(seg(1, 9), 1), watch)).result).toBe('stored');
    // A recovery promoted timeline 2, branching inside segment 8; its history file arrives.
    const h2 = path.join(pgWal, '00000002.history');
    writeFileSync(h2, `1\t${lsn(8, 0x60)}\tbefore 2026-12-03 13:00:00+00\n`);
    expect((await pushWalFile(repo, cluster, h2, watch)).result).toBe('stored');
    await writePrimaryOverlay(repo, {
      cluster,
      runbook: 'bank',
      host: '127.0.0.1',
      port: 5544,
      replaced: { host: '127.0.0.1', port: 5432 },
      timeline: 2,
      promotedAt: '2026-12-03T13:00:05.000Z',
      since: '2026-12-03T13:00:06.000Z',
      workflowId: 'recover-bank-1',
      runId: 'r1',
    });

    // The same watch (as the read-ahead pusher keeps it) sees the new timeline at the next push.
    const err = await refusal(pushWalFile(repo, cluster, walFile(seg(1, 10), 2), watch));
    expect(err.code).toBe('TIMELINE_SUPERSEDED');
    expect(err.what).toMatch(
      new RegExp(
        `^refused to archive ${seg(1, 10)} \\(timeline 1, from ${lsn(10, 0).replace('/', '\\/')}\\) into file://${repoDir} \\(cluster bank\\): ` +
          `timeline 2 branched off timeline 1 at ${lsn(8, 0x60).replace('/', '\\/')} \\(before 2026-12-03 13:00:00\\+00\\) \\(00000002\\.history, archived \\d{4}-.*Z\\), ` +
          'so timeline 1 past that point is WAL no restore of this cluster reads$',
      ),
    );
    expect(err.hints).toEqual([
      "the cluster's primary is now 127.0.0.1:5544 (timeline 2), promoted by recovery recover-bank-1 at 2026-12-03T13:00:05.000Z",
      'this server is no longer the primary of cluster bank: stop it (pg_ctl stop -D <its data directory>), or, if it must keep running, point its archive_command at another repository or --cluster',
      'nothing is lost: PostgreSQL keeps the file in pg_wal and retries it (pg_wal grows until this server stops or archives elsewhere)',
      'lifeboat check reports it as two writers; a backup of this server cannot be continued from the archive',
    ]);
    expect(await repo.head(keys.wal(cluster, seg(1, 10)))).toBeUndefined();

    // A fresh process (no watch) refuses it too; the segment holding the switch point is still accepted.
    expect((await refusal(pushWalFile(repo, cluster, path.join(pgWal, seg(1, 10))))).code).toBe('TIMELINE_SUPERSEDED');
    expect((await pushWalFile(repo, cluster, walFile(seg(1, 8), 3))).result).toBe('stored');
    // Segment 9, archived before timeline 2 appeared and retried by PostgreSQL: already archived, not refused.
    expect((await pushWalFile(repo, cluster, path.join(pgWal, seg(1, 9)))).result).toBe('already-archived');
    // The new primary's WAL goes on being archived.
    expect((await pushWalFile(repo, cluster, walFile(seg(2, 8), 4), watch)).result).toBe('stored');
    expect((await pushWalFile(repo, cluster, walFile(seg(2, 9), 5), watch)).result).toBe('stored');
  });
});

describe('archive-push when the history probe fails', () => {
  it('archives the file anyway: a probe the repository refuses (403 without s3:ListBucket) must not stop archiving', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-superseded-probe-'));
    try {
      mkdirSync(path.join(dir, 'repo'));
      const real = await openRepository(`file://${path.join(dir, 'repo')}`);
      // The real repository, except that reading a history file is refused, as S3 refuses GET of a missing key without ListBucket.
      const refusing = Object.assign(Object.create(real) as typeof real, {
        get: async (key: string) => {
          if (key.endsWith('.history')) throw new Error(`GET ${key}: 403 AccessDenied`);
          return real.get(key);
        },
      });
      const file = path.join(dir, seg(1, 3));
      writeFileSync(file, Buffer.alloc(SEG, 7));
      expect((await pushWalFile(refusing, 'bank', file)).result).toBe('stored');
      expect(await real.head(keys.wal('bank', seg(1, 3)))).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
