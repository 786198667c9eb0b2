// The runbook's `standby:` section (DESIGN.md §4.4): parsed with its delay in
// seconds, and refused with a line naming the field when it would collide
// with the restore or the drill on its host.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateRunbookText } from '../../src/runbook/load';

const EXAMPLE = readFileSync(path.resolve(__dirname, '../../runbooks/orders.example.yaml'), 'utf8');

function withStandby(line: string): string {
  return `${EXAMPLE.trimEnd()}\n${line}\n`;
}

function errorsOf(text: string): string[] {
  const r = validateRunbookText(text, 'orders.yaml');
  if (r.ok) throw new Error('expected the runbook to be refused, but it validated');
  return r.errors;
}

describe('runbook standby section', () => {
  it('parses host, dataDir, port, the delay in seconds and maxLagSegments', () => {
    const r = validateRunbookText(
      withStandby(
        'standby: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/standby, port: 5434, delay: 1h, maxLagSegments: 64 }',
      ),
      'orders.yaml',
    );
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect(r.runbook.standby).toEqual({
      host: 'db-recovery-1',
      dataDir: '/var/lib/postgresql/15/standby',
      port: 5434,
      delay: 3600,
      maxLagSegments: 64,
    });
  });

  it('accepts a delay of 0 (a standby that keeps up) and "10m"', () => {
    for (const [d, s] of [
      ['0', 0],
      ['10m', 600],
      ['20s', 20],
    ] as const) {
      const r = validateRunbookText(
        withStandby(`standby: { host: db-recovery-1, dataDir: /srv/standby, port: 5434, delay: ${d} }`),
        'orders.yaml',
      );
      if (!r.ok) throw new Error(r.errors.join('\n'));
      expect(r.runbook.standby?.delay).toBe(s);
    }
  });

  it('refuses a delay in words, naming standby.delay', () => {
    expect(
      errorsOf(withStandby('standby: { host: db-recovery-1, dataDir: /srv/standby, port: 5434, delay: one hour }')),
    ).toEqual([
      `orders.yaml:${EXAMPLE.trimEnd().split('\n').length + 1}: standby.delay: expected a delay such as "1h", "10m" or 0 (no delay), got "one hour"`,
    ]);
  });

  it('refuses a standby on restore.port or drill.port, and inside restore.dataDir', () => {
    expect(
      errorsOf(withStandby('standby: { host: db-recovery-1, dataDir: /srv/standby, port: 5433, delay: 1h }')),
    ).toEqual([
      expect.stringMatching(
        /standby\.port: expected a port other than restore\.port on host db-recovery-1 \(the standby and a recovery could not both listen there\), got 5433$/,
      ),
    ]);
    expect(
      errorsOf(withStandby('standby: { host: db-recovery-1, dataDir: /srv/standby, port: 5499, delay: 1h }')),
    ).toEqual([
      expect.stringMatching(
        /standby\.port: expected a port other than drill\.port on host db-recovery-1 .*, got 5499$/,
      ),
    ]);
    expect(
      errorsOf(
        withStandby(
          'standby: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/recovery/standby, port: 5434, delay: 1h }',
        ),
      ),
    ).toEqual([
      expect.stringMatching(
        /standby\.dataDir: expected a directory apart from restore\.dataDir \(\/var\/lib\/postgresql\/15\/recovery\) on host db-recovery-1 \(a recovery there would overwrite the standby\), got "\/var\/lib\/postgresql\/15\/recovery\/standby"$/,
      ),
    ]);
    expect(
      errorsOf(
        withStandby('standby: { host: db-recovery-1, dataDir: /var/lib/postgresql/15/drill, port: 5434, delay: 1h }'),
      ),
    ).toEqual([
      expect.stringMatching(
        /standby\.dataDir: expected a directory apart from drill\.dataDir .*a drill there would overwrite the standby/,
      ),
    ]);
  });

  it('refuses a standby on another host than restore.host, saying why', () => {
    expect(
      errorsOf(withStandby('standby: { host: db-standby-2, dataDir: /srv/standby, port: 5434, delay: 1h }')),
    ).toEqual([
      expect.stringMatching(
        /standby\.host: expected restore\.host \(db-recovery-1\): a recovery that uses the standby moves its data directory into restore\.dataDir on that host, got "db-standby-2"$/,
      ),
    ]);
  });

  it('refuses a missing delay and an unknown field', () => {
    const errors = errorsOf(withStandby('standby: { host: db-recovery-1, dataDir: /srv/standby, port: 5434, lag: 3 }'));
    expect(errors.join('\n')).toMatch(/standby\.lag: unknown field/);
    expect(errors.join('\n')).toMatch(/standby\.delay: .*missing/);
  });
});
