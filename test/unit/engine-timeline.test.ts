// engine-timeline.ts: whether a backup can follow the stanza's newest timeline.
import { describe, expect, it } from 'vitest';
import { timelineUnreachableError, unreachableLatest } from '../../src/restore/engine-timeline';

const h2 = '1\t0/6000100\tafter restore point "p1"\n';
const h3 = '1\t0/6000100\tafter restore point "p1"\n2\t0/9000000\tno recovery target specified\n';

describe('unreachableLatest', () => {
  it('passes a backup on the newest timeline, or with no history at all', () => {
    expect(unreachableLatest({ backupId: 'b', timeline: 1, startLsn: '0/9000028' }, {})).toBeUndefined();
    expect(
      unreachableLatest({ backupId: 'b', timeline: 2, startLsn: '0/9000028' }, { '00000002.history': h2 }),
    ).toBeUndefined();
  });

  it('passes a backup taken on an ancestor before the fork', () => {
    expect(
      unreachableLatest({ backupId: 'b', timeline: 1, startLsn: '0/5000028' }, { '00000002.history': h2 }),
    ).toBeUndefined();
    expect(
      unreachableLatest(
        { backupId: 'b', timeline: 2, startLsn: '0/8000028' },
        { '00000002.history': h2, '00000003.history': h3 },
      ),
    ).toBeUndefined();
  });

  it('refuses a backup taken on the old timeline after the fork, saying where it forked', () => {
    const b = { backupId: '20261204-124500F', timeline: 1, startLsn: '0/7000028' };
    const found = unreachableLatest(b, { '00000002.history': h2 });
    expect(found).toEqual({ latest: 2, forkLsn: '0/6000100' });
    const err = timelineUnreachableError(b, found!, 'pgbackrest --stanza=main');
    expect(err.code).toBe('TARGET_UNREACHABLE');
    expect(err.what).toBe(
      "backup 20261204-124500F (timeline 1) cannot reach the stanza's newest timeline 2: timeline 2 forked from timeline 1 at 0/6000100, before the backup started (0/7000028)",
    );
    expect(err.hints[2]).toContain('pgbackrest --stanza=main restore --set=20261204-124500F --target-timeline=current');
  });

  it('refuses a backup whose timeline is not an ancestor of the newest', () => {
    const h4 = '1\t0/6000100\tforked from 1\n';
    expect(
      unreachableLatest(
        { backupId: 'b', timeline: 3, startLsn: '0/A000028' },
        { '00000003.history': h3, '00000004.history': h4 },
      ),
    ).toEqual({ latest: 4 });
  });
});
