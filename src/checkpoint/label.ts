// The restore point label of `migrationCheckpoint` and `lifeboat checkpoint`.
// PostgreSQL keeps restore point names in a 64-byte field (MAXFNAMELEN, with
// its terminating zero): 63 bytes of UTF-8, not 63 characters. Imported by
// workflow code: no Node builtins here.

export const MAX_LABEL_BYTES = 63;

/** Why the label cannot name a restore point, or undefined when it can. */
export function labelProblem(label: unknown): string | undefined {
  if (typeof label !== 'string' || label.trim() === '')
    return 'expected a restore point name, e.g. "before-migration-0042"';
  const bytes = utf8Length(label);
  if (bytes > MAX_LABEL_BYTES)
    return `"${label}" is ${bytes} bytes; PostgreSQL restore point names are at most ${MAX_LABEL_BYTES} bytes`;
  if (label !== label.trim())
    return `"${label}" starts or ends with a space: recovery would need the name with that space exactly`;
  return undefined;
}

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** What a checkpoint returns: the name to recover to, and where it lies. */
export interface CheckpointResult {
  name: string;
  /** Where the restore point record ends in the WAL. */
  lsn: string;
  /** When it was created, by the primary's clock (ISO 8601 UTC). */
  time: string;
  /** The verified base backup a recovery to it would start from. */
  backupId: string;
  /** The WAL segment holding the restore point, archived before this returns. */
  segment: string;
}
