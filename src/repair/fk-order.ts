// The order in which one repair transaction restores its tables (apply.ts):
// parents before children, so that a restored child row (a payment) finds its
// restored parent (the order the incident deleted with it) already there.
//
// PostgreSQL checks a NOT DEFERRABLE foreign key at the end of each statement
// (its RI triggers fire after the statement, so rows of one table referring
// to each other within one INSERT are fine); a DEFERRABLE one is checked at
// COMMIT once apply has run SET CONSTRAINTS ALL DEFERRED. Only the former
// needs the order; every foreign key between two repaired tables is followed
// anyway. Tables in a cycle keep the order they were given: a cycle of
// NOT DEFERRABLE keys whose restored rows refer to each other fails the whole
// transaction (23503, nothing applied), reported with `cycle`.
import type { ClientBase } from 'pg';

export interface TableOrder {
  /** Indices into the given tables, parents first. */
  order: number[];
  /** Tables (given names) in a cycle of NOT DEFERRABLE foreign keys among themselves; empty when none. */
  cycle: string[];
}

/** `tables`: qualified names as readTableShape gives them. Reads pg_constraint only. */
export async function parentsFirst(client: ClientBase, tables: readonly string[]): Promise<TableOrder> {
  if (tables.length < 2) return { order: tables.map((_, i) => i), cycle: [] };
  const { rows } = await client.query<{ child: number; parent: number; deferrable: boolean }>(
    `select array_position($1::text[]::regclass[], conrelid::regclass) - 1 as child,
            array_position($1::text[]::regclass[], confrelid::regclass) - 1 as parent,
            condeferrable as deferrable
       from pg_constraint
      where contype = 'f' and conrelid <> confrelid
        and conrelid = any($1::text[]::regclass[]) and confrelid = any($1::text[]::regclass[])`,
    [tables],
  );
  // Kahn's algorithm, taking the earliest given table that is ready: stable when nothing refers to anything.
  const parentsOf = tables.map(() => new Set<number>());
  for (const r of rows) parentsOf[r.child]!.add(r.parent);
  const order: number[] = [];
  const done = new Set<number>();
  while (order.length < tables.length) {
    const ready = tables.findIndex((_, i) => !done.has(i) && [...parentsOf[i]!].every((p) => done.has(p)));
    if (ready < 0) break;
    order.push(ready);
    done.add(ready);
  }
  const rest = tables.map((_, i) => i).filter((i) => !done.has(i));
  // What is left is in (or behind) a cycle: in the given order; its NOT DEFERRABLE part is what may fail.
  const strict = new Set(
    rows.filter((r) => !r.deferrable && !done.has(r.child) && !done.has(r.parent)).flatMap((r) => [r.child, r.parent]),
  );
  return { order: [...order, ...rest], cycle: rest.filter((i) => strict.has(i)).map((i) => tables[i]!) };
}
