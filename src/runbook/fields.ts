// The field schemas every runbook block is built from (names, environment
// variables, ports, paths, durations), each failing with what was expected.
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

export const identifier = (what: string) =>
  z
    .string({ error: `expected ${what} (lower-case letters, digits, '-' or '_')` })
    .regex(NAME_RE, { error: `expected ${what} (lower-case letters, digits, '-' or '_', at most 63 characters)` });

export const envName = z
  .string({ error: 'expected the name of an environment variable' })
  .regex(ENV_RE, { error: 'expected the name of an environment variable (letters, digits and _), not its value' });

export const port = z
  .number({ error: 'expected an integer between 1 and 65535' })
  .int({ error: 'expected an integer between 1 and 65535' })
  .min(1, { error: 'expected an integer between 1 and 65535' })
  .max(65535, { error: 'expected an integer between 1 and 65535' });

export const nonEmpty = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .trim()
    .min(1, { error: `expected ${what}, got an empty string` });

export const absolutePath = (what: string) =>
  z
    .string({ error: `expected ${what} as an absolute path` })
    .refine((p) => p.startsWith('/'), { error: `expected ${what} as an absolute path (starting with /)` });

/** Parses "15m", "24h", "1h30m", "90s", "2d" or a number of seconds into seconds. */
export function parseDurationSeconds(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = DURATION_RE.exec(value.trim());
  if (!m || value.trim() === '') return undefined;
  const [, d, h, min, s] = m;
  return Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0);
}

export const duration = z
  .union([z.string(), z.number()], { error: 'expected a duration such as "15m", "24h" or "1h30m"' })
  .transform((v, ctx) => {
    const seconds = parseDurationSeconds(v);
    if (seconds === undefined || seconds <= 0) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as "15m", "24h" or "1h30m"' });
      return z.NEVER;
    }
    return seconds;
  });
