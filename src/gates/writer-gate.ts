// The writer gate (DESIGN.md §4.1 step 4): the gate row off, the application
// roles made read-only for every new session, their open sessions ended, and
// then proof: a new session as the application role tries a write that
// PostgreSQL must refuse with SQLSTATE 25006 (read_only_sql_transaction).
//
// Why a login as the role and not `SET ROLE` in Lifeboat's own session:
// `ALTER ROLE ... SET` takes effect when that role logs in; SET ROLE does not
// apply it, so only a real login shows what the application's next
// connection will get, including a stronger per-database override
// (`ALTER ROLE app IN DATABASE appdb SET default_transaction_read_only = off`)
// that silently defeats the role-wide setting.
//
// Two runs may fence one primary at once (two recoveries, a recovery and a
// by-hand fence): one run's pg_terminate_backend then also ends the other's
// proof session, which is a login as the same role. A proof whose session was
// ended that way (SQLSTATE 57P01, or the connection dropped while the server
// kept answering) proved nothing either way, so it logs in again
// (proveWritesRefused). Proof sessions are NOT spared from the termination by
// their application_name: an application session may carry any name, and one
// spared that way would keep writing through the fence.
import { Client, type ClientConfig } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import type { GateResult } from '../recovery/contract';
import { writeGateRow } from './row-gate';
import {
  inTransaction,
  isUnreachable,
  quoteIdent,
  quoteQualified,
  sqlFailed,
  sqlState,
  unreachableError,
  withClient,
  type Endpoint,
} from './sql';

export interface WriterGateSpec {
  table: string;
  gate: string;
  roles: string[];
  /** Password of the proof role (gates.writers.proofPasswordEnv), when pg_hba asks for one. */
  proofPassword?: string;
}

/** How long pg_terminate_backend waits for each session to end (PostgreSQL 14+). */
const TERMINATE_WAIT_MS = 5000;

export async function setWriterGate(endpoint: Endpoint, spec: WriterGateSpec, enabled: boolean): Promise<GateResult> {
  const self = String(endpoint.config.user);
  if (spec.roles.includes(self)) {
    // Fencing our own role would leave Lifeboat unable to reopen the gate.
    throw new LifeboatError(
      'RUNBOOK_INVALID',
      `gates.writers.readOnlyRoles lists ${self}, the role Lifeboat itself connects as`,
      {
        hints: ['list only the application roles there; Lifeboat needs a role that can still write to reopen the gate'],
      },
    );
  }
  return enabled ? reopen(endpoint, spec) : fence(endpoint, spec);
}

async function alterRoles(client: Client, roles: string[], clause: string): Promise<void> {
  for (const role of roles) {
    try {
      await client.query(`alter role ${quoteIdent(role)} ${clause}`);
    } catch (err) {
      if (sqlState(err) === '42704') {
        throw new LifeboatError(
          'RUNBOOK_INVALID',
          `role ${role} named in gates.writers.readOnlyRoles does not exist on this server`,
          {
            hints: ['check the role names in the runbook against: select rolname from pg_roles'],
            cause: err,
          },
        );
      }
      throw sqlFailed(`could not run ALTER ROLE ${role} ${clause}`, err);
    }
  }
}

/**
 * Taken first in every transaction that alters the roles: two runs altering
 * one role at once (two runbooks of one primary, each with its own gate
 * table, so the gate row does not order them) collide in the catalog
 * (pg_db_role_setting: a duplicate key, or "tuple concurrently updated").
 * Held to the end of the transaction only, so a stuck run cannot hold it.
 */
const ROLE_LOCK_SQL = `select pg_advisory_xact_lock(hashtextextended('lifeboat writer gate', 0))`;

async function reopen(endpoint: Endpoint, spec: WriterGateSpec): Promise<GateResult> {
  await withClient(endpoint, (client) =>
    inTransaction(client, 'begin', async () => {
      await client.query(ROLE_LOCK_SQL);
      await writeGateRow(client, spec.table, spec.gate, true);
      await alterRoles(client, spec.roles, 'reset default_transaction_read_only');
    }),
  );
  return { gate: spec.gate, enabled: true, rolesAltered: [...spec.roles] };
}

async function fence(endpoint: Endpoint, spec: WriterGateSpec): Promise<GateResult> {
  return withClient(endpoint, async (client) => {
    // Before touching anything: a runbook whose roles cannot log in would fence nobody.
    const prover = await proofRole(client, spec.roles);
    // Row and roles in one transaction, committed before any session is
    // ended: a pool that reconnects at once already gets a read-only session.
    await inTransaction(client, 'begin', async () => {
      await client.query(ROLE_LOCK_SQL);
      await writeGateRow(client, spec.table, spec.gate, false);
      await alterRoles(client, spec.roles, 'set default_transaction_read_only = on');
    });
    const sessionsTerminated = await endSessions(client, spec.roles);
    const overrides = await readWriteOverrides(client, spec.roles);
    const outcome = await proveWritesRefused(endpoint, prover, spec.table, spec.proofPassword, client);
    if (!outcome.refused || overrides.length > 0) throw notEnforced(endpoint, prover, outcome, overrides);
    return { gate: spec.gate, enabled: false, rolesAltered: [...spec.roles], sessionsTerminated, proof: outcome.text };
  });
}

/** Ends the roles' sessions and waits for each to be gone; one still alive could keep writing. */
async function endSessions(client: Client, roles: string[]): Promise<number> {
  let rows: Array<{ pid: number; usename: string; ended: boolean }>;
  try {
    // backend_type is NULL for the sessions of other roles unless Lifeboat's
    // role is a member of pg_read_all_stats (PostgreSQL 15 hides all but pid,
    // usename and a few more): a role with only what `lifeboat grants` gives
    // would otherwise see none of the application's sessions and end none.
    ({ rows } = await client.query<{ pid: number; usename: string; ended: boolean }>(
      `select pid, usename, pg_terminate_backend(pid, $2) as ended
         from pg_stat_activity
        where usename = any($1::text[]) and pid <> pg_backend_pid() and (backend_type = 'client backend' or backend_type is null)`,
      [roles, TERMINATE_WAIT_MS],
    ));
  } catch (err) {
    throw sqlFailed(`could not end the sessions of ${roles.join(', ')}`, err);
  }
  // pg_terminate_backend also answers false for a pid that is no longer a
  // backend: a session another run fencing this primary ended first. Only
  // one still there is a session that can write.
  let alive = rows.filter((r) => !r.ended);
  if (alive.length > 0) {
    const { rows: still } = await client.query<{ pid: number }>(
      'select pid from pg_stat_activity where pid = any($1::int[])',
      [alive.map((r) => r.pid)],
    );
    const stillThere = new Set(still.map((r) => r.pid));
    alive = alive.filter((r) => stillThere.has(r.pid));
  }
  if (alive.length > 0) {
    throw new LifeboatError(
      'GATE_NOT_ENFORCED',
      `writer gate: ${alive.length} session(s) of ${roles.join(', ')} did not end within ${TERMINATE_WAIT_MS / 1000} s (pid ${alive.map((r) => r.pid).join(', ')}); they can still write`,
      {
        hints: [
          'see what they are doing: select pid, state, query from pg_stat_activity where pid in (...)',
          'retry the step, or end them by hand: select pg_terminate_backend(pid)',
        ],
      },
    );
  }
  return rows.length;
}

interface Override {
  role: string;
  setting: string;
}

/**
 * Per-database settings of the roles that turn read-only off again in this
 * database: they win over the role-wide setting at login, so each one is a
 * role the gate does not hold, whichever role the write proof used.
 */
async function readWriteOverrides(client: Client, roles: string[]): Promise<Override[]> {
  const { rows } = await client.query<{ role: string; setting: string }>(
    `select r.rolname as role, cfg as setting
       from pg_db_role_setting s
       join pg_roles r on r.oid = s.setrole
       cross join lateral unnest(s.setconfig) as cfg
      where r.rolname = any($1::text[])
        and s.setdatabase = (select oid from pg_database where datname = current_database())
        and cfg like 'default_transaction_read_only=%'
        and lower(split_part(cfg, '=', 2)) not in ('on', 'true', 'yes', '1', 't', 'y')`,
    [roles],
  );
  return rows;
}

/** The first listed role that can log in: settings of a group role do not reach its members' logins. */
async function proofRole(client: Client, roles: string[]): Promise<string> {
  const { rows } = await client.query<{ rolname: string }>(
    'select rolname from pg_roles where rolname = any($1::text[]) and rolcanlogin',
    [roles],
  );
  const canLogin = new Set(rows.map((r) => r.rolname));
  const role = roles.find((r) => canLogin.has(r));
  if (!role) {
    throw new LifeboatError(
      'RUNBOOK_INVALID',
      `none of gates.writers.readOnlyRoles (${roles.join(', ')}) can log in, so making them read-only fences nobody`,
      {
        hints: [
          'ALTER ROLE ... SET applies to logins of that very role, not to members of a group role: list the roles the application logs in as',
        ],
      },
    );
  }
  return role;
}

export interface WriteOutcome {
  refused: boolean;
  /** The refusal (the proof) or what happened instead. */
  text: string;
  /** The proof session was ended under it (pg_terminate_backend by someone else): it proved nothing. */
  terminated?: boolean;
  /** Logins it took; more than one when sessions were ended under it. */
  attempts?: number;
}

/** The application_name of proof sessions, so that pg_stat_activity shows what they are. */
export const PROOF_APPLICATION_NAME = 'lifeboat-gate-proof';

/**
 * Logins a proof may take when each one's session is ended under it. Every
 * concurrent fence ends sessions once, so this bounds the number of fences
 * of one primary running at the same moment that still all prove theirs.
 */
const PROOF_ATTEMPTS = 8;

/**
 * Logs in as `role` and attempts a write that must be refused as read-only;
 * again with a new session when one was ended under it. Only a refusal with
 * SQLSTATE 25006 proves the fence; a write that succeeds, or fails for any
 * other reason, does not. `control` is a session of Lifeboat's own on the
 * same server: a proof connection that drops while it still answers was
 * ended, not lost to a server that went away.
 */
export async function proveWritesRefused(
  endpoint: Endpoint,
  role: string,
  table: string,
  proofPassword: string | undefined,
  control: Client,
): Promise<WriteOutcome> {
  const ended: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const outcome = await attemptWrite(endpoint, role, table, proofPassword);
    if (!outcome.terminated) {
      if (ended.length === 0) return { ...outcome, attempts: attempt };
      return {
        ...outcome,
        attempts: attempt,
        text: `${outcome.text} (proof login ${attempt}: the session of each earlier one was ended under it, most likely by another run fencing this primary)`,
      };
    }
    const serverAnswers = await control.query('select 1').then(
      () => true,
      () => false,
    );
    if (!serverAnswers) throw unreachableError(endpoint, new Error(outcome.text));
    ended.push(outcome.text);
    if (attempt >= PROOF_ATTEMPTS) {
      return {
        refused: false,
        attempts: attempt,
        text: `the proof session as ${role} was ended under it ${attempt} times in a row, so nothing was proven (last: ${outcome.text})`,
      };
    }
  }
}

/** 57P01 (admin_shutdown: pg_terminate_backend), or a connection that dropped with no SQLSTATE. */
function endedUnderUs(err: unknown): boolean {
  const state = sqlState(err);
  if (state) return state === '57P01';
  return isUnreachable(err) || /not queryable|Connection terminated/i.test(errorMessage(err));
}

async function attemptWrite(
  endpoint: Endpoint,
  role: string,
  table: string,
  proofPassword?: string,
): Promise<WriteOutcome> {
  const statement = `update ${quoteQualified(table)} set updated_at = updated_at where false`;
  const config: ClientConfig = {
    ...endpoint.config,
    user: role,
    // The runbook holds no password for the application role: the proof works
    // where pg_hba.conf lets this worker log in as the role without one (trust
    // on loopback in the sandbox, cert elsewhere). Never send Lifeboat's own
    // password, nor fall back to PGPASSWORD from the environment.
    password:
      proofPassword ??
      (() => {
        throw new ProofLoginError(
          `the server asks for a password for ${role}, and the runbook names no gates.writers.proofPasswordEnv`,
        );
      }),
    application_name: PROOF_APPLICATION_NAME,
    // An explicit value also keeps PGOPTIONS from the worker's environment out
    // of this session: what it proves must be what the role itself gets.
    options: '-c statement_timeout=10s',
  };
  const client = new Client(config);
  client.on('error', () => undefined);
  try {
    try {
      await client.connect();
    } catch (err) {
      if (endedUnderUs(err) && !(err instanceof ProofLoginError))
        return { refused: false, terminated: true, text: `the login as ${role} was ended: ${errorMessage(err)}` };
      if (isUnreachable(err)) throw unreachableError(endpoint, err);
      return { refused: false, text: `could not log in as ${role} to attempt a write: ${errorMessage(err)}` };
    }
    try {
      // Rolled back either way: if the gate does not hold, nothing is written.
      await client.query('begin');
      await client.query(statement);
      return { refused: false, text: `as ${role}, "${statement}" succeeded: new sessions of ${role} can write` };
    } catch (err) {
      const state = sqlState(err);
      if (state === '25006')
        return { refused: true, text: `as ${role}, "${statement}" was refused: ${errorMessage(err)} (SQLSTATE 25006)` };
      if (endedUnderUs(err))
        return {
          refused: false,
          terminated: true,
          text: `the session as ${role} was ended before "${statement}" got an answer: ${errorMessage(err)}${state ? ` (SQLSTATE ${state})` : ''}`,
        };
      return {
        refused: false,
        text: `as ${role}, "${statement}" failed for another reason than read-only: ${errorMessage(err)}${state ? ` (SQLSTATE ${state})` : ''}`,
      };
    } finally {
      await client.query('rollback').catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

class ProofLoginError extends Error {}

function notEnforced(endpoint: Endpoint, role: string, outcome: WriteOutcome, overrides: Override[]): LifeboatError {
  const db = String(endpoint.config.database);
  const lines = [
    outcome.text,
    ...overrides.map((o) => `role ${o.role} has ${o.setting} in database ${db}, which wins over the role-wide setting`),
  ];
  const hints = [
    ...overrides.map(
      (o) =>
        `if that override is not needed: ALTER ROLE ${quoteIdent(o.role)} IN DATABASE ${quoteIdent(db)} RESET default_transaction_read_only; then retry the step`,
    ),
    'the gate row is off and ALTER ROLE ... SET default_transaction_read_only = on was run, but writes by the application are not proven to be refused',
  ];
  if (!outcome.refused && outcome.text.startsWith('could not log in')) {
    hints.push(
      `Lifeboat proves the gate by logging in as ${role}: name the variable holding its password in gates.writers.proofPasswordEnv, allow the login from this worker in pg_hba.conf (e.g. a cert entry), or`,
      `prove it by hand (psql as ${role}, a write must fail with "cannot execute ... in a read-only transaction") and skip the step with that reason`,
    );
  }
  return new LifeboatError(
    'GATE_NOT_ENFORCED',
    `writer gate on ${endpoint.label} is not enforced:\n  ${lines.join('\n  ')}`,
    {
      hints,
      details: { role, overrides: overrides.map((o) => `${o.role}: ${o.setting}`) },
    },
  );
}
