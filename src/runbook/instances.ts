// Where a copy of the cluster runs: `restore:` (the recovery's instance),
// `drill:` (the drill's isolated copy) and `standby:` (the warm standby), and
// the rules that keep them apart when they share a host.
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { absolutePath, duration, identifier, nonEmpty, parseDurationSeconds, port } from './fields';

export const RestoreMode = z.enum(['side-by-side', 'in-place'], {
  error: 'expected "side-by-side" or "in-place"',
});

const EXTRACTORS = 'expected a whole number of extractors from 1 to 64';

export const Restore = z.strictObject(
  {
    host: identifier('a host name'),
    dataDir: absolutePath('the data directory'),
    port,
    mode: RestoreMode.default('side-by-side'),
    /**
     * Extension: the address clients (pgbouncer, invariant checks) use to reach
     * the restored instance. The restore host's worker connects through it too.
     */
    address: nonEmpty('a host name or address').default('127.0.0.1'),
    /**
     * Extension: copies of the primary's postgresql.conf and pg_hba.conf on the
     * restore host, used when the base backup has none (packaged installs keep
     * them in /etc).
     */
    confFile: absolutePath("a copy of the primary's postgresql.conf").optional(),
    hbaFile: absolutePath("a copy of the primary's pg_hba.conf").optional(),
    /**
     * Extension: parts of a base backup extracted at once on this host
     * (restores, drills, the standby); default one per core, at least 2.
     * Lower it on a host whose cores serve something else during a restore.
     */
    parallel: z
      .number({ error: EXTRACTORS })
      .int({ error: EXTRACTORS })
      .min(1, { error: EXTRACTORS })
      .max(64, { error: EXTRACTORS })
      .optional(),
  },
  { error: 'expected a mapping with host, dataDir, port and mode (and optionally address)' },
);

export const Drill = z.strictObject({
  host: identifier('a host name'),
  dataDir: absolutePath('the drill data directory'),
  port,
  targetWindow: duration.default(24 * 3600),
});

/** A delay of 0 (no delay) or more: "1h", "10m", "90s", 0. */
const delay = z
  .union([z.string(), z.number()], { error: 'expected a delay such as "1h", "10m" or 0 (no delay)' })
  .transform((v, ctx) => {
    const seconds = parseDurationSeconds(v);
    if (seconds === undefined || !Number.isInteger(seconds)) {
      ctx.addIssue({ code: 'custom', message: 'expected a delay such as "1h", "10m" or 0 (no delay)' });
      return z.NEVER;
    }
    return seconds;
  });

/**
 * Extension (DESIGN.md §4.4): a warm standby Lifeboat builds from a backup and
 * keeps replaying from the archive, `delay` behind (recovery_min_apply_delay).
 * For now it lives on restore.host: a recovery that uses it moves its data
 * directory into restore.dataDir (a rename, so the same file system), where
 * every later step expects the restored copy.
 */
export const Standby = z.strictObject(
  {
    host: identifier('a host name'),
    dataDir: absolutePath('the standby data directory'),
    port,
    delay,
    /** Segments the standby may trail the archive's newest by before `lifeboat check` calls it fallen behind. */
    maxLagSegments: z
      .number({ error: 'expected a whole number of WAL segments of at least 1' })
      .int({ error: 'expected a whole number of WAL segments of at least 1' })
      .min(1, { error: 'expected a whole number of WAL segments of at least 1' })
      .optional(),
  },
  { error: 'expected a mapping with host, dataDir, port and delay (and optionally maxLagSegments)' },
);

/** A drill on the restore host never shares the recovery's directory or port. */
export function drillApart(
  rb: { restore: z.output<typeof Restore>; drill?: z.output<typeof Drill> | undefined },
  ctx: z.RefinementCtx,
): void {
  if (!rb.drill || rb.drill.host !== rb.restore.host) return;
  // Same host: a drill must not touch what a real recovery uses.
  if (rb.drill.dataDir === rb.restore.dataDir) {
    ctx.addIssue({
      code: 'custom',
      path: ['drill', 'dataDir'],
      message: `expected a directory other than restore.dataDir on host ${rb.restore.host} (a drill there would overwrite a recovery)`,
    });
  }
  if (rb.drill.port === rb.restore.port) {
    ctx.addIssue({
      code: 'custom',
      path: ['drill', 'port'],
      message: `expected a port other than restore.port on host ${rb.restore.host} (the drill instance could not start beside a recovery)`,
    });
  }
}

/** `a` is `b` or lies inside it (or the other way round): one directory would hold the other. */
function nested(a: string, b: string): boolean {
  const x = a.replace(/\/+$/, '');
  const y = b.replace(/\/+$/, '');
  return x === y || x.startsWith(`${y}/`) || y.startsWith(`${x}/`);
}

/** The standby never shares a directory or a port with the restore or the drill on its host. */
export function standbyApart(
  rb: {
    restore: z.output<typeof Restore>;
    drill?: z.output<typeof Drill> | undefined;
    standby?: z.output<typeof Standby> | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const s = rb.standby;
  if (!s) return;
  if (s.host !== rb.restore.host) {
    ctx.addIssue({
      code: 'custom',
      path: ['standby', 'host'],
      message: `expected restore.host (${rb.restore.host}): a recovery that uses the standby moves its data directory into restore.dataDir on that host`,
    });
    return;
  }
  const others: Array<{ field: string; dataDir: string; port: number; why: string }> = [
    { field: 'restore', dataDir: rb.restore.dataDir, port: rb.restore.port, why: 'a recovery' },
    ...(rb.drill && rb.drill.host === s.host
      ? [{ field: 'drill', dataDir: rb.drill.dataDir, port: rb.drill.port, why: 'a drill' }]
      : []),
  ];
  for (const o of others) {
    if (nested(s.dataDir, o.dataDir)) {
      ctx.addIssue({
        code: 'custom',
        path: ['standby', 'dataDir'],
        message: `expected a directory apart from ${o.field}.dataDir (${o.dataDir}) on host ${s.host} (${o.why} there would overwrite the standby)`,
      });
    }
    if (s.port === o.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['standby', 'port'],
        message: `expected a port other than ${o.field}.port on host ${s.host} (the standby and ${o.why} could not both listen there)`,
      });
    }
  }
}
