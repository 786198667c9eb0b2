// The words beside a restore's and a replay's heartbeat numbers (what the
// Temporal UI's Pending Activities shows).
import { expect, it } from 'vitest';
import { replayText, restoreText } from '../../src/recovery/progress-text';

it('says how far a download is, in bytes and percent', () => {
  expect(restoreText({ phase: 'downloading', bytes: 48 * 1048576, totalBytes: 64 * 1048576 })).toBe(
    'downloading the base backup: 48.0 MiB of 64.0 MiB (75 %)',
  );
  expect(restoreText({ phase: 'preparing', bytes: 0, totalBytes: 0 })).toBe('preparing the data directory');
});

it('says where replay is against the target, with the last commit beside the target time', () => {
  expect(
    replayText({
      phase: 'replaying',
      startLsn: '0/2000000',
      lsn: '0/3000000',
      targetLsn: '0/6000000',
      time: '2026-06-04T14:31:02Z',
      targetTime: '2026-06-04T14:31:59Z',
    }),
  ).toBe('replaying at 0/3000000 of 0/6000000 (25 %); last commit 2026-06-04T14:31:02Z, target 2026-06-04T14:31:59Z');
  expect(replayText({ phase: 'paused', lsn: '0/5FFFF00', time: '2026-06-04T14:31:58Z' })).toBe(
    'paused at 0/5FFFF00; last commit 2026-06-04T14:31:58Z',
  );
  expect(replayText({ phase: 'replaying', lsn: '0/3000000', targetTime: '2026-06-04T14:31:59Z' })).toBe(
    'replaying at 0/3000000; no commit replayed yet, target 2026-06-04T14:31:59Z',
  );
  expect(replayText({ phase: 'starting' })).toBe('starting PostgreSQL on the restored copy');
});
