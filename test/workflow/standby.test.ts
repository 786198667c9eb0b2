// recoverToPointInTime with a runbook that declares a warm standby (DESIGN.md
// §4.4), on a real Temporal dev server with fake activities: restore-base-backup
// asks useStandby first and restores a backup only when it declines; the
// evidence says which source was used and why; a dry run never asks.
import type { WorkflowHandle } from '@temporalio/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate } from '../../src/recovery/messages';
import { waitFor } from '../harness/ports';
import { startHarness, TIME_TARGET, type Harness } from './recovery-harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

/** The standby the fake useStandby takes over: built from an older backup than preflight chooses. */
const STANDBY_SOURCE = {
  from: '/tmp/lifeboat-fake/standby',
  replayLsn: '0/4000000',
  lastReplayTime: '2026-11-21T13:31:00.000000Z',
  backupId: '20261121T080000Z',
  walSegmentSize: 16777216,
};

/** A harness whose runbook has a standby on the restore host (the schema wants restore.host). */
function harness(label: string, opts: Parameters<typeof startHarness>[2]): Promise<Harness> {
  return startHarness(
    label,
    (host) => ({ standby: { host, dataDir: '/tmp/lifeboat-fake/standby', port: 6002, delay: '1h' } }),
    opts,
  );
}

/** Approves every approval step as it comes, with as many approvers as it needs, until the run ends. */
async function approveAll(wf: WorkflowHandle): Promise<Evidence> {
  const done = wf.result() as Promise<Evidence>;
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    const s = await waitFor(
      'an approval or the end',
      async () => {
        if (finished) return { pending: undefined };
        const st = await h!.status(wf);
        return st.pending?.kind === 'approval' || st.phase !== 'running' ? st : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    if (!s.pending) continue;
    for (const by of s.pending.approvers.slice(0, s.pending.min)) {
      await wf
        .executeUpdate(decideUpdate, { args: [{ step: s.pending.step, decision: 'approve', by }] })
        .catch(() => undefined);
    }
    await waitFor(
      'the decision to land',
      async () => ((await h!.status(wf)).pending?.step !== s.pending!.step || finished ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }
  return done;
}

describe('recoverToPointInTime with a warm standby', () => {
  it('takes the standby over when it may serve: no backup is restored, the step says standby, the evidence says why', async () => {
    const why =
      'the standby (delay 1h) had replayed to LSN 0/4000000, last commit 2026-11-21T13:31:00.000000Z, before time 2026-11-21T14:31:59Z: replay goes on from there instead of restoring a backup';
    h = await harness('standby-used', {
      standby: {
        used: true,
        why,
        result: {
          dataDir: '/tmp/lifeboat-fake/recovery',
          port: 6000,
          bytes: 0,
          files: 0,
          finishedAt: '2026-11-21T14:41:00Z',
          standby: STANDBY_SOURCE,
        },
      },
    });
    const wf = await h.start({ target: TIME_TARGET });
    const evidence = await approveAll(wf);
    expect(h.calls.log.filter((l) => /^(useStandby|restoreBaseBackup|replayWal) /.test(l))).toEqual([
      `useStandby ${JSON.stringify({ target: TIME_TARGET, mode: 'side-by-side' })}`,
      `replayWal ${JSON.stringify({ target: TIME_TARGET, continueFrom: false })}`,
    ]);
    expect(evidence.restoreSource).toEqual({ kind: 'standby', why, standby: STANDBY_SOURCE });
    // Honest figures: the standby's base backup (not preflight's 20261121T120000Z, nothing restored), and the
    // WAL replayed from where the standby was paused (0/4000000) to the target (0/5000060): 2 segments, not the 4 counted from the backup.
    expect(evidence).toMatchObject({
      backupId: '20261121T080000Z',
      replayedToLsn: '0/5000060',
      walSegmentsReplayed: 2,
      walBytesReplayed: 0x1000060,
    });
    expect(evidence.baseBackupBytes).toBeUndefined();
    expect(evidence.notes).toContain(
      "restored from the warm standby /tmp/lifeboat-fake/standby, built from backup 20261121T080000Z and taken over at LSN 0/4000000 (last commit 2026-11-21T13:31:00.000000Z): walSegmentsReplayed and walBytesReplayed count the WAL this recovery replayed, from 0/4000000 to 0/5000060, not the standby's replay since its backup",
    );
    expect(evidence.steps.find((s) => s.id === 'restore-base-backup')?.summary).toBe(
      'standby: /tmp/lifeboat-fake/standby (replayed to 0/4000000, last commit 2026-11-21T13:31:00.000000Z) taken over into /tmp/lifeboat-fake/recovery; the standby is consumed, rebuild it: lifeboat standby build --runbook orders',
    );
    // Nothing rebuilds it: the evidence says it was used up and how to rebuild it.
    expect(evidence.notes).toContain(
      `the warm standby /tmp/lifeboat-fake/standby was consumed by this recovery (taken over at LSN 0/4000000); nothing rebuilds it and until it is rebuilt recoveries restore from a backup: lifeboat standby build --runbook orders on host ${h.host}`,
    );
    expect(evidence.validationStatus).toBe('passed');
  });

  it('restores a backup when the standby declines (a target before its position), and the evidence says why', async () => {
    const why =
      'the standby had replayed to LSN 0/9000000, last commit 2026-11-21T14:40:00.000000Z, its last replayed commit 2026-11-21T14:40:00.000000Z, not before time 2026-11-21T14:31:59Z: PostgreSQL cannot replay backwards, so the backup path restores instead';
    h = await harness('standby-declined', { standby: { used: false, why } });
    const wf = await h.start({ target: TIME_TARGET });
    const evidence = await approveAll(wf);
    expect(h.calls.log.filter((l) => /^(useStandby|restoreBaseBackup) /.test(l))).toEqual([
      `useStandby ${JSON.stringify({ target: TIME_TARGET, mode: 'side-by-side' })}`,
      `restoreBaseBackup ${JSON.stringify({ backupId: '20261121T120000Z', mode: 'side-by-side' })}`,
    ]);
    expect(evidence.restoreSource).toEqual({ kind: 'backup', why });
    expect(evidence).toMatchObject({ backupId: '20261121T120000Z', walSegmentsReplayed: 4 });
    expect(evidence.notes.some((n) => n.includes('consumed'))).toBe(false);
  });

  it('never asks for the standby in a dry run: it stays for the real recovery', async () => {
    h = await harness('standby-dry', {
      standby: {
        used: true,
        why: 'must not be asked',
        result: { dataDir: '/x', port: 1, bytes: 0, files: 0, finishedAt: '2026-11-21T14:41:00Z' },
      },
    });
    const wf = await h.start({ target: TIME_TARGET, dryRun: true });
    const evidence = (await wf.result()) as Evidence;
    expect(h.calls.log.some((l) => l.startsWith('useStandby'))).toBe(false);
    expect(h.calls.log.some((l) => l.startsWith('restoreBaseBackup'))).toBe(true);
    expect(evidence.restoreSource).toEqual({
      kind: 'backup',
      why: 'a dry run never takes the standby over: it stays for a real recovery',
    });
  });
});
