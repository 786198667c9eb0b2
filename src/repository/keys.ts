// The keys of an encrypted repository (src/repository/encrypted.ts): which
// key new objects are written with, and every key an old object may have
// been written with, each under a short id that is stored in the object.
//
// A key is never in a runbook, a command line or a message: the runbook (or
// --encryption-key id=NAME on the command line) names an environment
// variable or a file that holds it, 32 bytes as base64 (`openssl rand
// -base64 32`) or as 64 hex digits. Keys are read when first needed, so a
// process that never touches an object of a previous key never needs it.
//
// Kept free of zod and the AWS SDK: archive-push loads this once per segment.
import { readFileSync, statSync } from 'node:fs';
import { LifeboatError } from '../errors';

/** Where one key comes from: exactly one of keyEnv and keyFile. */
export interface KeySource {
  keyId: string;
  keyEnv?: string;
  keyFile?: string;
}

/** repository.encryption in a runbook: the current key, the previous ones, and whether plaintext objects are read. */
export interface EncryptionSettings extends KeySource {
  previous?: KeySource[];
  /**
   * Objects written before encryption was turned on (no encryption header)
   * are served as they are. Off by default: anyone who can write to the
   * store could otherwise slip in a plaintext object in place of a sealed one.
   */
  readUnencrypted?: boolean;
}

export const KEY_BYTES = 32;
/** Key ids are stored in each object's header: short, printable, no spaces. */
export const KEY_ID_RE = /^[A-Za-z0-9._-]{1,32}$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function describeSource(s: KeySource): string {
  return s.keyEnv ? `environment variable ${s.keyEnv}` : `key file ${s.keyFile ?? '?'}`;
}

/** The runbook line that names a key, for hints. */
function runbookLine(s: KeySource): string {
  return s.keyEnv
    ? `{ keyId: ${s.keyId}, keyEnv: ${s.keyEnv} }`
    : `{ keyId: ${s.keyId}, keyFile: ${s.keyFile ?? '?'} }`;
}

const GENERATE_HINT =
  'a new key: openssl rand -base64 32 (keep a copy where the backups are not: without the key they cannot be read)';

/** 32 bytes from base64 or hex text; undefined for anything else. The text is never printed. */
export function parseKeyText(text: string): Buffer | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(t) || /^[A-Za-z0-9_-]{43}=?$/.test(t)) {
    const b = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
    if (b.length === KEY_BYTES) return b;
  }
  return undefined;
}

export class KeyRing {
  private readonly sources = new Map<string, KeySource>();
  private readonly cache = new Map<string, Buffer>();

  constructor(readonly settings: EncryptionSettings) {
    for (const s of [settings, ...(settings.previous ?? [])]) {
      if (!KEY_ID_RE.test(s.keyId)) {
        throw new LifeboatError('INPUT_INVALID', `encryption key id ${JSON.stringify(s.keyId)} is not valid`, {
          hints: ['key ids are 1 to 32 letters, digits, ".", "_" or "-", e.g. k1, 2026-06'],
        });
      }
      if (this.sources.has(s.keyId)) {
        throw new LifeboatError('INPUT_INVALID', `encryption key id ${s.keyId} is listed twice`, {
          hints: ['each key has its own id: the current key (keyId) and every previous one'],
        });
      }
      if (
        (s.keyEnv === undefined) === (s.keyFile === undefined) ||
        (s.keyEnv !== undefined && !ENV_RE.test(s.keyEnv))
      ) {
        throw new LifeboatError(
          'INPUT_INVALID',
          `encryption key ${s.keyId} must name exactly one of keyEnv (an environment variable) or keyFile (an absolute path)`,
          {
            hints: ['e.g. repository.encryption: { keyId: k1, keyEnv: LIFEBOAT_REPO_KEY }'],
          },
        );
      }
      this.sources.set(s.keyId, s);
    }
  }

  /** The id new objects are written with. */
  get currentId(): string {
    return this.settings.keyId;
  }

  get readUnencrypted(): boolean {
    return this.settings.readUnencrypted === true;
  }

  /** Every configured id, current first. */
  get ids(): string[] {
    return [...this.sources.keys()];
  }

  /** The environment variables that hold keys (the restored postmaster needs them for archive-get). */
  get envNames(): string[] {
    return [...this.sources.values()].flatMap((s) => (s.keyEnv ? [s.keyEnv] : []));
  }

  has(id: string): boolean {
    return this.sources.has(id);
  }

  /** Where a key comes from, for messages ("environment variable X"). */
  describe(id: string): string {
    const s = this.sources.get(id);
    return s ? describeSource(s) : `no source (key id ${id} is not configured)`;
  }

  /**
   * The key of an id, read from its variable or file. `object` names what
   * it is needed for, so the error an operator sees says which object waits.
   */
  key(id: string, object: string): Buffer {
    const cached = this.cache.get(id);
    if (cached) return cached;
    const s = this.sources.get(id);
    if (!s) {
      throw new LifeboatError(
        'ENCRYPTION_KEY_MISMATCH',
        `${object} was encrypted with key id ${id}, which is not configured (configured: ${this.ids.join(', ')})`,
        {
          hints: [
            `list that key under repository.encryption.previous in the runbook, e.g. previous: [{ keyId: ${id}, keyEnv: LIFEBOAT_REPO_KEY_${id.toUpperCase().replace(/[^A-Z0-9_]/g, '_')} }], or add --encryption-key ${id}=<VARIABLE> to the command`,
            'old keys stay listed as long as any backup or WAL written with them is kept',
          ],
          details: { object, keyId: id },
        },
      );
    }
    const key = s.keyEnv ? this.fromEnv(s, object) : this.fromFile(s, object);
    this.cache.set(id, key);
    return key;
  }

  private fromEnv(s: KeySource, object: string): Buffer {
    const name = s.keyEnv as string;
    const value = process.env[name];
    if (value === undefined || value.trim() === '') {
      throw new LifeboatError(
        'SECRET_MISSING',
        `encryption key ${s.keyId} for ${object}: environment variable ${name} is not set`,
        {
          hints: [
            `set ${name} to the key (32 bytes, base64 or hex) in the environment of every process that reads or writes this repository: the worker, and the PostgreSQL OS user's archive_command and restore_command`,
            `the runbook names it: ${runbookLine(s)}`,
            GENERATE_HINT,
          ],
          details: { object, keyId: s.keyId, keyEnv: name },
        },
      );
    }
    const key = parseKeyText(value);
    if (!key) {
      throw new LifeboatError(
        'SECRET_MISSING',
        `encryption key ${s.keyId}: environment variable ${name} does not hold a 32-byte key (${value.trim().length} characters; expected 44 base64 characters or 64 hex digits)`,
        {
          hints: [GENERATE_HINT],
          details: { object, keyId: s.keyId, keyEnv: name },
        },
      );
    }
    return key;
  }

  private fromFile(s: KeySource, object: string): Buffer {
    const file = s.keyFile as string;
    let text: string;
    try {
      // World-readable keys are refused: anyone on the host could read every backup.
      if ((statSync(file).mode & 0o004) !== 0) {
        throw new LifeboatError(
          'SECRET_MISSING',
          `encryption key ${s.keyId}: key file ${file} is readable by every user on this host`,
          {
            hints: [`chmod o-rwx ${file} (0600 or 0640, owned by the users that run lifeboat and PostgreSQL)`],
            details: { object, keyId: s.keyId, keyFile: file },
          },
        );
      }
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof LifeboatError) throw err;
      throw new LifeboatError(
        'SECRET_MISSING',
        `encryption key ${s.keyId} for ${object}: cannot read key file ${file}: ${(err as Error).message}`,
        {
          hints: [
            `the file must be readable by the user running lifeboat (archive-get and archive-push run as the PostgreSQL OS user)`,
            GENERATE_HINT,
          ],
          details: { object, keyId: s.keyId, keyFile: file },
          cause: err,
        },
      );
    }
    const key = parseKeyText(text);
    if (!key) {
      throw new LifeboatError(
        'SECRET_MISSING',
        `encryption key ${s.keyId}: key file ${file} does not hold a 32-byte key (expected 44 base64 characters or 64 hex digits)`,
        {
          hints: [GENERATE_HINT],
          details: { object, keyId: s.keyId, keyFile: file },
        },
      );
    }
    return key;
  }
}

/**
 * The settings as command-line options, for the commands Lifeboat writes
 * for PostgreSQL (restore_command, the prefetcher, the read-ahead pusher):
 * `--encryption-key <id>=<VARIABLE or /key/file>`, current key first. Only
 * names and paths: the values reach those processes through their
 * environment or the file.
 */
export function encryptionArgs(settings: EncryptionSettings | undefined): string[] {
  if (!settings) return [];
  const args: string[] = [];
  for (const s of [settings, ...(settings.previous ?? [])])
    args.push('--encryption-key', `${s.keyId}=${s.keyEnv ?? s.keyFile ?? ''}`);
  if (settings.readUnencrypted) args.push('--read-unencrypted');
  return args;
}

/**
 * The keys restore_command needs for every repository of a runbook
 * (archive-get opens its --fallback-repo ones with the same options): the
 * first encrypted repository's, then every other key of the others (a
 * repeated id keeps its first source). Plaintext objects are served when a
 * repository of the list is not encrypted or says readUnencrypted.
 */
export function restoreEncryption(
  entries: ReadonlyArray<{ encryption?: EncryptionSettings | undefined }>,
): EncryptionSettings | undefined {
  const all = entries.map((e) => e.encryption).filter((e): e is EncryptionSettings => e !== undefined);
  const [first, ...rest] = all;
  if (!first) return undefined;
  const source = (k: KeySource): KeySource =>
    k.keyEnv ? { keyId: k.keyId, keyEnv: k.keyEnv } : { keyId: k.keyId, keyFile: k.keyFile ?? '' };
  const previous = (first.previous ?? []).map(source);
  const seen = new Set([first.keyId, ...previous.map((k) => k.keyId)]);
  for (const e of rest) {
    for (const k of [e, ...(e.previous ?? [])]) {
      if (seen.has(k.keyId)) continue;
      seen.add(k.keyId);
      previous.push(source(k));
    }
  }
  const readUnencrypted = all.length < entries.length || all.some((e) => e.readUnencrypted === true);
  return {
    ...source(first),
    ...(previous.length > 0 ? { previous } : {}),
    ...(readUnencrypted ? { readUnencrypted: true } : {}),
  };
}

/**
 * The settings from `--encryption-key id=NAME` options (the first is the
 * current key) and `--read-unencrypted`; undefined when none were given.
 * A value starting with "/" is a key file, anything else a variable name.
 */
export function encryptionFromArgs(
  specs: string[] | undefined,
  readUnencrypted?: boolean,
): EncryptionSettings | undefined {
  if (!specs || specs.length === 0) {
    if (readUnencrypted) {
      throw new LifeboatError('INPUT_INVALID', '--read-unencrypted needs --encryption-key', {
        hints: ['it lets an encrypted repository serve objects written before encryption was turned on'],
      });
    }
    return undefined;
  }
  const sources = specs.map((spec): KeySource => {
    const m = /^([^=]+)=(.+)$/.exec(spec);
    if (!m) {
      throw new LifeboatError(
        'INPUT_INVALID',
        `--encryption-key ${JSON.stringify(spec)}: expected <key id>=<VARIABLE> or <key id>=</path/to/key/file>`,
        {
          hints: [
            'e.g. --encryption-key k2=LIFEBOAT_REPO_KEY --encryption-key k1=LIFEBOAT_REPO_KEY_OLD (the first is used to write)',
          ],
        },
      );
    }
    const [, keyId, where] = m as unknown as [string, string, string];
    return where.startsWith('/') ? { keyId, keyFile: where } : { keyId, keyEnv: where };
  });
  const [current, ...previous] = sources as [KeySource, ...KeySource[]];
  return {
    ...current,
    ...(previous.length > 0 ? { previous } : {}),
    ...(readUnencrypted ? { readUnencrypted: true } : {}),
  };
}
