// SQL plumbing shared by the gate, forensics, invariant and outbox
// activities: identifier quoting, one place that opens and always ends a
// connection, and the translation of PostgreSQL's errors into the closed
// catalogue with hints an operator can act on.
import { Client, type ClientConfig } from 'pg';
import { LifeboatError, errorMessage } from '../errors';

/** An identifier (role, column, one part of a table name) as a double-quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A table name from a runbook, optionally schema-qualified. Runbook names
 * are plain (`outbox`, `ops.system_gate`): a dot separates schema and table,
 * so names that themselves contain a dot are not supported.
 */
export function quoteQualified(name: string): string {
  return name
    .split('.')
    .map((part) => quoteIdent(part))
    .join('.');
}

/** Where a connection goes, for messages: never the password. */
export function describeEndpoint(cfg: ClientConfig): string {
  return `${String(cfg.user)}@${String(cfg.host)}:${String(cfg.port)}/${String(cfg.database)}`;
}

/** SQLSTATE of a PostgreSQL error, if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

// Network-level failures (node's errno names) and what node-postgres says when
// its connection timeout fires or the server hangs up during start-up.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);
const NETWORK_MESSAGES = /timeout expired|Connection terminated|connection timeout|socket hang up/i;

/**
 * Whether a server did not answer at all (as opposed to answering "no").
 * Class 08 is a broken connection; 57P01-57P03 are a server shutting down,
 * crashing or still starting up: each is "not there right now".
 */
export function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const state = sqlState(err);
  if (state && (state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03')) return true;
  return !state && NETWORK_MESSAGES.test(errorMessage(err));
}

export interface Endpoint {
  config: ClientConfig;
  /** What this server is, in words: "the primary", "the restored instance". */
  label: string;
  /** Hints when it does not answer. */
  unreachableHints: string[];
}

/** The error for a server that did not answer. */
export function unreachableError(
  endpoint: Endpoint,
  err: unknown,
  phase: 'connect' | 'query' = 'query',
): LifeboatError {
  return new LifeboatError(
    'PG_UNREACHABLE',
    `${endpoint.label} at ${describeEndpoint(endpoint.config)} did not answer: ${errorMessage(err)}`,
    { hints: endpoint.unreachableHints, cause: err, details: { phase } },
  );
}

/**
 * Opens a connection, runs `body`, and always ends the connection. A server
 * that does not answer becomes PG_UNREACHABLE; one that refuses the login
 * becomes SQL_FAILED (a configuration problem: retrying will not help).
 * Either carries details.phase 'connect', so a caller can tell "could not
 * get in" from "a statement failed".
 */
export async function withClient<T>(endpoint: Endpoint, body: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(endpoint.config);
  // An idle client whose server dies emits 'error'; without a listener that
  // would crash the worker process instead of failing this one activity.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    if (isUnreachable(err)) throw unreachableError(endpoint, err, 'connect');
    throw new LifeboatError(
      'SQL_FAILED',
      `could not log in to ${endpoint.label} at ${describeEndpoint(endpoint.config)}: ${errorMessage(err)}`,
      {
        hints: loginHints(err, endpoint),
        cause: err,
        details: { phase: 'connect' },
      },
    );
  }
  try {
    return await body(client);
  } catch (err) {
    // The server went away in the middle: the same "not there" as at connect.
    if (!(err instanceof LifeboatError) && isUnreachable(err)) throw unreachableError(endpoint, err);
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function loginHints(err: unknown, endpoint: Endpoint): string[] {
  const state = sqlState(err);
  if (state === '28P01' || state === '28000') {
    return [
      `check the password variable named by the runbook's cluster.primary.passwordEnv, and pg_hba.conf on ${String(endpoint.config.host)}`,
    ];
  }
  if (state === '3D000') return ['check cluster.primary.database in the runbook'];
  return [];
}

/** A failed statement, with the statement's purpose and PostgreSQL's own words. */
export function sqlFailed(what: string, err: unknown, hints: string[] = []): LifeboatError {
  const state = sqlState(err);
  const extra: string[] = [];
  if (state === '25006')
    extra.push(
      'the instance only accepts reads: is it still in recovery (not promoted), or is default_transaction_read_only on for this role?',
    );
  if (state === '42501') {
    extra.push(
      "the runbook's cluster.primary.user lacks a privilege it needs here: lifeboat doctor --runbook <name> names each missing one with its GRANT, " +
        'and lifeboat grants --runbook <name> prints them all (in a restored copy, the grants are those of its backup: grant on the primary, then take a new backup)',
    );
  }
  if (state === '42P01')
    extra.push(
      "the table does not exist in this database: check the runbook's gates section and cluster.primary.database",
    );
  return new LifeboatError('SQL_FAILED', `${what}: ${errorMessage(err)}${state ? ` (SQLSTATE ${state})` : ''}`, {
    hints: [...hints, ...extra],
    cause: err,
  });
}

/** Runs `body` in one transaction: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(client: Client, begin: string, body: () => Promise<T>): Promise<T> {
  await client.query(begin);
  try {
    const result = await body();
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}
