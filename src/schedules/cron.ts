// Cron expressions for `--schedule`, checked here before anything is sent to
// Temporal, so a typo is a usage error (exit 2) naming the flag and the field,
// not a gRPC "InvalidArgument" from the server. Temporal's own parser stays
// the final judge (create and update map its refusal to the same error).
//
// Accepted: five fields (minute hour day-of-month month day-of-week), each a
// list of `*`, `n`, `a-b`, with an optional `/step`; month and weekday names
// (JAN, MON); and the macros @yearly @annually @monthly @weekly @daily
// @midnight @hourly and `@every <duration>` (e.g. @every 6h).
import { LifeboatError } from '../errors';

const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  },
  // 7 is Sunday too, as in most crons.
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
] as const;

const MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];
const EVERY = /^@every\s+(\d+(ms|s|m|h|d))+$/;

const EXAMPLES = [
  "'0 3 * * *' (03:00 every day, UTC)",
  "'30 2 * * SUN' (02:30 on Sundays)",
  "'*/15 * * * *' (every 15 minutes)",
  "'@daily' or '@every 6h'",
];

/** The expression, trimmed with single spaces; throws a usage error naming `flag` when it is not a cron we accept. */
export function parseCron(value: unknown, flag = '--schedule'): string {
  const expr = typeof value === 'string' ? value.trim().replace(/\s+/g, ' ') : '';
  const fail = (why: string): never => {
    throw new LifeboatError('INPUT_INVALID', `${flag} ${JSON.stringify(value)} is not a cron expression: ${why}`, {
      hints: [
        `five fields: minute hour day-of-month month day-of-week, e.g. ${EXAMPLES.join(', ')}`,
        'times are UTC; quote the expression so the shell leaves the * alone',
      ],
    });
  };
  if (!expr) return fail('it is empty');
  if (expr.startsWith('@')) {
    if (MACROS.includes(expr.toLowerCase()) || EVERY.test(expr)) return expr;
    return fail(`unknown macro ${expr.split(' ')[0]} (known: ${MACROS.join(' ')} and @every <duration>)`);
  }
  const parts = expr.split(' ');
  if (parts.length !== FIELDS.length) return fail(`expected 5 fields, got ${parts.length}`);
  parts.forEach((part, i) => {
    const field = FIELDS[i]!;
    const problem = checkField(part, field);
    if (problem) fail(`${field.name} field "${part}": ${problem}`);
  });
  return expr;
}

function checkField(part: string, field: (typeof FIELDS)[number]): string | undefined {
  for (const item of part.split(',')) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(item);
    if (!m) return `"${item}" is not *, n, a-b or one of them with /step`;
    const [, range = '', step] = m;
    if (step !== undefined && Number(step) < 1) return 'a step must be at least 1';
    if (range === '*') continue;
    const bounds = range.split('-');
    if (bounds.length > 2) return `"${range}" is not a range a-b`;
    const values = bounds.map((b) => valueOf(b, field));
    for (const [j, v] of values.entries()) {
      if (v === undefined) return `"${bounds[j]}" is not a number${'names' in field ? ' or a name' : ''}`;
      if (v < field.min || v > field.max) return `${v} is outside ${field.min}-${field.max}`;
    }
    if (values.length === 2 && values[0]! > values[1]!) return `the range ${range} runs backwards`;
  }
  return undefined;
}

function valueOf(token: string, field: (typeof FIELDS)[number]): number | undefined {
  if (/^\d+$/.test(token)) return Number(token);
  if ('names' in field) {
    const i = (field.names as readonly string[]).indexOf(token.toUpperCase());
    if (i >= 0) return field.name === 'month' ? i + 1 : i;
  }
  return undefined;
}
