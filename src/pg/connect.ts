// Connection settings for a runbook's primary. The password is read from the
// environment variable the runbook names, here in the process that connects,
// so it never travels through workflow inputs, results or errors.
import type { ClientConfig } from 'pg';
import { LifeboatError } from '../errors';
import type { Runbook } from '../runbook/schema';

export function primaryClientConfig(runbook: Runbook, overrides: Partial<ClientConfig> = {}): ClientConfig {
  const p = runbook.cluster.primary;
  let password: string | undefined;
  if (p.passwordEnv) {
    password = process.env[p.passwordEnv];
    if (password === undefined) {
      throw new LifeboatError('SECRET_MISSING', `environment variable ${p.passwordEnv} is not set in this process`, {
        hints: [
          `runbook ${runbook.name} reads the password of ${p.user}@${p.host}:${p.port} from ${p.passwordEnv}`,
          'set it in the environment of the worker or CLI (never in the runbook)',
        ],
      });
    }
  }
  return {
    host: p.host,
    port: p.port,
    database: p.database,
    user: p.user,
    password,
    connectionTimeoutMillis: 5000,
    application_name: 'lifeboat',
    ...overrides,
  };
}

/** Environment for libpq tools (pg_basebackup, psql) connecting to the primary. */
export function primaryLibpqEnv(runbook: Runbook): Record<string, string> {
  const cfg = primaryClientConfig(runbook);
  const env: Record<string, string> = {
    PGHOST: String(cfg.host),
    PGPORT: String(cfg.port),
    PGUSER: String(cfg.user),
    PGDATABASE: String(cfg.database),
    PGAPPNAME: 'lifeboat',
    PGCONNECT_TIMEOUT: '5',
  };
  if (typeof cfg.password === 'string') env.PGPASSWORD = cfg.password;
  return env;
}

/**
 * The restored instance on the restore host: the primary's role, password
 * and database (the restored copy has the same roles and pg_hba.conf), at
 * restore.address and restore.port.
 */
export function restoredClientConfig(runbook: Runbook, overrides: Partial<ClientConfig> = {}): ClientConfig {
  return primaryClientConfig(runbook, { host: runbook.restore.address, port: runbook.restore.port, ...overrides });
}
