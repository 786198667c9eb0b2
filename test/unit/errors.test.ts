// The error catalogue (shared/DESIGN.md §8): every code has a retry decision,
// messages carry HINT lines, and context added on the way up keeps both.
import { describe, expect, it } from 'vitest';
import {
  ERROR_CODES,
  type ErrorCode,
  LifeboatError,
  errorMessage,
  isLifeboatError,
  isRetryable,
  withContext,
} from '../../src/errors';

describe('isRetryable', () => {
  it('decides every code in the catalogue', () => {
    for (const code of ERROR_CODES) expect(typeof isRetryable(code), code).toBe('boolean');
  });

  it('retries what may come back on its own: a server, a store, a tool', () => {
    for (const code of ['PG_UNREACHABLE', 'REPOSITORY_UNREACHABLE', 'TOOL_FAILED'] as const)
      expect(isRetryable(code), code).toBe(true);
  });

  it('never retries facts about data or safety: gaps, checksums, a running server, a non-empty directory', () => {
    for (const code of [
      'WAL_GAP',
      'WAL_CHECKSUM_MISMATCH',
      'PG_RUNNING',
      'DATA_DIR_NOT_EMPTY',
      'GATE_NOT_ENFORCED',
    ] as const) {
      expect(isRetryable(code), code).toBe(false);
    }
  });

  it('throws rather than guessing for a code outside the catalogue (a value from another version)', () => {
    expect(() => isRetryable('NEW_CODE' as ErrorCode)).toThrow('no retry decision for error code NEW_CODE');
  });
});

describe('LifeboatError', () => {
  const err = new LifeboatError('PG_RUNNING', 'unable to restore while PostgreSQL is running in /var/lib/pg/recovery', {
    hints: ['stop it first: pg_ctl -D /var/lib/pg/recovery stop', 'or choose another restore.dataDir'],
    details: { dataDir: '/var/lib/pg/recovery' },
  });

  it('puts what failed first, then one HINT line per hint', () => {
    expect(err.message).toBe(
      'unable to restore while PostgreSQL is running in /var/lib/pg/recovery\n' +
        'HINT: stop it first: pg_ctl -D /var/lib/pg/recovery stop\n' +
        'HINT: or choose another restore.dataDir',
    );
    expect(err.code).toBe('PG_RUNNING');
    expect(err.name).toBe('LifeboatError');
    expect(isLifeboatError(err)).toBe(true);
    expect(isLifeboatError(new Error('x'))).toBe(false);
  });

  it('has no HINT lines when there are no hints', () => {
    expect(new LifeboatError('WAL_GAP', 'segment 000000010000000000000003 is missing').message).toBe(
      'segment 000000010000000000000003 is missing',
    );
  });
});

describe('withContext', () => {
  it('prefixes the context and keeps the code, the hints (still last), the details and the cause', () => {
    const inner = new LifeboatError('DATA_DIR_NOT_EMPTY', '/var/lib/pg/recovery is not empty', {
      hints: ['move it aside or set restore.mode'],
      details: { dataDir: '/var/lib/pg/recovery' },
    });
    const outer = withContext('while restoring base backup 20260604T120000', inner);
    expect(isLifeboatError(outer)).toBe(true);
    if (!isLifeboatError(outer)) return;
    expect(outer.code).toBe('DATA_DIR_NOT_EMPTY');
    expect(outer.hints).toEqual(['move it aside or set restore.mode']);
    expect(outer.details).toEqual({ dataDir: '/var/lib/pg/recovery' });
    expect(outer.cause).toBe(inner);
    expect(outer.message).toBe(
      'while restoring base backup 20260604T120000: /var/lib/pg/recovery is not empty\n' +
        'HINT: move it aside or set restore.mode',
    );
  });

  it('keeps every line of a multi-line message (a runbook with several errors)', () => {
    const inner = new LifeboatError(
      'RUNBOOK_INVALID',
      'runbook orders.yaml is not valid:\n  orders.yaml:3: a\n  orders.yaml:9: b',
      {
        hints: ['run: lifeboat runbook validate orders.yaml'],
      },
    );
    const outer = withContext('while loading the runbook', inner);
    expect(outer.message).toBe(
      'while loading the runbook: runbook orders.yaml is not valid:\n  orders.yaml:3: a\n  orders.yaml:9: b\n' +
        'HINT: run: lifeboat runbook validate orders.yaml',
    );
  });

  it('nests: each layer adds its context in front', () => {
    const inner = new LifeboatError('WAL_GAP', 'segment 000000010000000000000003 is missing', {
      hints: ['run: lifeboat check'],
    });
    const outer = withContext('during preflight', withContext('while checking the WAL chain', inner));
    expect(outer.message).toBe(
      'during preflight: while checking the WAL chain: segment 000000010000000000000003 is missing\nHINT: run: lifeboat check',
    );
  });

  it('wraps other errors and thrown values in a plain Error with the cause kept', () => {
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const wrapped = withContext('while reading pg_stat_archiver', cause);
    expect(isLifeboatError(wrapped)).toBe(false);
    expect(wrapped.message).toBe('while reading pg_stat_archiver: connect ECONNREFUSED 127.0.0.1:5432');
    expect(wrapped.cause).toBe(cause);
    expect(withContext('while parsing', 'boom').message).toBe('while parsing: boom');
  });
});

describe('errorMessage', () => {
  it('prints errors and thrown non-errors', () => {
    expect(errorMessage(new Error('x'))).toBe('x');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(42)).toBe('42');
  });
});
