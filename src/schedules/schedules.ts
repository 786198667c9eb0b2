// Temporal Schedules for Lifeboat's unattended work (shared/DESIGN.md §1):
// one schedule per runbook and kind, `lifeboat-drill-<runbook>` starting
// `restoreDrill` and `lifeboat-backup-<runbook>` starting `baseBackup`.
// They are plain Temporal schedules, so the Temporal UI pauses, triggers and
// deletes them as well as `lifeboat schedules` does.
//
// The server turns a cron string into calendar specs and does not keep the
// string, so the cron an operator typed is kept in the memo of the action
// (updatable, and copied onto every run it starts) and of the schedule.
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsAction,
} from '@temporalio/client';
import { LifeboatError, errorMessage } from '../errors';

export const SCHEDULE_KINDS = ['drill', 'backup'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

export const SCHEDULE_WORKFLOW: Record<ScheduleKind, string> = { drill: 'restoreDrill', backup: 'baseBackup' };
const KIND_WORDS: Record<ScheduleKind, string> = { drill: 'restore drill', backup: 'base backup' };
const ID_PREFIX = 'lifeboat-';

export function scheduleId(kind: ScheduleKind, runbook: string): string {
  return `${ID_PREFIX}${kind}-${runbook}`;
}

export interface ScheduleRequest {
  kind: ScheduleKind;
  runbook: string;
  /** Checked by parseCron (src/schedules/cron.ts). */
  cron: string;
  /** The workflow's one input. */
  input: Record<string, unknown>;
  taskQueue: string;
}

/** What `lifeboat schedules` shows for one schedule. */
export interface LifeboatSchedule {
  scheduleId: string;
  kind: ScheduleKind | 'unknown';
  runbook: string;
  cron: string;
  workflowType: string;
  paused: boolean;
  note?: string;
  /** Upcoming start times, ISO 8601 UTC. */
  nextRuns: string[];
  /** The most recent run the schedule started, with the status Temporal reports for it now. */
  lastResult?: { workflowId: string; runId: string; startedAt: string; status: string };
  running: string[];
  actionsTaken: number;
  skippedOverlap: number;
}

interface LifeboatMemo {
  kind: ScheduleKind;
  runbook: string;
  cron: string;
}

function action(req: ScheduleRequest): ScheduleOptionsAction {
  const memo: LifeboatMemo = { kind: req.kind, runbook: req.runbook, cron: req.cron };
  return {
    type: 'startWorkflow',
    workflowType: SCHEDULE_WORKFLOW[req.kind],
    // The schedule appends the start time: drill-orders-2026-11-22T03:00:00Z.
    workflowId: `${req.kind}-${req.runbook}`,
    taskQueue: req.taskQueue,
    args: [req.input],
    memo: { lifeboat: memo },
    staticSummary: `Scheduled ${KIND_WORDS[req.kind]} of runbook ${req.runbook} (schedule ${scheduleId(req.kind, req.runbook)}, cron \`${req.cron}\`)`,
  };
}

function note(req: ScheduleRequest): string {
  return `Lifeboat ${KIND_WORDS[req.kind]} of runbook ${req.runbook}, cron '${req.cron}' (UTC); lifeboat schedules lists it`;
}

/**
 * Creates the schedule, or updates the one already there (spec, action,
 * policies); a paused schedule stays paused. Overlap SKIP: a drill or backup
 * still running when the next is due is not run twice at once.
 */
export async function upsertSchedule(
  client: Client,
  req: ScheduleRequest,
): Promise<{ created: boolean; schedule: LifeboatSchedule }> {
  const id = scheduleId(req.kind, req.runbook);
  const spec = { cronExpressions: [req.cron] };
  // A schedule whose server was down catches up at most one missed run per
  // hour of outage instead of a year's worth (the default catch-up window).
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false } as const;
  let created = true;
  try {
    await client.schedule.create({
      scheduleId: id,
      spec,
      action: action(req),
      policies,
      memo: { lifeboat: { kind: req.kind, runbook: req.runbook, cron: req.cron } satisfies LifeboatMemo },
      state: { note: note(req) },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw scheduleError(err, id, req.cron);
    created = false;
    try {
      await client.schedule.getHandle(id).update((prev) => ({
        spec,
        action: action(req),
        policies,
        state: { paused: prev.state.paused, note: prev.state.paused ? prev.state.note : note(req) },
      }));
    } catch (updateErr) {
      throw scheduleError(updateErr, id, req.cron);
    }
  }
  return { created, schedule: await describeSchedule(client, id) };
}

/** The server's refusal of a cron we let through, as the usage error it is. */
function scheduleError(err: unknown, id: string, cron: string): Error {
  const message = errorMessage(err);
  if (/invalid|cron|spec/i.test(message) && /argument|invalid/i.test(message)) {
    return new LifeboatError(
      'INPUT_INVALID',
      `--schedule ${JSON.stringify(cron)}: Temporal refused the schedule ${id}: ${message}`,
      {
        hints: ["five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'"],
        cause: err,
      },
    );
  }
  return new LifeboatError('TOOL_FAILED', `creating the schedule ${id} failed: ${message}`, { cause: err });
}

/** The schedule an operator named: a schedule id, or a runbook and a kind. */
export function scheduleIdFromArgs(args: readonly string[]): string {
  const [first, second] = args;
  if (args.length === 1 && first?.startsWith(ID_PREFIX)) return first;
  if (args.length === 2 && first && second) {
    const kind = [first, second].find((a) => (SCHEDULE_KINDS as readonly string[]).includes(a)) as
      ScheduleKind | undefined;
    if (kind) return scheduleId(kind, kind === second ? first : second);
  }
  throw new LifeboatError(
    'INPUT_INVALID',
    `expected <runbook> <kind> (kind: ${SCHEDULE_KINDS.join(' or ')}) or a schedule id, got "${args.join(' ')}"`,
    {
      hints: [
        'e.g. lifeboat schedules pause orders drill',
        'or lifeboat schedules pause lifeboat-drill-orders',
        'lifeboat schedules lists them',
      ],
    },
  );
}

export async function describeSchedule(client: Client, id: string): Promise<LifeboatSchedule> {
  let d: ScheduleDescription;
  try {
    d = await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) {
      throw new LifeboatError('INPUT_INVALID', `no schedule "${id}" in namespace ${client.options.namespace}`, {
        hints: [
          'lifeboat schedules lists the schedules Lifeboat made',
          'create one with lifeboat drill --runbook <name> --schedule <cron> (or lifeboat backup ...)',
        ],
        cause: err,
      });
    }
    throw err;
  }
  const memo = readMemo(d.action.memo) ?? readMemo(d.memo);
  const recent = d.info.recentActions[d.info.recentActions.length - 1];
  let lastResult: LifeboatSchedule['lastResult'];
  if (recent) {
    const { workflowId, firstExecutionRunId: runId } = recent.action.workflow;
    let status = 'UNKNOWN';
    try {
      status = (await client.workflow.getHandle(workflowId, runId).describe()).status.name;
    } catch {
      // Deleted by retention of the namespace: its status is no longer known.
    }
    lastResult = { workflowId, runId, startedAt: recent.takenAt.toISOString(), status };
  }
  return {
    scheduleId: id,
    kind: memo?.kind ?? 'unknown',
    runbook: memo?.runbook ?? '',
    cron: memo?.cron ?? '',
    workflowType: d.action.workflowType,
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
    ...(lastResult ? { lastResult } : {}),
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
  };
}

/** Every schedule Lifeboat made in the namespace (ids lifeboat-*), sorted by id. */
export async function listSchedules(client: Client): Promise<LifeboatSchedule[]> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(ID_PREFIX)) ids.push(s.scheduleId);
  ids.sort();
  const out: LifeboatSchedule[] = [];
  for (const id of ids) {
    try {
      out.push(await describeSchedule(client, id));
    } catch (err) {
      // Listed, then deleted before we looked: the list is eventually consistent.
      if (!(err instanceof LifeboatError && err.cause instanceof ScheduleNotFoundError)) throw err;
    }
  }
  return out;
}

function readMemo(memo: Record<string, unknown> | undefined): LifeboatMemo | undefined {
  const m = memo?.lifeboat as Partial<LifeboatMemo> | undefined;
  if (!m || typeof m.runbook !== 'string' || typeof m.cron !== 'string') return undefined;
  if (!(SCHEDULE_KINDS as readonly string[]).includes(m.kind ?? '')) return undefined;
  return m as LifeboatMemo;
}
