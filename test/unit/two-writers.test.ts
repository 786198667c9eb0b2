// lifeboat check's two-writers findings (src/catalog/writers.ts): WAL archived
// on a timeline past a newer timeline's branch, and a primary check reaches
// writing a superseded timeline.
import { describe, expect, it } from 'vitest';
import { supersededArchived, twoWriterProblems, type ServerSample } from '../../src/catalog/writers';
import { formatLsn, segmentName } from '../../src/wal/names';

const SEG = 16 * 1024 * 1024;
const seg = (tli: number, n: number) => segmentName(tli, BigInt(n));
const lsn = (n: number, offset: number) => formatLsn(BigInt(n) * BigInt(SEG) + BigInt(offset));
const histories = { '00000002.history': `1\t${lsn(8, 0x60)}\tbefore 2026-12-03 13:00:00+00\n` };
const server = (over: Partial<ServerSample>): ServerSample => ({
  label: 'the primary',
  host: '127.0.0.1',
  port: 5432,
  inRecovery: false,
  failedCount: 0,
  lastFailedWal: null,
  lastFailedTime: null,
  ...over,
});

describe('two writers in one cluster', () => {
  it('finds segments of timeline 1 archived past the branch of timeline 2, not the switch segment nor timeline 2', () => {
    const walFiles = [seg(1, 7), seg(1, 8), seg(1, 9), seg(1, 10), '00000002.history', seg(2, 8), seg(2, 9)];
    expect(supersededArchived({ walFiles, histories })).toEqual([
      { timeline: 1, by: 2, switchLsn: lsn(8, 0x60), first: seg(1, 9), last: seg(1, 10), count: 2 },
    ]);
    const [p, ...rest] = twoWriterProblems({ walFiles, histories, servers: [] });
    expect(rest).toEqual([]);
    expect(p?.message).toBe(
      `two writers: 2 segments ${seg(1, 9)} to ${seg(1, 10)} of timeline 1 were archived past ${lsn(8, 0x60)}, where timeline 2 branched off it: ` +
        'a server went on writing timeline 1 after a recovery promoted timeline 2',
    );
  });

  it('is quiet when every server writes the newest timeline and nothing was archived past a branch', () => {
    const walFiles = [seg(1, 7), seg(1, 8), '00000002.history', seg(2, 8), seg(2, 9)];
    expect(twoWriterProblems({ walFiles, histories, servers: [server({ currentWal: seg(2, 10) })] })).toEqual([]);
  });

  it('reports the old primary still on timeline 1 with its refused WAL, and how to stop it', () => {
    const walFiles = [seg(1, 8), '00000002.history', seg(2, 8)];
    const overlay = {
      cluster: 'bank',
      runbook: 'bank',
      host: '127.0.0.1',
      port: 5544,
      replaced: { host: '127.0.0.1', port: 5432 },
      timeline: 2,
      promotedAt: '2026-12-03T13:00:05Z',
      since: '2026-12-03T13:00:06Z',
      workflowId: 'recover-bank-1',
      runId: 'r1',
    };
    const problems = twoWriterProblems({
      walFiles,
      histories,
      overlay,
      servers: [
        server({ port: 5544, currentWal: seg(2, 9) }),
        server({
          label: 'the old primary',
          currentWal: seg(1, 10),
          failedCount: 3,
          lastFailedWal: seg(1, 9),
          lastFailedTime: '2026-12-03T13:01:00Z',
        }),
      ],
    });
    expect(problems).toEqual([
      {
        kind: 'two-writers',
        message:
          'two writers: the old primary 127.0.0.1:5432 is writing timeline 1, but timeline 2 branched off it (00000002.history); ' +
          `archive-push refuses its WAL: last failed ${seg(1, 9)} at 2026-12-03T13:01:00Z (3 failures)`,
        hints: [
          "the cluster's primary is 127.0.0.1:5544 since recovery recover-bank-1 promoted it at 2026-12-03T13:00:05Z",
          'stop the old primary 127.0.0.1:5432 (pg_ctl stop -D <its data directory>), or, if it must keep running, point its archive_command at another repository or --cluster',
          'PostgreSQL keeps the WAL archive-push refuses in pg_wal and retries it: nothing is lost, but pg_wal grows until that server stops or archives elsewhere',
        ],
      },
    ]);
  });

  it('without an overlay, says the runbook names a server the archive no longer follows', () => {
    const problems = twoWriterProblems({
      walFiles: ['00000002.history', seg(2, 8)],
      histories,
      servers: [server({ currentWal: seg(1, 10) })],
    });
    expect(problems.map((p) => p.message)).toEqual([
      'two writers: the primary 127.0.0.1:5432 is writing timeline 1, but timeline 2 branched off it (00000002.history)',
    ]);
    expect(problems[0]?.hints[0]).toMatch(
      /^the runbook's cluster.primary names a server the archive no longer follows: point cluster.primary at the server on timeline 2/,
    );
  });
});
