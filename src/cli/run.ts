// How every CLI command runs: load its module lazily, map its outcome to the
// exit codes of shared/DESIGN.md §9, print errors for a person (what failed,
// then HINT lines), never a stack trace unless LIFEBOAT_DEBUG is set.
import { errorMessage, isLifeboatError, type ErrorCode } from '../errors';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Error codes that mean the caller's input was wrong (exit 2), not that an operation failed. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'INPUT_INVALID',
  'RUNBOOK_INVALID',
  'RUNBOOK_NOT_FOUND',
  'REPOSITORY_INVALID',
  'SECRET_MISSING',
]);

export interface CommandModule {
  // Each command declares the options commander parsed for it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  run(opts: any): Promise<number>;
}

export async function runCommand(load: () => Promise<CommandModule>, opts: Record<string, unknown>): Promise<void> {
  try {
    const mod = await load();
    process.exitCode = await mod.run(opts);
  } catch (err) {
    process.stderr.write(`lifeboat: ${errorMessage(err)}\n`);
    if (process.env.LIFEBOAT_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = isLifeboatError(err) && USAGE_CODES.has(err.code) ? EXIT.usage : EXIT.failed;
  }
}

/** Prints a value as pretty JSON on stdout (every read command's --json). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
}
