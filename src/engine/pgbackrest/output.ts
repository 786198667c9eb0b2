// What pgBackRest's text output says, for the engine (./engine.ts): verify's
// findings (its --output=text --verbose report), the backups expire names as
// expired (its dry run removes nothing), and a failed command as a check's
// problem.
import type { HealthProblem } from '../../catalog/chain';
import { errorMessage, isLifeboatError } from '../../errors';

/** Backup labels of `known` that expire's lines name as expired (its dry run's "expire full backup set: A, B"). */
export function expiredInLines(lines: readonly string[], known: readonly string[]): string[] {
  const named = new Set(
    lines
      .filter((l) => /expire (full|diff|incr|differential|incremental)? ?backup/.test(l))
      .flatMap((l) => l.match(/\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?/g) ?? []),
  );
  return known.filter((id) => named.has(id));
}

/** The lines of `verify --output=text --verbose` that report something wrong: "missing: 1, checksum invalid: 0, ..." with the archive or backup above it. */
export function verifyFindings(text: string): string[] {
  const out: string[] = [];
  let subject = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (/^(archiveId|backup):/.test(line)) subject = line.replace(/, total .*$/, '').replace(/, status: .*$/, '');
    else if (/^missing: \d+/.test(line)) {
      const bad = [...line.matchAll(/([a-z ]+): (\d+)/g)]
        .filter((m) => m[2] !== '0')
        .map((m) => `${m[1]!.trim()} ${m[2]}`);
      if (bad.length > 0) out.push(`${subject}: ${bad.join(', ')}`);
    } else if (/^status: /.test(line) && line !== 'status: ok') out.push(`stanza ${line}`);
  }
  return out;
}

/** A command that failed, as one problem of `lifeboat check` (pgBackRest's own error kept). */
export function problemOf(kind: string, err: unknown): HealthProblem {
  if (isLifeboatError(err)) return { kind, message: err.what, hints: [...err.hints] };
  return { kind, message: errorMessage(err), hints: [] };
}
