// What the recovery commands (recover, retarget, approve and the other
// decisions) read from their flags: the recovery target, the step, and who
// decides. Every mistake is a usage error (exit 2) that names the flag and
// what was expected, before anything is sent to Temporal.
import { LifeboatError } from '../errors';
import { REPAIR_ONLY_STEP_IDS, STEP_IDS, Target, type StepId } from '../recovery/contract';

/** Every step id a run may have: a recovery's, then a repair's own (DESIGN.md §4.1, §4.3). */
const ALL_STEP_IDS: readonly StepId[] = [...STEP_IDS, ...REPAIR_ONLY_STEP_IDS];

export interface TargetFlags {
  toTime?: string;
  toName?: string;
  toLsn?: string;
  toXid?: string;
  toLatest?: boolean;
}

const TARGET_FLAGS = ['--to-time', '--to-name', '--to-lsn', '--to-xid', '--to-latest'] as const;
const ONE_OF = `pass exactly one of ${TARGET_FLAGS.join(', ')}`;

const ACCEPTED_TIMES = 'accepted forms: 2026-06-04T14:31:59Z, 2026-06-04T16:31:59+02:00, "2026-06-04 14:31:59+00"';

// A date and time that would be a valid target if it named its zone.
const TIME_WITHOUT_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/** The one target the flags name, checked against the contract's Target schema. */
export function targetFromFlags(flags: TargetFlags, command: string): Target {
  const given: Array<[(typeof TARGET_FLAGS)[number], Record<string, unknown>]> = [];
  if (flags.toTime !== undefined) given.push(['--to-time', { time: flags.toTime }]);
  if (flags.toName !== undefined) given.push(['--to-name', { name: flags.toName }]);
  if (flags.toLsn !== undefined) given.push(['--to-lsn', { lsn: flags.toLsn }]);
  if (flags.toXid !== undefined) given.push(['--to-xid', { xid: flags.toXid }]);
  if (flags.toLatest === true) given.push(['--to-latest', { latest: true }]);

  if (given.length === 0) {
    throw new LifeboatError('INPUT_INVALID', `${command} needs a target: ${ONE_OF}`, {
      hints: [
        'e.g. --to-time 2026-06-04T14:31:59Z (just before the incident, with its zone)',
        '--to-name <restore point> (from lifeboat checkpoint), --to-lsn 0/3000060, --to-xid 7421, or --to-latest (the end of the archive)',
      ],
    });
  }
  if (given.length > 1) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `${command} takes one target, got ${given.map(([f]) => f).join(' and ')}: ${ONE_OF}`,
    );
  }
  const [flag, value] = given[0]!;
  const shown = JSON.stringify(Object.values(value)[0]);

  // Checked before the schema: the schema would say "expected a zone", but
  // the operator needs to know why the zone matters here.
  if (flag === '--to-time' && TIME_WITHOUT_ZONE.test(flags.toTime!.trim())) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `--to-time ${shown} has no time zone: this machine, the workers and PostgreSQL could each read it differently`,
      { hints: [ACCEPTED_TIMES, 'Z means UTC; the incident timeline in most tools is in UTC'] },
    );
  }
  const parsed = Target.safeParse(value);
  if (!parsed.success) {
    const message = parsed.error.issues[0]?.message ?? '';
    throw new LifeboatError(
      'INPUT_INVALID',
      `${flag} ${shown}: ${message.startsWith('expected') ? message : FALLBACK[flag]}`,
      {
        ...(flag === '--to-time' ? { hints: [ACCEPTED_TIMES] } : {}),
      },
    );
  }
  return parsed.data;
}

// Zod's own message where the contract gives none (the xid union's regex).
const FALLBACK: Record<(typeof TARGET_FLAGS)[number], string> = {
  '--to-time': 'expected an ISO 8601 time with a zone',
  '--to-name': 'expected the restore point name',
  '--to-lsn': 'expected an LSN such as "0/3000060"',
  '--to-xid': 'expected a transaction id (a positive integer)',
  '--to-latest': 'expected no value',
};

/** A step id of DESIGN.md §4.1, with a "did you mean" for a near miss. */
export function stepFromArgument(value: string): StepId {
  const step = value.trim();
  if ((ALL_STEP_IDS as readonly string[]).includes(step)) return step as StepId;
  const near = nearestStep(step);
  throw new LifeboatError('INPUT_INVALID', `unknown step "${value}"${near ? `: did you mean "${near}"?` : ''}`, {
    hints: [
      `steps: ${STEP_IDS.join(', ')}; a repair's own: ${REPAIR_ONLY_STEP_IDS.join(', ')}`,
      'lifeboat status <workflowId> shows which step is waiting',
    ],
  });
}

/** The closest step id by edit distance, when it is close enough to be a typo (or the step named without its prefix). */
export function nearestStep(value: string): StepId | undefined {
  const v = value.toLowerCase();
  let best: { step: StepId; distance: number } | undefined;
  for (const step of ALL_STEP_IDS) {
    const d = editDistance(v, step);
    if (!best || d < best.distance) best = { step, distance: d };
  }
  if (best && best.distance <= Math.max(2, Math.floor(v.length / 3))) return best.step;
  // "promote" for approve-promote is caught above (it is a step itself);
  // "fence" or "resume" are the approval steps without their prefix.
  return ALL_STEP_IDS.find((s) => v.length >= 4 && (s.endsWith(`-${v}`) || s.startsWith(`${v}-`)));
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** `--as <who>`: the name checked against the runbook's approvers and written to the audit log. */
export function whoFromFlag(value: string | undefined, command: string): string {
  const who = value?.trim();
  if (!who) {
    throw new LifeboatError('INPUT_INVALID', `${command} needs --as <who>: the name the runbook lists as an approver`, {
      hints: [`e.g. lifeboat ${command} ... --as alice`, 'every decision is written to the audit log under this name'],
    });
  }
  return who;
}
