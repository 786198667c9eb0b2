// What `lifeboat status` shows an operator, from a RecoveryStatus built by
// hand: the checklist with its markers and durations, the progress bars, the
// decision the run waits for with the exact commands to give it, and what a
// closed run ended with.
import { describe, expect, it } from 'vitest';
import type { Evidence, RecoveryStatus, StepId, StepRecord } from '../../src/recovery/contract';
import { REPAIR_ONLY_STEP_IDS, STEP_IDS, STEP_TITLES } from '../../src/recovery/contract';
import {
  decisionCommands,
  lsnValue,
  progressBar,
  recoveryDetails,
  recoverySummary,
  renderStatus,
  replayFraction,
  restoreFraction,
  restoreLine,
  retargetOutcome,
  type StatusSnapshot,
} from '../../src/cli/status-view';
import { pendingQuery, renderPending, type PendingRun } from '../../src/cli/commands/pending';

const NOW = new Date('2026-06-04T15:05:30.000Z');
const WF = 'recover-orders-20260604T143500Z';

/** Steps in order: the given ones as stated, the rest pending. */
function steps(given: Partial<Record<StepId, Partial<StepRecord>>>): StepRecord[] {
  return STEP_IDS.map((id) => ({ id, title: STEP_TITLES[id], state: 'pending', runs: 0, ...given[id] }));
}

const done = (from: string, to: string, summary?: string): Partial<StepRecord> => ({
  state: 'done',
  startedAt: `2026-06-04T${from}.000Z`,
  finishedAt: `2026-06-04T${to}.000Z`,
  runs: 1,
  ...(summary ? { summary } : {}),
});

function baseStatus(over: Partial<RecoveryStatus>): RecoveryStatus {
  return {
    workflow: 'recoverToPointInTime',
    runbook: 'orders',
    cluster: 'orders',
    incident: 'INC-1234',
    reason: 'bad UPDATE on orders',
    target: { time: '2026-06-04T14:31:59Z' },
    mode: 'side-by-side',
    dryRun: false,
    phase: 'running',
    startedAt: '2026-06-04T14:35:00.000Z',
    steps: [],
    decisions: [],
    ignored: [],
    backup: {
      backupId: '20260604T120000Z',
      startLsn: '0/2000028',
      endLsn: '0/2000138',
      startTime: '2026-06-04T12:00:00.000Z',
      endTime: '2026-06-04T12:00:05.000Z',
      timeline: 1,
      sizeBytes: 2 * 1024 ** 3,
      storedBytes: 512 * 1024 ** 2,
      why: 'newest verified backup that finished before 14:31:59',
    },
    ...over,
  };
}

const FIRST_STEPS = {
  preflight: done('14:35:00', '14:35:04', 'backup 20260604T120000Z, 37 WAL segments, RTO estimate 12 min'),
  'capture-forensics': done('14:35:04', '14:35:06', 'outbox high-water 48213; 1 capture'),
  'approve-fence': done('14:35:06', '14:37:09', 'approved by alice'),
  'disable-writers': done('14:37:09', '14:37:11', 'app read-only, 3 sessions ended, write refused'),
  'disable-background-jobs': done('14:37:11', '14:37:11'),
  'pause-outbox': {
    state: 'skipped',
    startedAt: '2026-06-04T14:37:11.000Z',
    finishedAt: '2026-06-04T14:38:00.000Z',
    runs: 1,
    skipped: { by: 'bob', reason: 'no publisher runs on this cluster' },
  },
} satisfies Partial<Record<StepId, Partial<StepRecord>>>;

function view(status: RecoveryStatus, progress: StatusSnapshot['progress'] = {}): string {
  return renderStatus({ workflowId: WF, status, progress }, { now: NOW, color: false });
}

describe('a run waiting for approval of the promotion', () => {
  const status = baseStatus({
    phase: 'waiting',
    steps: steps({
      ...FIRST_STEPS,
      'restore-base-backup': done('14:38:00', '14:49:30', 'restored 2.0 GiB into /var/lib/postgresql/15/recovery'),
      'replay-wal': done('14:49:30', '14:58:00', 'paused at 0/9000060, last commit 14:31:58'),
      'run-invariants': done('14:58:00', '14:58:03', '2 of 3 invariants passed'),
      'approve-promote': { state: 'awaiting-approval', startedAt: '2026-06-04T15:00:00.000Z', runs: 1 },
    }),
    pending: {
      step: 'approve-promote',
      kind: 'approval',
      since: '2026-06-04T15:00:00.000Z',
      approvers: ['alice', 'bob', 'carol'],
      min: 2,
      approvedBy: ['alice'],
      how: ['Temporal UI: Send Signal "approve" with {"step":"approve-promote","by":"<who>"}'],
    },
    replay: { lsn: '0/9000060', time: '2026-06-04T14:31:58Z', paused: true },
    rpoObservedSeconds: 1,
    invariants: [
      { name: 'no negative balances', passed: true, value: '0', expected: '0' },
      { name: 'invalid indexes', passed: false, value: '1', expected: '0', builtin: true },
      { name: 'orders have customers', passed: false, value: '', error: 'relation "customers" does not exist' },
    ],
    decisions: [
      {
        step: 'approve-fence',
        by: 'alice',
        at: '2026-06-04T14:37:09.120Z',
        decision: 'approve',
        via: 'update',
        comment: 'fence it',
      },
      { step: 'approve-promote', by: 'alice', at: '2026-06-04T15:02:00.000Z', decision: 'approve', via: 'signal' },
    ],
    ignored: [
      {
        at: '2026-06-04T15:03:10.000Z',
        via: 'signal',
        name: 'approve',
        by: 'mallory',
        step: 'approve-promote',
        why: 'mallory is not an approver of approve-promote',
      },
    ],
  });

  it('shows the header, every step with its marker and duration, invariants, the pending decision with its commands, decisions and ignored messages', () => {
    expect(view(status)).toBe(
      [
        'recover orders to time 2026-06-04T14:31:59Z (side-by-side)',
        '  incident INC-1234: bad UPDATE on orders',
        `  workflow ${WF}  phase waiting  elapsed 30 min 30 s`,
        '  backup 20260604T120000Z: newest verified backup that finished before 14:31:59',
        '',
        'Steps:',
        '  [x] preflight                4 s          backup 20260604T120000Z, 37 WAL segments, RTO estimate 12 min',
        '  [x] capture-forensics        2 s          outbox high-water 48213; 1 capture',
        '  [x] approve-fence            2 min 3 s    approved by alice',
        '  [x] disable-writers          2 s          app read-only, 3 sessions ended, write refused',
        '  [x] disable-background-jobs  0 s          Stop background jobs',
        '  [-] pause-outbox             49 s         skipped by bob: no publisher runs on this cluster',
        '  [x] restore-base-backup      11 min 30 s  restored 2.0 GiB into /var/lib/postgresql/15/recovery',
        '  [x] replay-wal               8 min 30 s   paused at 0/9000060, last commit 14:31:58',
        '  [x] run-invariants           3 s          2 of 3 invariants passed',
        '  [?] approve-promote          5 min 30 s   Approve promotion: needs 2 of alice, bob, carol; approved by alice',
        '  [ ] promote                               Promote and re-assert the gates',
        '  [ ] reconcile-outbox                      Reconcile the outbox',
        '  [ ] invalidate-caches                     Invalidate caches',
        '  [ ] approve-resume                        Approve resuming traffic',
        '  [ ] resume-traffic                        Resume traffic, writers on',
        '  [ ] enable-background-jobs                Background jobs on',
        '  [ ] resume-outbox                         Outbox publisher on',
        '  [ ] record-evidence                       Record the evidence',
        '',
        'Replayed to 0/9000060, last commit 2026-06-04T14:31:58Z, paused; observed RPO 1 s',
        '',
        'Invariants:',
        '  pass  no negative balances: 0',
        '  FAIL  invalid indexes: 1, expected 0 (built in)',
        '  FAIL  orders have customers: error: relation "customers" does not exist',
        '',
        'Waiting for approval of approve-promote since 15:00:00Z (5 min 30 s):',
        '  may decide: alice, bob, carol (2 must approve; approved so far by alice)',
        `  lifeboat approve ${WF} approve-promote --as <who> [--comment <text>]`,
        `  lifeboat reject ${WF} approve-promote --as <who> --reason <text>`,
        `  lifeboat retarget ${WF} --to-time <iso>|--to-lsn <lsn>|... --as <who>`,
        '  Temporal UI: Send Signal "approve" with {"step":"approve-promote","by":"<who>"}',
        '',
        'Decisions:',
        '  14:37:09Z  approve approve-fence by alice (update): fence it',
        '  15:02:00Z  approve approve-promote by alice (signal)',
        '',
        'Ignored messages:',
        '  15:03:10Z  approve signal by mallory on approve-promote: mallory is not an approver of approve-promote',
      ].join('\n'),
    );
  });

  it('colours the markers only when asked', () => {
    const plain = view(status);
    expect(plain).not.toContain('\x1b[');
    const coloured = renderStatus({ workflowId: WF, status, progress: {} }, { now: NOW, color: true });
    expect(coloured).toContain('\x1b[33m  [?] approve-promote');
    expect(coloured).toContain('\x1b[32m  [x] preflight');
    expect(coloured.replace(/\x1b\[\d+m/g, '')).toBe(plain);
  });
});

describe('a run restoring and then replaying', () => {
  const restoring = baseStatus({
    steps: steps({
      ...FIRST_STEPS,
      'restore-base-backup': { state: 'running', startedAt: '2026-06-04T15:00:00.000Z', runs: 1 },
    }),
  });

  it('shows the restore bar under its step, in bytes of the total', () => {
    const lines = view(restoring, {
      restore: { phase: 'downloading', bytes: 1024 ** 3, totalBytes: 2 * 1024 ** 3 },
    }).split('\n');
    const at = lines.indexOf('  [>] restore-base-backup      5 min 30 s   Restore the base backup');
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toBe('        downloading  [##########----------]  50%  1.0 GiB of 2.0 GiB');
    expect(lines[at + 2]).toBe('  [ ] replay-wal                            Replay WAL to the target and pause');
  });

  it('shows the replay bar by LSN between the backup start and the target LSN, and says it is a second run', () => {
    const replaying = baseStatus({
      target: { lsn: '0/A000028' },
      steps: steps({
        ...FIRST_STEPS,
        'restore-base-backup': done('14:38:00', '14:49:30'),
        'replay-wal': { state: 'running', startedAt: '2026-06-04T15:05:00.000Z', runs: 2, summary: undefined },
      }),
    });
    const out = view(replaying, {
      replay: {
        phase: 'replaying',
        lsn: '0/6000028',
        time: '2026-06-04T13:10:00Z',
        targetLsn: '0/A000028',
        startLsn: '0/2000028',
      },
    });
    expect(out).toContain(
      [
        '  [>] replay-wal               30 s         Replay WAL to the target and pause (run 2)',
        '        replaying    [##########----------]  50%  at 0/6000028 of 0/A000028, last commit 2026-06-04T13:10:00Z',
      ].join('\n'),
    );
    expect(out.split('\n')[0]).toBe('recover orders to LSN 0/A000028 (side-by-side)');
  });
});

describe('a failed step', () => {
  const failed = baseStatus({
    phase: 'waiting',
    steps: steps({
      ...FIRST_STEPS,
      'restore-base-backup': done('14:38:00', '14:49:30'),
      'replay-wal': {
        state: 'failed',
        startedAt: '2026-06-04T14:49:30.000Z',
        finishedAt: '2026-06-04T14:52:00.000Z',
        runs: 1,
        error: {
          type: 'RECOVERY_ENDED_BEFORE_TARGET',
          message:
            'recovery ended at 0/9000000 (last commit 2026-06-04T14:20:00Z) before the target time 2026-06-04T14:31:59Z\n' +
            'HINT: is WAL after 000000010000000000000009 archived? lifeboat check --runbook orders',
          hints: [],
        },
      },
    }),
    pending: {
      step: 'replay-wal',
      kind: 'failed',
      since: '2026-06-04T14:52:00.000Z',
      approvers: [],
      min: 1,
      approvedBy: [],
      how: [],
    },
  });

  it('shows the first line of the error and its hints, then retry and abort commands (replay-wal cannot be skipped)', () => {
    const out = view(failed);
    expect(out).toContain(
      [
        '  [!] replay-wal               2 min 30 s   RECOVERY_ENDED_BEFORE_TARGET: recovery ended at 0/9000000 (last commit 2026-06-04T14:20:00Z) before the target time 2026-06-04T14:31:59Z',
        '        HINT: is WAL after 000000010000000000000009 archived? lifeboat check --runbook orders',
        '  [ ] run-invariants                        Check invariants on the paused copy',
      ].join('\n'),
    );
    expect(out).toContain(
      [
        '',
        'Step replay-wal failed; waiting for an operator since 14:52:00Z (13 min 30 s):',
        `  lifeboat retry ${WF} replay-wal --as <who>`,
        `  lifeboat abort ${WF} replay-wal --as <who> --reason <text>`,
      ].join('\n'),
    );
  });

  it('offers no retarget for approvals other than approve-promote', () => {
    expect(
      decisionCommands(WF, {
        step: 'approve-fence',
        kind: 'approval',
        since: '',
        approvers: [],
        min: 1,
        approvedBy: [],
        how: [],
      }),
    ).toEqual([
      `lifeboat approve ${WF} approve-fence --as <who> [--comment <text>]`,
      `lifeboat reject ${WF} approve-fence --as <who> --reason <text>`,
    ]);
  });
});

describe('a closed run', () => {
  const evidence: Evidence = {
    runId: 'run-1',
    workflowId: WF,
    kind: 'recovery',
    runbook: 'orders',
    cluster: 'orders',
    incident: 'INC-1234',
    target: { time: '2026-06-04T14:31:59Z' },
    startedAt: '2026-06-04T14:35:00.000Z',
    finishedAt: '2026-06-04T15:20:00.000Z',
    rtoObservedSeconds: 2700,
    rpoObservedSeconds: 1,
    invariants: [{ name: 'no negative balances', passed: true, value: '0' }],
    approvals: [{ step: 'approve-promote', by: 'bob', at: '2026-06-04T15:10:00.000Z', decision: 'approve' }],
    steps: [
      { id: 'preflight', state: 'done', startedAt: '2026-06-04T14:35:00.000Z', finishedAt: '2026-06-04T14:35:04.000Z' },
      { id: 'invalidate-caches', state: 'skipped' },
      {
        id: 'record-evidence',
        state: 'done',
        startedAt: '2026-06-04T15:19:58.000Z',
        finishedAt: '2026-06-04T15:20:00.000Z',
        summary: 'orders/evidence/run-1.json',
      },
    ],
    validationStatus: 'passed',
    notes: [],
  };

  it('whose query no longer answers is shown from its evidence, with how it ended', () => {
    const snap: StatusSnapshot = {
      workflowId: WF,
      progress: {},
      queryError: 'no answer within 10 s',
      closed: { status: 'COMPLETED', at: '2026-06-04T15:20:00.000Z' },
      result: evidence,
    };
    expect(renderStatus(snap, { now: new Date('2026-06-04T15:20:00.000Z'), color: false })).toBe(
      [
        'recover orders to time 2026-06-04T14:31:59Z (side-by-side)',
        '  incident INC-1234',
        `  workflow ${WF}  phase finished  elapsed 45 min 0 s`,
        '',
        'Steps:',
        '  [x] preflight                4 s          Preflight: backup chosen, WAL chain checked',
        '  [-] invalidate-caches                     skipped',
        '  [x] record-evidence          2 s          orders/evidence/run-1.json',
        '',
        'Invariants:',
        '  pass  no negative balances: 0',
        '',
        'Decisions:',
        '  15:10:00Z  approve approve-promote by bob (signal)',
        '',
        'Finished at 2026-06-04T15:20:00.000Z: validation passed, RTO 45 min 0 s, RPO 1 s',
      ].join('\n'),
    );
  });

  it('that failed without a result shows the failure with its hints', () => {
    const snap: StatusSnapshot = {
      workflowId: WF,
      startedAt: '2026-06-04T14:35:00.000Z',
      progress: {},
      queryError:
        'Failed to query Workflow: 9 FAILED_PRECONDITION: Workflow execution closed before WorkflowTaskStarted event',
      closed: { status: 'FAILED', at: '2026-06-04T14:35:01.000Z' },
      failure: 'INPUT_INVALID: target.time: expected an ISO 8601 time with a zone\nHINT: see DESIGN.md §4',
    };
    expect(renderStatus(snap, { now: NOW, color: false })).toBe(
      [
        `recoverToPointInTime ${WF}  started 2026-06-04T14:35:00.000Z, elapsed 30 min 30 s`,
        '  status query did not answer: Failed to query Workflow: 9 FAILED_PRECONDITION: Workflow execution closed before WorkflowTaskStarted event',
        '',
        'Closed: FAILED at 2026-06-04T14:35:01.000Z',
        '  INPUT_INVALID: target.time: expected an ISO 8601 time with a zone',
        '  HINT: see DESIGN.md §4',
      ].join('\n'),
    );
  });

  it('that is open but unanswered points at the worker', () => {
    const snap: StatusSnapshot = {
      workflowId: WF,
      startedAt: '2026-06-04T15:05:00.000Z',
      progress: {},
      queryError: 'no answer within 10 s',
    };
    expect(renderStatus(snap, { now: NOW, color: false })).toBe(
      [
        `recoverToPointInTime ${WF}  started 2026-06-04T15:05:00.000Z, elapsed 30 s`,
        '  status query did not answer: no answer within 10 s',
        '  HINT: is a worker polling task queue lifeboat? (lifeboat worker)',
      ].join('\n'),
    );
  });
});

describe('progress bars', () => {
  it('fill in twentieths and floor the percentage, so nothing shows 100% before it is done', () => {
    expect(progressBar(0)).toBe('[--------------------]   0%');
    expect(progressBar(0.5)).toBe('[##########----------]  50%');
    expect(progressBar(1)).toBe('[####################] 100%');
    expect(progressBar(0.999)).toBe('[###################-]  99%');
    expect(progressBar(0.29)).toBe('[#####---------------]  29%');
    expect(progressBar(1.7)).toBe('[####################] 100%');
  });

  it('show dots and ?% when the total is unknown', () => {
    expect(progressBar(undefined)).toBe('[....................]   ?%');
    expect(restoreFraction({ phase: 'preparing', bytes: 0, totalBytes: 0 })).toBeUndefined();
    expect(restoreLine({ phase: 'downloading', bytes: 3 * 1024 ** 2, totalBytes: 0 })).toBe(
      'downloading  [....................]   ?%  3.0 MiB',
    );
    expect(replayFraction({ phase: 'replaying', lsn: '0/3000000' }, { target: { latest: true } })).toBeUndefined();
  });

  it('measure restore by bytes and count a finished download as done', () => {
    expect(restoreFraction({ phase: 'downloading', bytes: 0, totalBytes: 100 })).toBe(0);
    expect(restoreFraction({ phase: 'downloading', bytes: 50, totalBytes: 100 })).toBe(0.5);
    expect(restoreFraction({ phase: 'done', bytes: 99, totalBytes: 100 })).toBe(1);
  });

  it('measure replay by LSN across a 4 GiB boundary, else by commit time from the backup start to the target time', () => {
    expect(lsnValue('1/0')).toBe(2n ** 32n);
    expect(replayFraction({ phase: 'replaying', startLsn: '0/FF000000', lsn: '1/0', targetLsn: '1/1000000' })).toBe(
      0.5,
    );
    expect(
      replayFraction({ phase: 'replaying', startLsn: '0/2000000', lsn: '0/2000000', targetLsn: '0/4000000' }),
    ).toBe(0);
    const status = baseStatus({ target: { time: '2026-06-04T14:00:00Z' } });
    expect(replayFraction({ phase: 'replaying', lsn: '0/3000000', time: '2026-06-04T13:00:00Z' }, status)).toBe(0.5);
    expect(replayFraction({ phase: 'paused', lsn: '0/3000000' }, status)).toBe(1);
  });
});

describe('what the Temporal UI shows for a started run', () => {
  const input = {
    runbook: 'orders',
    target: { time: '2026-06-04T14:31:59Z' },
    incident: 'INC_1234',
    reason: 'bad UPDATE | wrong WHERE',
    dryRun: true,
  };

  it('has a one-line summary with incident, runbook and target', () => {
    expect(recoverySummary(input)).toBe('**INC\\_1234** recover `orders` to time 2026-06-04T14:31:59Z (dry run)');
    expect(recoverySummary({ ...input, mode: 'in-place', dryRun: false }, false)).toBe(
      'INC_1234: recover orders to time 2026-06-04T14:31:59Z (in-place)',
    );
  });

  it('has the input as a markdown table, cells escaped', () => {
    expect(recoveryDetails(input, 'alice@ops-1')).toBe(
      [
        '| | |',
        '|---|---|',
        '| runbook | orders |',
        '| target | time 2026-06-04T14:31:59Z |',
        '| incident | INC\\_1234 |',
        '| reason | bad UPDATE \\| wrong WHERE |',
        "| mode | the runbook's restore.mode |",
        '| dry run | yes: preflight, forensics and invariants only; no gate, no traffic |',
        '| backup | chosen by preflight |',
        '| started by | alice@ops-1 |',
      ].join('\n'),
    );
  });
});

describe('after a retarget', () => {
  const status = baseStatus({
    target: { time: '2026-06-04T14:20:00Z' },
    steps: steps({
      ...FIRST_STEPS,
      'restore-base-backup': { state: 'running', runs: 2, startedAt: '2026-06-04T15:05:00.000Z' },
    }),
    ignored: [
      {
        at: '2026-06-04T15:05:01.000Z',
        via: 'signal',
        name: 'retarget',
        by: 'mallory',
        why: 'mallory is not an approver of approve-promote',
      },
    ],
  });

  it('says the run took the new target and what runs next', () => {
    expect(retargetOutcome(WF, status, { time: '2026-06-04T14:20:00Z' }, 'alice')).toEqual({
      taken: true,
      lines: [
        'taken: the run now recovers to time 2026-06-04T14:20:00Z',
        'next: restore-base-backup (Restore the base backup)',
      ],
    });
  });

  it('says why the workflow ignored it', () => {
    expect(retargetOutcome(WF, status, { lsn: '0/5000000' }, 'mallory')).toEqual({
      taken: false,
      lines: [
        'ignored: mallory is not an approver of approve-promote',
        'the run still recovers to time 2026-06-04T14:20:00Z',
      ],
    });
  });

  it('says when it cannot tell yet', () => {
    expect(retargetOutcome(WF, status, { lsn: '0/5000000' }, 'alice').lines).toEqual([
      `not taken yet: the run still recovers to time 2026-06-04T14:20:00Z; check with lifeboat status ${WF}`,
    ]);
  });
});

describe('lifeboat pending', () => {
  const ctx = { now: NOW, namespace: 'default', address: '127.0.0.1:7233' };

  it('finds running recoveries by LifeboatAwaiting with a query every visibility store understands, scoped to a runbook on request', () => {
    const all = [...STEP_IDS, ...REPAIR_ONLY_STEP_IDS].map((s) => `'${s}'`).join(', ');
    const types = "WorkflowType IN ('recoverToPointInTime', 'repairFromPointInTime')";
    expect(pendingQuery()).toBe(`${types} AND ExecutionStatus = 'Running' AND LifeboatAwaiting IN (${all})`);
    expect(pendingQuery("o'rders")).toBe(
      `${types} AND ExecutionStatus = 'Running' AND LifeboatAwaiting IN (${all}) AND LifeboatRunbook = 'o\\'rders'`,
    );
  });

  it('shows a failed step waiting for retry, skip or abort, and a run whose status query did not answer', () => {
    const failed: PendingRun = {
      workflowId: WF,
      runId: 'r1',
      runbook: 'orders',
      awaiting: ['disable-writers'],
      target: 'the end of the archive',
      pending: {
        step: 'disable-writers',
        kind: 'failed',
        since: '2026-06-04T15:00:00.000Z',
        approvers: ['alice', 'bob'],
        min: 1,
        approvedBy: [],
        how: [],
        stillNeeded: 1,
      },
      commands: decisionCommands(WF, {
        step: 'disable-writers',
        kind: 'failed',
        since: '',
        approvers: [],
        min: 1,
        approvedBy: [],
        how: [`skip: lifeboat skip ${WF} disable-writers --as <you> --reason "<why>"`],
      }),
    };
    const mute: PendingRun = {
      workflowId: 'recover-b',
      runId: 'r2',
      runbook: 'billing',
      awaiting: ['approve-fence'],
      commands: [],
      queryError: 'no answer within 10 s',
    };
    expect(renderPending([failed, mute], ctx).join('\n')).toBe(
      [
        '2 recoveries wait for a decision (namespace default at 127.0.0.1:7233):',
        '',
        `${WF}  runbook orders  to the end of the archive`,
        '  disable-writers failed: waits for retry, skip or abort by alice, bob; since 2026-06-04T15:00:00.000Z (5 min 30 s)',
        `  lifeboat retry ${WF} disable-writers --as <who>`,
        `  lifeboat skip ${WF} disable-writers --as <who> --reason <text>`,
        `  lifeboat abort ${WF} disable-writers --as <who> --reason <text>`,
        '',
        'recover-b  runbook billing',
        '  waits at approve-fence (from the search attribute); status query did not answer: no answer within 10 s',
        '  HINT: is a worker polling task queue lifeboat? (lifeboat worker)',
      ].join('\n'),
    );
  });

  it('ends each run with the link to its checklist tab when a Temporal UI is known', () => {
    const ui = `http://ui.example:8080/namespaces/default/workflows/${WF}/r1/user-metadata`;
    const waiting: PendingRun = {
      workflowId: WF,
      runId: 'r1',
      runbook: 'orders',
      awaiting: ['approve-fence'],
      pending: {
        step: 'approve-fence',
        kind: 'approval',
        since: '2026-06-04T15:00:00.000Z',
        approvers: ['alice'],
        min: 1,
        approvedBy: [],
        how: [],
        stillNeeded: 1,
      },
      commands: [`lifeboat approve ${WF} approve-fence --as <who> [--comment <text>]`],
      ui,
    };
    expect(renderPending([waiting], ctx).slice(2)).toEqual([
      `${WF}  runbook orders`,
      '  approve-fence: needs 1 more approval from alice; waiting since 2026-06-04T15:00:00.000Z (5 min 30 s)',
      `  lifeboat approve ${WF} approve-fence --as <who> [--comment <text>]`,
      `  Temporal UI, the run's "User Metadata" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest):`,
      `  ${ui}`,
    ]);
  });
});
