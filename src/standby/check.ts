// The warm standby in `lifeboat check` (either engine's: check.ts and
// engine-views.ts in src/cli/commands): read only on its own host (--host, or
// the OS host name), since check runs on the primary's host too, where the
// standby's directory is absent, and that must not page anyone. Fallen off
// or not running is a problem (the warm path is gone); behind, a warning.
import type { HealthProblem } from '../catalog/chain';
import { errorMessage } from '../errors';
import type { Runbook } from '../runbook/schema';
import { onStandbyHost, readStandbyStatus, standbyLine, type StandbyStatus } from './status';

export interface StandbyCheck {
  /** Read here, on the standby's host. */
  status?: StandbyStatus;
  /** Its line in check's text output. */
  line?: string;
  /** Set on any other host: the standby's host, where check reports it. */
  checkedOn?: string;
  problems: HealthProblem[];
  notes: string[];
}

/** The standby of the runbook as check reports it; nothing when the runbook declares none. */
export async function checkStandby(runbook: Runbook | undefined, hostOption?: string): Promise<StandbyCheck> {
  const out: StandbyCheck = { problems: [], notes: [] };
  if (!runbook?.standby) return out;
  const where = onStandbyHost(runbook.standby.host, hostOption);
  if (!where.here) {
    out.checkedOn = runbook.standby.host;
    out.line = standbyElsewhere(runbook, where.thisHost);
    return out;
  }
  const status = await readStandbyStatus(runbook).catch((err: unknown) => errorMessage(err));
  if (typeof status === 'string') {
    out.notes.push(`standby not checked: ${status}`);
    return out;
  }
  out.status = status;
  out.line = standbyLine(status);
  out.problems.push(...standbyProblems(runbook, status));
  return out;
}

/** What check says on any other host than the standby's: where to check it, not a problem. */
function standbyElsewhere(runbook: Runbook, thisHost: string): string {
  const host = runbook.standby!.host;
  return `standby: checked on host ${host}, not here (${thisHost}): lifeboat check --runbook ${runbook.name} --host ${host} on that host reports it`;
}

/** The standby as findings: fallen off or not running is a problem (the warm path is gone); behind, a warning. */
function standbyProblems(runbook: Runbook, s: StandbyStatus): HealthProblem[] {
  const build = `lifeboat standby build --runbook ${runbook.name} (on host ${runbook.standby!.host})`;
  if (s.takenOver) {
    return [
      {
        kind: 'standby-taken-over',
        message: `standby ${s.dataDir}: ${s.fellOff}`,
        hints: [
          `it became the recovery's copy in ${s.takenOver.into}; until it is rebuilt, recoveries restore from a backup (nothing rebuilds it on its own): ${build}`,
        ],
      },
    ];
  }
  if (s.fellOff) {
    return [
      {
        kind: 'standby-fell-off',
        message: `standby in ${s.dataDir}: ${s.fellOff}; recoveries restore from a backup until it is rebuilt`,
        hints: [`rebuild it: ${build}; the old copy is moved aside, never deleted`],
      },
    ];
  }
  return s.warnings.map((w) => ({
    kind: 'standby-behind',
    message: `standby in ${s.dataDir}: ${w}`,
    hints:
      s.state === 'stopped'
        ? [`start it: ${build}`]
        : [
            `see lifeboat standby status --runbook ${runbook.name} and its server log${s.logFile ? ` ${s.logFile}` : ''}`,
          ],
  }));
}
