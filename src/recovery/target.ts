// The recovery target (DESIGN.md §4): exactly one of a time, a restore point
// name, an LSN, a transaction id or the end of the archive; the same for
// recoveries, drills, repairs and retargets.
//
// Bundled into workflow code with contract.ts: zod only, no Node builtins.
import { z } from 'zod';

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/;
const LSN_RE = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/** Exactly one of time, name, lsn, xid or latest (DESIGN.md §4). */
export const Target = z.union(
  [
    z.strictObject({
      time: z
        .string({ error: 'expected an ISO 8601 time with a zone, e.g. "2026-06-04T14:31:59Z"' })
        .regex(ISO_WITH_ZONE, { error: 'expected an ISO 8601 time with a zone, e.g. "2026-06-04T14:31:59Z"' })
        .refine((s) => !Number.isNaN(Date.parse(s)), { error: 'expected a real date and time' }),
    }),
    z.strictObject({
      name: z
        .string()
        .min(1, { error: 'expected the restore point name' })
        .max(63, { error: 'restore point names are at most 63 bytes' }),
    }),
    z.strictObject({ lsn: z.string().regex(LSN_RE, { error: 'expected an LSN such as "0/3000060"' }) }),
    z.strictObject({
      xid: z
        .union([z.string().regex(/^\d+$/), z.number().int().positive()], {
          error: 'expected a transaction id (a positive integer)',
        })
        .transform(String),
    }),
    z.strictObject({ latest: z.literal(true, { error: 'expected true' }) }),
  ],
  {
    error:
      'expected exactly one of { "time": "..." }, { "name": "..." }, { "lsn": "..." }, { "xid": "..." } or { "latest": true }',
  },
);
export type Target = z.output<typeof Target>;

export function describeTarget(t: Target): string {
  if ('time' in t) return `time ${t.time}`;
  if ('name' in t) return `restore point "${t.name}"`;
  if ('lsn' in t) return `LSN ${t.lsn}`;
  if ('xid' in t) return `transaction ${t.xid}`;
  return 'the end of the archive';
}
