// pgBackRest's errors in Lifeboat's catalogue (src/errors.ts). pgBackRest
// exits with its error code and prints `ERROR: [040]: text` and its own
// `HINT:` lines on stderr; the Lifeboat error keeps both, word for word, in
// its hints, so an operator can look the code up in pgBackRest's docs.
import { LifeboatError, type ErrorCode } from '../../errors';

export interface PgBackRestFailure {
  /** pgBackRest's error code (its exit code), e.g. 40. */
  code: number;
  /** Its message, without the "ERROR: [040]: " prefix. */
  text: string;
  /** Its own HINT lines. */
  hints: string[];
}

/** The first `ERROR: [NNN]: ...` of pgBackRest's output, with the HINT lines under it. */
export function parseFailure(output: string, exitCode: number): PgBackRestFailure {
  const lines = output.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    // Console lines: "ERROR: [040]: ..."; log-format lines: "2026-12-04 05:41:11.193 P00  ERROR: [040]: ...".
    const m = /ERROR: \[(\d+)\]: (.*)$/.exec(lines[i]!);
    if (!m) continue;
    const hints: string[] = [];
    const text = [m[2]!.trim()];
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j]!.trim();
      const h = /^HINT: (.*)$/.exec(l);
      if (h) hints.push(h[1]!);
      else if (l === '' || /^(?:\d{4}-\d\d-\d\d .*)?(?:ERROR|WARN|INFO|DETAIL|DEBUG|P\d\d)/.test(l)) break;
      else if (hints.length === 0) text.push(l);
      else hints[hints.length - 1] += ` ${l}`;
    }
    return { code: Number(m[1]), text: text.join(' '), hints };
  }
  const tail = lines
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-3)
    .join(' ');
  return { code: exitCode, text: tail || `exit ${exitCode} without a message`, hints: [] };
}

/**
 * pgBackRest error codes (its src/build/error.yaml) Lifeboat can name; any
 * other is TOOL_FAILED, or the caller's default (BACKUP_FAILED for a backup).
 */
const BY_CODE: Record<number, { code: ErrorCode; hint?: string }> = {
  27: {
    code: 'RUNBOOK_INVALID',
    hint: 'pgBackRest finds no usable configuration: check engine.stanza and engine.configPath in the runbook, and the stanza section of pgbackrest.conf',
  },
  29: { code: 'INPUT_INVALID' },
  31: {
    code: 'RUNBOOK_INVALID',
    hint: 'an option pgBackRest refuses: check engine in the runbook and pgbackrest.conf',
  },
  32: {
    code: 'RUNBOOK_INVALID',
    hint: 'an option value pgBackRest refuses: check engine.repo in the runbook against the repoN- options of pgbackrest.conf',
  },
  37: {
    code: 'RUNBOOK_INVALID',
    hint: 'a required pgBackRest option is missing: is the stanza in pgbackrest.conf (engine.configPath)?',
  },
  38: { code: 'PG_RUNNING', hint: 'nothing was restored: stop that PostgreSQL first, or restore elsewhere' },
  40: {
    code: 'DATA_DIR_NOT_EMPTY',
    hint: 'Lifeboat never lets pgBackRest overwrite a directory it has not moved aside; nothing was written',
  },
  44: {
    code: 'REPOSITORY_INVALID',
    hint: 'the repository belongs to another database (system identifier or version): is engine.stanza the right stanza?',
  },
  45: { code: 'ARCHIVE_CONFLICT' },
  49: { code: 'REPOSITORY_UNREACHABLE' },
  50: {
    code: 'TOOL_FAILED',
    hint: 'another pgBackRest command holds the stanza lock (a backup or expire running): retried',
  },
  55: {
    code: 'REPOSITORY_INVALID',
    hint: 'a file pgBackRest needs is missing from its repository: pgbackrest verify lists what it finds',
  },
  56: { code: 'PG_UNREACHABLE' },
  58: {
    code: 'REPOSITORY_INVALID',
    hint: 'the stanza was created for another database: pgbackrest stanza-upgrade after a major upgrade',
  },
  75: { code: 'BACKUP_NOT_FOUND', hint: 'pgbackrest info --stanza=<stanza> lists the backups it holds' },
  82: {
    code: 'TOOL_FAILED',
    hint: 'WAL did not reach the pgBackRest repository in time: is archive_command pgbackrest archive-push, and does it succeed (the PostgreSQL log)?',
  },
  103: { code: 'REPOSITORY_INVALID' },
};

/** A LifeboatError for a failed pgbackrest command, keeping pgBackRest's code, text and hints. */
export function failureError(
  command: string,
  f: PgBackRestFailure,
  fallback: ErrorCode = 'TOOL_FAILED',
): LifeboatError {
  const mapped = BY_CODE[f.code];
  const code = mapped?.code ?? fallback;
  const own = `pgBackRest error [${String(f.code).padStart(3, '0')}]: ${f.text}`;
  return new LifeboatError(code, `pgbackrest ${command} failed: ${f.text}`, {
    hints: [own, ...f.hints.map((h) => `pgBackRest: ${h}`), ...(mapped?.hint ? [mapped.hint] : [])],
    details: { pgbackrest: { code: f.code, text: f.text, hints: f.hints } },
  });
}
