// The warm standby's recovery settings (src/standby/conf.ts): the block
// replay-wal writes for the end of the archive, plus the apply delay, no
// archiving and loopback only; and how a delay reads.
import { describe, expect, it } from 'vitest';
import { BLOCK_BEGIN, BLOCK_END, withRecoveryBlock } from '../../src/restore/recovery-conf';
import { formatDelay, standbyLines, standbyOwner } from '../../src/standby/conf';
import { testRunbook } from '../workflow/recovery-harness';

describe('standby recovery settings', () => {
  const runbook = testRunbook('orders', 'db1', {
    standby: { host: 'db1', dataDir: '/srv/standby', port: 6002, delay: '1h' },
  });

  it('replay to the end of the archive, held back by the delay, never archiving, on loopback', () => {
    const lines = standbyLines(runbook, { port: 6002, socketDir: '/srv', delaySeconds: 3600 });
    expect(lines[0]).toBe(BLOCK_BEGIN);
    expect(lines[lines.length - 1]).toBe(BLOCK_END);
    expect(lines).toContain(
      `# Written by Lifeboat for workflow ${standbyOwner(runbook)}; replaced on every replay-wal.`,
    );
    expect(lines).toEqual(
      expect.arrayContaining([
        'port = 6002',
        "listen_addresses = '127.0.0.1'",
        "unix_socket_directories = '/srv'",
        'hot_standby = on',
        'archive_mode = off',
        "archive_command = ''",
        // Promoted by mistake it must not apply the subscriptions in its catalog either.
        'max_logical_replication_workers = 0',
        "recovery_target_timeline = 'latest'",
        "recovery_min_apply_delay = '3600s'",
      ]),
    );
    expect(lines.find((l) => l.startsWith('restore_command = '))).toMatch(
      / archive-get %f %p --repo file:\/\/\/nonexistent\/repo --cluster orders'$/,
    );
    // No target: the standby follows the archive until a recovery sets one.
    expect(lines.some((l) => /^recovery_target_(time|name|lsn|xid) /.test(l))).toBe(false);
  });

  it("is replaced whole by replay-wal's block, so the delay goes when a recovery takes the standby over", () => {
    const standby = withRecoveryBlock(
      "shared_buffers = '1GB'\n",
      standbyLines(runbook, { port: 6002, socketDir: '/srv', delaySeconds: 600 }),
    );
    const recovery = withRecoveryBlock(standby, [
      BLOCK_BEGIN,
      "recovery_target_time = '2026-11-21 14:31:59+00:00'",
      BLOCK_END,
    ]);
    expect(recovery).toBe(
      `shared_buffers = '1GB'\n${BLOCK_BEGIN}\nrecovery_target_time = '2026-11-21 14:31:59+00:00'\n${BLOCK_END}\n`,
    );
  });

  it('reads a delay as an operator writes it', () => {
    expect([0, 20, 600, 3600, 5400, 3661].map(formatDelay)).toEqual([
      'no delay',
      '20s',
      '10m',
      '1h',
      '1h 30m',
      '1h 1m 1s',
    ]);
  });
});
