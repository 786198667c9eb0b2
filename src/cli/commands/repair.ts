// `lifeboat repair --runbook <name> --tables orders[,..] --before <target>
// [--after <target>] [--where <sql>] [--dry-run] [--keep-copy] [--follow]`:
// start `repairFromPointInTime` (DESIGN.md §4.3) with a validated input,
// print its id, how to approve its diff and the Temporal UI link; with
// --follow, watch it like `status --watch` until it closes.
import { LifeboatError, isLifeboatError } from '../../errors';
import { describeTarget, type Target } from '../../recovery/contract';
import { REPAIR_WORKFLOW } from '../../recovery/messages';
import { RepairInput, type ParsedRepairInput } from '../../repair/contract';
import { intOption, requireRunbook, type TemporalOptions } from '../context';
import { targetFromFlags, type TargetFlags } from '../target-options';
import { parseRunInput, startAndFollow, type RunKind } from '../start-run';

type Options = TemporalOptions & {
  runbook?: string;
  runbooksDir?: string;
  tables?: string;
  where?: string;
  before?: string;
  after?: string;
  incident?: string;
  reason?: string;
  dryRun?: boolean;
  keepCopy?: boolean;
  follow?: boolean;
  json?: boolean;
  workflowId?: string;
  interval?: string;
};

const REPAIR: RunKind<ParsedRepairInput> = {
  workflowType: REPAIR_WORKFLOW,
  idPrefix: 'repair',
  summary: repairSummary,
  details: repairDetails,
  host: 'drill',
  next: (input, workflowId) =>
    input.dryRun
      ? ['  (dry run: the run stops after the diff; read the counts and samples in status)']
      : [
          `  lifeboat approve ${workflowId} approve-repair --as <you>   (restores damaged and deleted rows; conflicts are left)`,
          `  lifeboat approve ${workflowId} approve-repair --as <you> --include changedSince   (also overwrites rows changed since the incident)`,
        ],
};

const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/**
 * A target written in one word: an ISO time with its zone, `name:<restore
 * point>`, `lsn:<lsn>` (or a bare LSN), `xid:<transaction id>`. Checked by the
 * same rules as recover's --to-... flags, and reported under this flag's name.
 */
export function targetFromWord(flag: '--before' | '--after', value: string): Target {
  const v = value.trim();
  const flags: TargetFlags = v.startsWith('name:')
    ? { toName: v.slice(5) }
    : v.startsWith('lsn:')
      ? { toLsn: v.slice(4) }
      : LSN.test(v)
        ? { toLsn: v }
        : v.startsWith('xid:')
          ? { toXid: v.slice(4) }
          : { toTime: v };
  try {
    return targetFromFlags(flags, `repair ${flag}`);
  } catch (err) {
    if (!isLifeboatError(err)) throw err;
    throw new LifeboatError('INPUT_INVALID', err.what.replace(/^--to-(time|name|lsn|xid)/, flag), {
      hints: [
        ...err.hints,
        `${flag} takes a time with its zone (2026-06-04T14:31:59Z), name:<restore point>, lsn:0/3000060 or xid:7421`,
      ],
    });
  }
}

const FLAG_OF: Record<string, string> = {
  runbook: '--runbook',
  tables: '--tables',
  where: '--where',
  before: '--before',
  after: '--after',
  incident: '--incident',
  reason: '--reason',
};

export function parseRepairInput(raw: Record<string, unknown>): ParsedRepairInput {
  return parseRunInput('repair', RepairInput, FLAG_OF, raw);
}

export async function run(opts: Options): Promise<number> {
  // Flags first: a wrong target or table list is reported before the runbook is even read.
  if (!opts.tables?.trim()) {
    throw new LifeboatError(
      'INPUT_INVALID',
      'repair needs --tables: the tables whose rows to compare and restore, e.g. --tables public.orders',
      {
        hints: ['each table needs a primary key; name several with commas: --tables public.orders,public.order_items'],
      },
    );
  }
  if (!opts.before) {
    throw new LifeboatError(
      'INPUT_INVALID',
      'repair needs --before: a point just before the incident, e.g. --before 2026-06-04T14:31:59Z',
      {
        hints: [
          'add --after <the end of the bad statement> so damaged rows can be told from rows legitimately changed since; without it every difference is only a candidate',
        ],
      },
    );
  }
  const before = targetFromWord('--before', opts.before);
  const after = opts.after !== undefined ? targetFromWord('--after', opts.after) : undefined;
  const intervalSeconds = intOption(opts.interval ?? '2', '--interval');
  const raw = {
    tables: opts.tables
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    before,
    ...(after ? { after } : {}),
    ...(opts.where !== undefined ? { where: opts.where } : {}),
    ...(opts.incident !== undefined ? { incident: opts.incident } : {}),
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    ...(opts.dryRun ? { dryRun: true } : {}),
    ...(opts.keepCopy ? { keepCopy: true } : {}),
  };
  // The input checked before the runbook is read (a bad table name is a usage error whatever the runbook), then with its name.
  parseRepairInput({ runbook: 'runbook', ...raw });
  const runbook = await requireRunbook(opts, 'repair');
  const input = parseRepairInput({ runbook: runbook.name, ...raw });
  return startAndFollow(opts, REPAIR, runbook.name, input, intervalSeconds);
}

export function repairSummary(input: ParsedRepairInput, markdown = true): string {
  const incident = input.incident ? (markdown ? `**${input.incident}** ` : `${input.incident}: `) : '';
  const tables = input.tables.join(', ');
  return `${incident}repair ${markdown ? `\`${tables}\`` : tables} of ${input.runbook} from ${describeTarget(input.before)}${input.after ? ` / ${describeTarget(input.after)}` : ''}${input.dryRun ? ' (dry run)' : ''}`;
}

function repairDetails(input: ParsedRepairInput, by: string | undefined): string {
  const rows: Array<[string, string | undefined]> = [
    ['runbook', input.runbook],
    ['tables', input.tables.join(', ')],
    ['where', input.where],
    ['before', describeTarget(input.before)],
    ['after', input.after ? describeTarget(input.after) : 'none: every difference is a candidate, none safe'],
    ['incident', input.incident],
    ['reason', input.reason],
    ['dry run', input.dryRun ? 'yes: stops after the diff, nothing written to the primary' : 'no'],
    ['keep copy', input.keepCopy ? 'yes' : 'no'],
    ['started by', by],
  ];
  return [
    '| | |',
    '|---|---|',
    ...rows.filter(([, v]) => v !== undefined).map(([k, v]) => `| ${k} | ${v!.replace(/\|/g, '\\|')} |`),
  ].join('\n');
}
