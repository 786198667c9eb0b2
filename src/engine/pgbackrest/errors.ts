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

/** pgBackRest's error names as `info` prints them in a repository's status ("[CryptoError] ..."), by code (its src/build/error.yaml). */
const CODE_OF_NAME: Record<string, number> = {
  ProtocolError: 39,
  FileOpenError: 41,
  FileReadError: 42,
  HostConnectError: 49,
  FileMissingError: 55,
  CryptoError: 95,
  RepoInvalidError: 103,
};

/**
 * A repository's failure as `info --output=json` reports it (status 99,
 * "[CryptoError] unable to verify certificate ..."): `info` itself exits 0.
 */
export function failureOfRepoStatus(message: string): PgBackRestFailure {
  const m = /^\[(\w+)\] ([\s\S]*)$/.exec(message);
  const text = (m ? m[2]! : message).replace(/\s*\n\s*/g, ' ').trim();
  return { code: (m && CODE_OF_NAME[m[1]!]) || 99, text, hints: [] };
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

/**
 * Failures reaching an object-store repository (repoN-type=s3, TLS), named
 * for what they are whatever pgBackRest's code: a certificate pgBackRest
 * refused ([095], CryptoError, which a wrong cipher passphrase also raises),
 * keys the store refused (HTTP 403), keys missing ([037] for repoN-s3-key).
 * pgBackRest redacts the authorization header in what it prints; no key
 * reaches these messages.
 */
function storageFailure(
  command: string,
  f: PgBackRestFailure,
): { code: ErrorCode; what: string; hints: string[] } | undefined {
  const first = f.text.split(/\s+\*\*\*/)[0]!.trim();
  if (f.code === 95 && /certificate|\bTLS\b|\bSSL\b/i.test(f.text)) {
    return {
      code: 'REPOSITORY_UNREACHABLE',
      what: `pgbackrest ${command} failed: the repository's TLS certificate was refused: ${first}`,
      hints: [
        "pgBackRest verifies the S3 endpoint's TLS certificate against repoN-storage-ca-file (or repoN-storage-ca-path, else the system's CAs): point it at the CA that signed the endpoint's certificate; never turn verification off (repoN-storage-verify-tls=n)",
        ...(/unable to find hostname/.test(f.text)
          ? [
              "pgBackRest 2.45 matches repoN-s3-endpoint against the certificate's DNS names and common name only, not its IP addresses: a certificate for an IP endpoint must also carry it as a DNS name (subjectAltName DNS:<ip>)",
            ]
          : []),
        'nothing was read or written in the repository',
      ],
    };
  }
  if (/HTTP request failed with 403/.test(f.text)) {
    const s3Code = /x-minio-error-code: (\S+)|<Code>([^<]+)<\/Code>/.exec(f.text);
    return {
      code: 'REPOSITORY_UNREACHABLE',
      what: `pgbackrest ${command} failed: the S3 store refused pgBackRest's request (HTTP 403${s3Code ? ` ${s3Code[1] ?? s3Code[2]}` : ''})`,
      hints: [
        'are repoN-s3-key and repoN-s3-key-secret (in pgbackrest.conf, or PGBACKREST_REPON_S3_KEY and PGBACKREST_REPON_S3_KEY_SECRET in the environment) keys of this store, allowed on repoN-s3-bucket?',
      ],
    };
  }
  if (
    f.code === 37 &&
    /requires option: repo\d+-(s3-key|s3-key-secret|s3-token|cipher-pass|azure-key|gcs-key)\b/.test(f.text)
  ) {
    const option = /requires option: (\S+)/.exec(f.text)![1]!;
    const env = `PGBACKREST_${option.toUpperCase().replace(/-/g, '_')}`;
    return {
      code: 'SECRET_MISSING',
      what: `pgbackrest ${command} failed: no ${option} for the repository`,
      hints: [
        `pgBackRest reads ${option} from its configuration file (a file only the OS user reads) or ${env} in its environment; Lifeboat passes the worker's PGBACKREST_* variables to the pgbackrest it runs, and nothing else`,
        "a restored copy's restore_command (pgbackrest archive-get) runs under its postmaster, which gets no secret from Lifeboat: for recoveries the keys belong in pgBackRest's configuration file",
      ],
    };
  }
  return undefined;
}

/** A LifeboatError for a failed pgbackrest command, keeping pgBackRest's code, text and hints. */
export function failureError(
  command: string,
  f: PgBackRestFailure,
  fallback: ErrorCode = 'TOOL_FAILED',
): LifeboatError {
  const mapped = BY_CODE[f.code];
  const storage = storageFailure(command, f);
  const code = storage?.code ?? mapped?.code ?? fallback;
  const own = `pgBackRest error [${String(f.code).padStart(3, '0')}]: ${f.text}`;
  return new LifeboatError(code, storage?.what ?? `pgbackrest ${command} failed: ${f.text}`, {
    hints: [
      own,
      ...f.hints.map((h) => `pgBackRest: ${h}`),
      ...(storage ? storage.hints : mapped?.hint ? [mapped.hint] : []),
    ],
    details: { pgbackrest: { code: f.code, text: f.text, hints: f.hints } },
  });
}

/** A stanza the worker reads only with PGBACKREST_* variables, which a restored copy's postmaster never gets (engine.ts requireConfigAlone). */
export function onlyInEnvironmentError(stanza: string, names: string[], without: string): LifeboatError {
  return new LifeboatError(
    'SECRET_MISSING',
    `pgBackRest stanza ${stanza} is readable only with the worker's ${names.join(', ')}: the restored copy's restore_command (pgbackrest archive-get, run by its postmaster) would not have them`,
    {
      hints: [
        'nothing was written',
        "put the repository's keys (repoN-s3-key, repoN-s3-key-secret, repoN-cipher-pass) in pgBackRest's configuration file, readable only by the OS user (mode 0600; pgbackrest --config=<engine.configPath> reads that file alone, not /etc/pgbackrest/conf.d): Lifeboat gives a postmaster no secret in its environment",
        `without them: ${without}`,
      ],
    },
  );
}
