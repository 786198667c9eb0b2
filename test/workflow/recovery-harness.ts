// Workflow-logic tests of recoverToPointInTime: the real workflow code on the
// real Temporal dev server, with fake activities (the point here is the
// orchestration: approvals, retries, retarget, abort). The real activities
// are tested against real services in test/integration and test/e2e.
import { ApplicationFailure } from '@temporalio/common';
import { expect } from 'vitest';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import type { AuditLine, Evidence, RecoveryInput, RecoveryStatus, Target } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import { Runbook, hostQueue } from '../../src/runbook/schema';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { temporalAddress } from '../harness/services';
import { waitFor } from '../harness/ports';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: path.resolve(__dirname, '../../workflows/index.ts'),
    workflowInterceptorModules: [path.resolve(__dirname, '../../workflows/summaries.ts')],
    logger: quietLogger,
  });
  return bundle;
}
const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export function testRunbook(name: string, host: string, extra: Record<string, unknown> = {}): Runbook {
  const base = parseYaml(
    demoRunbookYaml({
      name,
      pgPort: 5999,
      repoUrl: 'file:///nonexistent/repo',
      host,
      stateDir: '/tmp/lifeboat-fake',
      restorePort: 6000,
      drillPort: 6001,
    }),
  ) as Record<string, unknown>;
  return Runbook.parse({
    ...base,
    approvals: {
      'approve-fence': { approvers: ['alice', 'bob'] },
      'approve-promote': { approvers: ['alice', 'bob', 'carol'], min: 2 },
    },
    caches: [{ redis: { urlEnv: 'REDIS_URL', patterns: ['orders:*'] } }],
    traffic: { pgbouncer: { adminUrlEnv: 'PGBOUNCER_ADMIN_URL', database: 'appdb', databasesFile: '/tmp/x.ini' } },
    ...extra,
  });
}

export interface Calls {
  log: string[];
  audit: AuditLine[];
  evidence: Evidence[];
}

/** Fake activities: each records its call; `failures` makes a named activity throw N times. */
export function fakeActivities(
  runbook: Runbook,
  calls: Calls,
  opts: {
    failures?: Record<string, Array<{ type: string; message: string; details?: unknown }>>;
    invariantsFail?: boolean;
    /** replayWal reports no commit time: nothing committed between the backup and the target. */
    replayNoCommit?: boolean;
    /** The one-recovery-per-runbook check to run (the real activity, or a wrapper of it); without, it passes. */
    checkNoOtherRecovery?: RecoveryActivities['checkNoOtherRecovery'];
    /** What useStandby answers (runbooks with a standby: section); without, it declines. */
    standby?: Awaited<ReturnType<RecoveryActivities['useStandby']>>;
  } = {},
): RecoveryActivities {
  const fail = (name: string) => {
    const f = opts.failures?.[name]?.shift();
    if (f)
      throw ApplicationFailure.create({
        type: f.type,
        message: f.message,
        nonRetryable: true,
        ...(f.details ? { details: [f.details] } : {}),
      });
  };
  const rec = (name: string, arg: unknown) => {
    calls.log.push(`${name} ${JSON.stringify(arg)}`);
    fail(name);
  };
  const backup = {
    backupId: '20261121T120000Z',
    startLsn: '0/2000028',
    endLsn: '0/2000100',
    startTime: '2026-11-21T12:00:00Z',
    endTime: '2026-11-21T12:00:05Z',
    timeline: 1,
    sizeBytes: 50 << 20,
    storedBytes: 10 << 20,
    why: 'newest verified backup that finished before the target',
  };
  return {
    // Not recorded in calls.log: it asks Temporal's visibility and touches nothing.
    async checkNoOtherRecovery(i) {
      if (opts.checkNoOtherRecovery) return opts.checkNoOtherRecovery(i);
      return { checked: 'not checked (fake)', later: [] };
    },
    async preflight(i) {
      rec('preflight', { target: i.target });
      return {
        runbook,
        cluster: runbook.name,
        backup,
        walFrom: '000000010000000000000002',
        walTo: '000000010000000000000009',
        walSegmentsAvailable: 8,
        primaryReachable: true,
        archiver: 'healthy',
        rtoEstimateSeconds: 130,
        warnings: [],
      };
    },
    async captureForensics(i) {
      rec('captureForensics', { target: i.target });
      return { capturedAt: '2026-11-21T14:40:00Z', primaryReachable: true, outboxHighWater: '450', captures: [] };
    },
    async setGate(i) {
      rec('setGate', { gate: i.gate, where: i.where, enabled: i.enabled });
      return {
        gate: i.gate,
        enabled: i.enabled,
        ...(i.gate === 'writers' && !i.enabled
          ? { proof: 'ERROR: cannot execute UPDATE in a read-only transaction' }
          : {}),
      };
    },
    async restoreBaseBackup(i) {
      rec('restoreBaseBackup', { backupId: i.backupId, mode: i.mode });
      return {
        dataDir: '/tmp/lifeboat-fake/recovery',
        port: 6000,
        bytes: 50 << 20,
        files: 1000,
        finishedAt: '2026-11-21T14:41:00Z',
      };
    },
    async useStandby(i) {
      rec('useStandby', { target: i.target, mode: i.mode });
      return opts.standby ?? { used: false, why: 'fake: no standby' };
    },
    // Not recorded in calls.log: the room check runs inside preflight and changes nothing.
    async checkRestoreSite(i) {
      return {
        dataDir: '/tmp/lifeboat-fake/recovery',
        measured: '/tmp/lifeboat-fake',
        freeBytes: 10 << 30,
        neededBytes: i.backupBytes,
        kept: [],
      };
    },
    async replayWal(i) {
      rec('replayWal', { target: i.target, continueFrom: i.continueFrom ?? false });
      const time =
        'time' in i.target ? new Date(Date.parse(i.target.time) - 2000).toISOString() : '2026-11-21T14:30:00.000Z';
      return {
        paused: true,
        lsn: '0/5000060',
        ...(opts.replayNoCommit ? {} : { time }),
        timeline: 1,
        walSegmentsReplayed: 4,
        walBytesReplayed: 4 << 24,
      };
    },
    async runInvariants(i) {
      rec('runInvariants', i.runbook);
      return [
        {
          name: 'no negative amounts',
          passed: !opts.invariantsFail,
          value: opts.invariantsFail ? '3' : '0',
          expected: '0',
        },
        { name: 'invalid indexes', passed: true, value: '0', builtin: true },
      ];
    },
    async promoteRestored() {
      rec('promoteRestored', {});
      return { promotedAt: '2026-11-21T14:45:00Z', timeline: 2, lsn: '0/5000100' };
    },
    // Not recorded in calls.log: it writes to the repository only, and the call lists predate it.
    async recordPrimary(i) {
      return {
        repointed: true,
        host: '127.0.0.1',
        port: 6000,
        timeline: i.timeline,
        replaced: { host: '127.0.0.1', port: 5999 },
        since: '2026-11-21T14:45:01Z',
        overlay: `${runbook.name}/primary.json`,
      };
    },
    async stopRestored() {
      rec('stopRestored', {});
      return { stopped: true, dataDir: '/tmp/lifeboat-fake/recovery' };
    },
    async reconcileOutbox(i) {
      rec('reconcileOutbox', { highWater: i.highWater });
      return { table: 'outbox', highWater: i.highWater, markedPublished: 12 };
    },
    async invalidateCaches() {
      rec('invalidateCaches', {});
      return [{ kind: 'redis', target: 'redis $REDIS_URL orders:*', deleted: 7 }];
    },
    async resumeTraffic() {
      rec('resumeTraffic', {});
      return { kind: 'pgbouncer', pointedAt: '127.0.0.1:6000', steps: ['PAUSE appdb', 'RELOAD', 'RESUME appdb'] };
    },
    // Not recorded in calls.log: preflight probes that change nothing; `failures` may refuse them.
    async checkCacheEndpoints() {
      fail('checkCacheEndpoints');
      return { answered: ['redis $REDIS_URL (127.0.0.1:6379): PONG'] };
    },
    async checkTrafficEndpoint() {
      fail('checkTrafficEndpoint');
      return { answered: ['pgbouncer at $PGBOUNCER_ADMIN_URL (127.0.0.1:6432): 1.21.0'] };
    },
    async appendAudit(i) {
      calls.audit.push(i.line);
    },
    async writeEvidence(i) {
      calls.evidence.push(i.evidence);
      return { key: `${runbook.name}/evidence/${i.evidence.runId}.json`, repository: 'file:///nonexistent/repo' };
    },
    async notifyEscalation(i) {
      rec('notifyEscalation', { step: i.pending.step });
      return { delivered: false, detail: 'no webhook' };
    },
    async announceApproval(i) {
      rec('announceApproval', { step: i.pending.step, approvers: i.pending.approvers });
      return { delivered: true, detail: `approval message for ${i.pending.step}` };
    },
  };
}

export interface Harness {
  client: Client;
  taskQueue: string;
  host: string;
  calls: Calls;
  start(input: Omit<RecoveryInput, 'runbook'> & { runbook?: string }): Promise<WorkflowHandle>;
  status(h: WorkflowHandle): Promise<RecoveryStatus>;
  waitForStep(h: WorkflowHandle, step: string, state: string): Promise<RecoveryStatus>;
  stop(): Promise<void>;
}

let seq = 0;
export async function startHarness(
  label: string,
  runbookExtra: Record<string, unknown> | ((host: string) => Record<string, unknown>) = {},
  fakeOpts: Parameters<typeof fakeActivities>[2] = {},
): Promise<Harness> {
  seq += 1;
  const id = `${label}-${process.pid}-${seq}-${Date.now().toString(36)}`;
  const host = `fake${process.pid}x${seq}`;
  const taskQueue = `wf-${id}`;
  const runbook = testRunbook('orders', host, typeof runbookExtra === 'function' ? runbookExtra(host) : runbookExtra);
  const calls: Calls = { log: [], audit: [], evidence: [] };
  const activities = fakeActivities(runbook, calls, fakeOpts);
  const address = temporalAddress();
  const nc = await NativeConnection.connect({ address });
  const workers = [
    await Worker.create({ connection: nc, taskQueue, workflowBundle: await workflowBundle(), activities }),
    await Worker.create({ connection: nc, taskQueue: hostQueue(host), activities }),
  ];
  const running = workers.map((w) => w.run());
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  return {
    client,
    taskQueue,
    host,
    calls,
    start: (input) =>
      client.workflow.start('recoverToPointInTime', {
        taskQueue,
        workflowId: `recover-${id}-${calls.log.length}-${Math.random().toString(36).slice(2, 7)}`,
        args: [{ runbook: 'orders', ...input }],
      }),
    status: (h) => h.query(statusQuery),
    waitForStep: (h, step, state) =>
      waitFor(
        `step ${step} to be ${state}`,
        async () => {
          const s = await h.query(statusQuery);
          return s.steps.find((x) => x.id === step)?.state === state ? s : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      ),
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.all(running);
      await nc.close();
      await connection.close();
    },
  };
}

export const TIME_TARGET: Target = { time: '2026-11-21T14:31:59Z' };

/** The ApplicationFailure a workflow run failed with (its type is the catalogue's code). */
export async function workflowFailure(wf: WorkflowHandle): Promise<ApplicationFailure> {
  const err = await wf.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}
