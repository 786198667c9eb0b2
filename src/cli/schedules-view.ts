// What the CLI prints about schedules, shared by `lifeboat drill --schedule`,
// `lifeboat backup --schedule` and `lifeboat schedules`.
import { connectClient } from '../client/temporal';
import { temporalTarget, type TemporalOptions } from './context';
import { table } from './format';
import { printJson } from './run';
import { TASK_QUEUE } from '../runbook/schema';
import { parseCron } from '../schedules/cron';
import { scheduleId, upsertSchedule, type LifeboatSchedule, type ScheduleKind } from '../schedules/schedules';

const time = (t: string) => t.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

/** `--schedule <cron>` of drill and backup: create or update the runbook's schedule and say what it will do. */
export async function scheduleCommand(
  opts: TemporalOptions & { schedule: string; json?: boolean },
  kind: ScheduleKind,
  runbook: string,
  input: Record<string, unknown>,
): Promise<number> {
  const cron = parseCron(opts.schedule, '--schedule');
  const temporal = await temporalTarget(opts);
  const client = await connectClient(temporal);
  try {
    const { created, schedule } = await upsertSchedule(client, { kind, runbook, cron, input, taskQueue: TASK_QUEUE });
    if (opts.json) {
      printJson({ created, ...schedule });
      return 0;
    }
    const id = scheduleId(kind, runbook);
    const out = [
      `schedule ${id} ${created ? 'created' : 'updated'}: ${schedule.workflowType} of runbook ${runbook}, cron '${cron}' (UTC), ` +
        'a run still going when the next is due is skipped',
      `next runs: ${schedule.nextRuns.slice(0, 3).map(time).join(', ') || '(none)'}`,
    ];
    if (schedule.paused)
      out.push(`the schedule is paused (kept from before); lifeboat schedules unpause ${runbook} ${kind} resumes it`);
    out.push(
      `run it now: lifeboat schedules trigger ${runbook} ${kind}; pause: lifeboat schedules pause ${runbook} ${kind}; ` +
        `or in the Temporal UI under Schedules > ${id}`,
    );
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    await client.connection.close();
  }
}

export function schedulesTable(list: readonly LifeboatSchedule[]): string {
  if (list.length === 0)
    return "no Lifeboat schedules (create one: lifeboat drill --runbook <name> --schedule '0 3 * * *')";
  return table(
    ['SCHEDULE', 'KIND', 'RUNBOOK', 'CRON', 'STATE', 'NEXT RUN', 'LAST RUN', 'LAST RESULT'],
    list.map((s) => [
      s.scheduleId,
      s.kind,
      s.runbook,
      s.cron,
      s.paused ? 'paused' : 'active',
      s.paused ? '-' : s.nextRuns[0] ? time(s.nextRuns[0]) : '-',
      s.lastResult ? `${time(s.lastResult.startedAt)} ${s.lastResult.workflowId}` : 'never run',
      s.lastResult?.status ?? '-',
    ]),
  );
}
