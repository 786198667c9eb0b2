// A restored copy refusing a repair's read (snapshot-before/after): the
// usual hint, grant it, cannot help on a copy paused in recovery, so the
// error says where the grant must be and why this run cannot get it.
import { describe, expect, it } from 'vitest';
import { LifeboatError } from '../../src/errors';
import { copyReadRefused } from '../../src/repair/snapshot';

describe('copyReadRefused', () => {
  it('says the copy has its backup’s grants, how to fix it for later backups, and keeps the original hint', () => {
    const refused = new LifeboatError(
      'PRIVILEGE_MISSING',
      'reading "shop"."orders" failed: permission denied for table orders',
      { hints: ['the role needs USAGE on the schema and SELECT on "shop"."orders" (lifeboat grants)'] },
    );
    const err = copyReadRefused(refused, 'orders', ['shop.orders', 'shop.payments']) as LifeboatError;
    expect(err.code).toBe('PRIVILEGE_MISSING');
    expect(err.what).toBe('on the restored copy: reading "shop"."orders" failed: permission denied for table orders');
    expect(err.hints).toEqual([
      'the role needs USAGE on the schema and SELECT on "shop"."orders" (lifeboat grants)',
      'the copy was restored from a base backup and has the grants that backup recorded: a grant made on the primary after it is not in the copy, and a copy paused in recovery takes no GRANT',
      'grant it on the primary now (lifeboat grants --runbook orders --repair-tables shop.orders,shop.payments) and take a base backup (lifeboat backup --runbook orders), so that copies restored from later backups have it',
      'for this incident, an earlier backup is unlikely to have it either: repair by hand from a copy read as a role that could read these tables when the backup was taken (e.g. their owner)',
    ]);
    expect(err.cause).toBe(refused);
  });

  it('leaves every other error as it is', () => {
    const unreachable = new LifeboatError('PG_UNREACHABLE', 'connection refused');
    expect(copyReadRefused(unreachable, 'orders', ['shop.orders'])).toBe(unreachable);
    const plain = new Error('boom');
    expect(copyReadRefused(plain, 'orders', ['shop.orders'])).toBe(plain);
  });
});
