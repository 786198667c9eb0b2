// Which PostgreSQL instance a restore activity acts on: the runbook's
// `restore` (a real recovery) or its `drill` (restoreDrill's isolated copy).
// The one place that maps the two onto a host, a data directory, a port and
// an address, so restore, replay, invariants, promote and stop are the same
// code for both and cannot drift apart.
import type { ClientConfig } from 'pg';
import { LifeboatError } from '../errors';
import { primaryClientConfig, restoredClientConfig } from '../pg/connect';
import type { RestoreInstanceKind } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import type { PgHost } from './postmaster';

export interface RestoreSite {
  instance: RestoreInstanceKind;
  /** The host whose worker owns the directory and the postmaster (its `lifeboat-host-<host>` queue). */
  host: string;
  dataDir: string;
  port: number;
  /** Where the postmaster listens and clients connect. */
  address: string;
  mode: 'side-by-side' | 'in-place';
  pg: PgHost;
  /** The runbook section that names it, for messages: "restore", "drill" or "standby". */
  field: 'restore' | 'drill' | 'standby';
}

/**
 * The drill listens on loopback only: every drill activity runs on the drill
 * host's own worker, and nothing else (pgbouncer, the application) must ever
 * be able to reach a drill copy and mistake it for the database.
 */
export const DRILL_ADDRESS = '127.0.0.1';

export function restoreSite(runbook: Runbook, instance: RestoreInstanceKind = 'restore'): RestoreSite {
  const pgBin = runbook.cluster.pgBin;
  const osUser = runbook.cluster.osUser;
  if (instance === 'restore') {
    const r = runbook.restore;
    return {
      instance,
      host: r.host,
      dataDir: r.dataDir,
      port: r.port,
      address: r.address,
      mode: r.mode,
      pg: { dataDir: r.dataDir, pgBin, osUser },
      field: 'restore',
    };
  }
  const section = instance === 'standby' ? runbook.standby : runbook.drill;
  if (!section) {
    const { why, example } = MISSING_SECTION[instance];
    throw new LifeboatError('RUNBOOK_INVALID', `runbook ${runbook.name} has no ${instance} section, so ${why}`, {
      hints: [`add one, e.g. ${example}`, 'nothing was touched'],
    });
  }
  // Loopback only and always side by side: nothing but Lifeboat may reach a
  // drill copy or a standby and take it for the database, and neither replaces anything.
  return {
    instance,
    host: section.host,
    dataDir: section.dataDir,
    port: section.port,
    address: DRILL_ADDRESS,
    mode: 'side-by-side',
    pg: { dataDir: section.dataDir, pgBin, osUser },
    field: instance,
  };
}

/** What a runbook without the section cannot do, and an example of one. */
const MISSING_SECTION = {
  standby: {
    why: 'no standby can be built',
    example: 'standby: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/standby, port: 5434, delay: 1h }',
  },
  drill: {
    why: 'no restore drill can run',
    example: 'drill: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/drill, port: 5499, targetWindow: 24h }',
  },
};

/** Connection settings for the site's instance: the primary's role and database, at the site's address and port. */
export function siteClientConfig(
  runbook: Runbook,
  site: RestoreSite,
  overrides: Partial<ClientConfig> = {},
): ClientConfig {
  // The restore instance keeps going through restoredClientConfig: one definition for recoveries.
  if (site.instance === 'restore') return restoredClientConfig(runbook, overrides);
  return primaryClientConfig(runbook, { host: site.address, port: site.port, ...overrides });
}

/** "the drill copy" / "the restored copy": how messages name the instance. */
export function siteLabel(site: RestoreSite): string {
  return site.instance === 'drill'
    ? 'the drill copy'
    : site.instance === 'standby'
      ? 'the standby'
      : 'the restored copy';
}
