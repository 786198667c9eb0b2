// How archiver health is judged from a pg_stat_archiver sample (the query
// itself is exercised against a real primary in test/integration/check.test.ts).
import { describe, expect, it } from 'vitest';
import { assessArchiver, type ArchiverSample } from '../../src/catalog/archiver';

const base: ArchiverSample = {
  archivedCount: 10,
  lastArchivedWal: '00000001000000000000000A',
  lastArchivedTime: '2026-11-21T10:00:00Z',
  failedCount: 0,
  lastFailedWal: null,
  lastFailedTime: null,
  statsReset: null,
  archivedAgeSeconds: 30,
  watchedSeconds: 3600,
  inRecovery: false,
  archiveMode: 'on',
  archiveTimeoutSeconds: 60,
  walSegmentSize: 16 * 1024 * 1024,
  currentLsn: '0/B000100',
  currentWal: '00000001000000000000000B',
  readyFiles: 0,
};

describe('assessArchiver', () => {
  it('calls an archiver healthy when the last segment is younger than the RPO', () => {
    const s = assessArchiver(base, 300);
    expect(s.stale).toBe(false);
    expect(s.failing).toBe(false);
    expect(s.problems).toEqual([]);
  });

  it('does not call a quiet primary stale when everything it wrote is archived', () => {
    const s = assessArchiver({ ...base, archivedAgeSeconds: 5000, currentLsn: '0/B000000' }, 300);
    expect(s.unarchivedBytes).toBe(0);
    expect(s.stale).toBe(false);
  });

  it('calls the archiver stale when unarchived WAL is older than the RPO, and says where it waits', () => {
    const s = assessArchiver({ ...base, archivedAgeSeconds: 612, readyFiles: 3, archiveTimeoutSeconds: 0 }, 300);
    expect(s.stale).toBe(true);
    const problem = s.problems.find((p) => p.kind === 'archiver-stale');
    expect(problem?.message).toBe('archiver stale: last segment archived 612 s ago, RPO is 300 s');
    expect(problem?.hints).toContain('3 finished WAL files are waiting in pg_wal/archive_status');
    expect(problem?.hints.join('\n')).toContain('archive_timeout is off');
  });

  it('calls the archiver failing when the last failure is newer than the last success', () => {
    const s = assessArchiver(
      { ...base, failedCount: 3, lastFailedWal: '00000001000000000000000B', lastFailedTime: '2026-11-21T10:05:00Z' },
      300,
    );
    expect(s.failing).toBe(true);
    expect(s.problems[0]?.message).toBe(
      'archiver failing: 3 failures, last 00000001000000000000000B at 2026-11-21T10:05:00Z',
    );
  });

  it('does not call old failures failing once a later segment was archived', () => {
    const s = assessArchiver(
      { ...base, failedCount: 2, lastFailedWal: '000000010000000000000005', lastFailedTime: '2026-11-21T09:00:00Z' },
      300,
    );
    expect(s.failing).toBe(false);
  });

  it('calls a failure in the same second as the last success failing when the database says it came after (the shown times are to the second)', () => {
    const sameSecond = {
      ...base,
      failedCount: 1,
      lastFailedWal: '00000001000000000000000B',
      lastFailedTime: base.lastArchivedTime,
    };
    expect(assessArchiver({ ...sameSecond, failedSinceArchived: true }, 300).failing).toBe(true);
    expect(assessArchiver({ ...sameSecond, failedSinceArchived: false }, 300).failing).toBe(false);
  });

  it('reports archiving switched off', () => {
    const s = assessArchiver({ ...base, archiveMode: 'off' }, 300);
    expect(s.problems.map((p) => p.kind)).toContain('archiving-off');
  });
});
