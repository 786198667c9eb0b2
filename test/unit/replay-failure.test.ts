// How replay-wal names why PostgreSQL stopped when WAL was the reason: the
// failure archive-get records in the data directory (src/wal/get-failure.ts),
// its stderr line as a fallback, and the error each becomes
// (src/restore/replay-failure.ts). Real replays: test/integration/corrupt-wal.test.ts.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRetryable, LifeboatError } from '../../src/errors';
import { archiveGetFailureInLog, restoreCommandFailed, type StoppedReplay } from '../../src/restore/replay-failure';
import {
  clearRestoreFailure,
  readRestoreFailure,
  recordRestoreFailure,
  RESTORE_FAILURE_FILE,
} from '../../src/wal/get-failure';

const SEG = '000000010000000000000005';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-replay-failure-'));
  dirs.push(d);
  return d;
}

const stopped = {
  runbook: { name: 'orders', repository: { url: 'file:///srv/repo' } },
  pg: { dataDir: '/srv/recovery', pgBin: '/usr/lib/postgresql/15/bin', osUser: 'postgres' },
  input: { runbook: 'orders', target: { name: 'before-bad-delete' }, workflowId: 'wf-1', runId: 'run-1' },
  marker: {
    backupId: '20261121T120000Z',
    backup: { startLsn: '0/2000028', timeline: 1, walSegmentSize: 16 * 1024 * 1024 },
  },
  logFile: '/srv/recovery.lifeboat-postgres.log',
  cluster: 'orders',
} as unknown as StoppedReplay;

describe('the failure archive-get records', () => {
  it('keeps the code, the WAL file, what failed and the object, and is gone once cleared', async () => {
    const dir = tempDir();
    const err = new LifeboatError(
      'WAL_CHECKSUM_MISMATCH',
      `${SEG} in file:///srv/repo (cluster orders, object orders/wal/${SEG}.zst) does not match its checksum`,
      {
        hints: ['the archived copy is damaged'],
        details: { walFile: SEG, object: `orders/wal/${SEG}.zst` },
      },
    );
    await recordRestoreFailure(dir, SEG, err);
    expect(await readRestoreFailure(dir)).toMatchObject({
      code: 'WAL_CHECKSUM_MISMATCH',
      walFile: SEG,
      object: `orders/wal/${SEG}.zst`,
      hints: ['the archived copy is damaged'],
    });
    await clearRestoreFailure(dir);
    expect(await readRestoreFailure(dir)).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('records anything that is not a LifeboatError as TOOL_FAILED, and never throws where it cannot write', async () => {
    const dir = tempDir();
    await recordRestoreFailure(dir, SEG, new Error('socket hang up'));
    expect(await readRestoreFailure(dir)).toMatchObject({
      code: 'TOOL_FAILED',
      walFile: SEG,
      what: 'socket hang up',
      hints: [],
    });
    await expect(
      recordRestoreFailure(path.join(dir, 'no', 'such', 'dir'), SEG, new Error('x')),
    ).resolves.toBeUndefined();
    expect(readdirSync(dir)).toEqual([RESTORE_FAILURE_FILE]);
  });
});

describe('archive-get in the server log', () => {
  it('reads the last FATAL line of archive-get: a checksum mismatch is WAL_CHECKSUM_MISMATCH, anything else TOOL_FAILED', () => {
    const log = [
      '2026-12-03 10:00:00.000 UTC [42] LOG:  starting archive recovery',
      `lifeboat archive-get: FATAL: cannot restore ${SEG}: ${SEG} in file:///srv/repo (cluster orders, object orders/wal/${SEG}.zst) does not match its checksum: recorded sha256 aa, content sha256 bb`,
      'HINT: the archived copy is damaged; recovery cannot continue past it with this archive',
      `2026-12-03 10:00:01.000 UTC [42] FATAL:  could not restore file "${SEG}" from archive: child process exited with exit code 255`,
    ].join('\n');
    expect(archiveGetFailureInLog(log)).toMatchObject({ code: 'WAL_CHECKSUM_MISMATCH', walFile: SEG });
    expect(
      archiveGetFailureInLog(`lifeboat archive-get: FATAL: cannot restore ${SEG}: the store did not answer\n`),
    ).toMatchObject({ code: 'TOOL_FAILED', walFile: SEG, what: 'the store did not answer' });
    expect(
      archiveGetFailureInLog(`lifeboat archive-get: ${SEG} is not in the archive file:///srv/repo (cluster orders)\n`),
    ).toBeUndefined();
  });
});

describe('the error replay-wal reports', () => {
  it('a corrupt segment: WAL_CHECKSUM_MISMATCH, not retryable, the segment and the object first, then where a target may lie', () => {
    const err = restoreCommandFailed(
      stopped,
      {
        code: 'WAL_CHECKSUM_MISMATCH',
        walFile: SEG,
        what: `${SEG} in file:///srv/repo does not match its checksum`,
        hints: [],
        object: `orders/wal/${SEG}.zst`,
        at: '',
        pid: 0,
      },
      '0/4FFFF00',
    );
    expect(err.code).toBe('WAL_CHECKSUM_MISMATCH');
    expect(isRetryable(err.code)).toBe(false);
    expect(err.message).toBe(
      [
        `replay of orders towards restore point "before-bad-delete" stopped at WAL segment ${SEG}: the archived copy is corrupt (${SEG} in file:///srv/repo does not match its checksum)`,
        `HINT: the damaged object is orders/wal/${SEG}.zst in file:///srv/repo; recovery cannot replay past it with this archive, and a retry of replay-wal as it is fails the same way`,
        `HINT: if the primary still has ${SEG} in its pg_wal, compare its sha256 with the one recorded in the repository; a good copy can replace the damaged object (move that aside first), then retry replay-wal`,
        `HINT: otherwise choose a target before LSN 0/5000000, where ${SEG} begins (replay had reached LSN 0/4FFFF00) (retarget); if base backup 20261121T120000Z itself needs ${SEG} to become consistent, recover from another backup`,
        `HINT: nothing was promoted: PostgreSQL in /srv/recovery stopped in archive recovery before applying ${SEG} (server log: /srv/recovery.lifeboat-postgres.log)`,
      ].join('\n'),
    );
  });

  it('a repository that did not answer keeps its code (retried) and says a retry resumes', () => {
    const err = restoreCommandFailed(
      stopped,
      {
        code: 'REPOSITORY_UNREACHABLE',
        walFile: SEG,
        what: 's3://bucket did not answer: connect ECONNREFUSED',
        hints: ['check the endpoint'],
        at: '',
        pid: 0,
      },
      null,
    );
    expect(err.code).toBe('REPOSITORY_UNREACHABLE');
    expect(isRetryable(err.code)).toBe(true);
    expect(err.message).toBe(
      [
        `replay of orders towards restore point "before-bad-delete" stopped: lifeboat archive-get could not restore ${SEG}: s3://bucket did not answer: connect ECONNREFUSED`,
        'HINT: check the endpoint',
        `HINT: a retry of replay-wal starts PostgreSQL again and replay resumes from its last restartpoint, once ${SEG} can be read from file:///srv/repo`,
        `HINT: nothing was promoted: PostgreSQL in /srv/recovery stopped in archive recovery before applying ${SEG} (server log: /srv/recovery.lifeboat-postgres.log)`,
      ].join('\n'),
    );
  });
});
