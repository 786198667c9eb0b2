// The SQL a repair runs on the live primary (apply.ts), built in one place so
// that the statements shown to approvers (`repairSqlText`, the artefact of
// the diff step) are the ones apply executes.
//
// Staging holds every value as text: k<j> the key texts (for reporting),
// r<i> the values to restore (B), e<i> the values the live row must still
// have (A, or N as shown; all NULL for an insert). Values are cast back to
// the column's type on the way into the table; the guard compares the live
// row as text, in the text format pinned by keys.pinTextFormat.
import type { RepairClass } from './classify';
import { ident, type TableShape } from './keys';

export const STAGING = 'lifeboat_repair_staging';

export interface RepairStatements {
  stagingColumns: string[];
  createStaging: string;
  /** null when the table has no column an UPDATE may set (every column in the key, generated or identity ALWAYS). */
  update: string | null;
  insert: string;
  /** Keys of the staged rows neither statement restored (the guard failed), first $1 of them, with the total. */
  skipped: string;
}

export function repairStatements(shape: Pick<TableShape, 'qualified' | 'columns' | 'keyColumns'>): RepairStatements {
  const cols = shape.columns;
  const keyIdx = shape.keyColumns.map((k) => cols.findIndex((c) => c.name === k));
  const stagingColumns = [
    'seq',
    'op',
    ...keyIdx.map((_, j) => `k${j}`),
    ...cols.map((_, i) => `r${i}`),
    ...cols.map((_, i) => `e${i}`),
  ];
  const cast = (i: number) => `s.r${i}::${cols[i]!.type}`;
  const keyMatch = keyIdx.map((ci) => `t.${ident(cols[ci]!.name)} = ${cast(ci)}`).join(' and ');
  const guard = cols.map((c, i) => `t.${ident(c.name)}::text is not distinct from s.e${i}`).join('\n      and ');
  const settable = cols
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => !c.generated && !c.identityAlways && !shape.keyColumns.includes(c.name));
  const writable = cols.map((c, i) => ({ c, i })).filter(({ c }) => !c.generated);
  const overriding = writable.some(({ c }) => c.identityAlways) ? ' overriding system value' : '';
  return {
    stagingColumns,
    createStaging: `create temp table ${STAGING} (seq int primary key, op text not null, ${stagingColumns
      .slice(2)
      .map((c) => `${c} text`)
      .join(', ')}, done boolean not null default false) on commit drop`,
    update:
      settable.length === 0
        ? null
        : `with u as (
  update ${shape.qualified} t
     set ${settable.map(({ c, i }) => `${ident(c.name)} = ${cast(i)}`).join(',\n         ')}
    from ${STAGING} s
   where s.op = 'update' and ${keyMatch}
      -- the guard: the live row is still, column by column, the row classify saw
      and ${guard}
  returning s.seq)
, d as (update ${STAGING} x set done = true from u where x.seq = u.seq returning 1)
select count(*)::text as n from d`,
    insert: `with i as (
  insert into ${shape.qualified} (${writable.map(({ c }) => ident(c.name)).join(', ')})${overriding}
  select ${writable.map(({ i }) => cast(i)).join(', ')}
    from ${STAGING} s where s.op = 'insert' order by s.seq
  -- the guard: a key (or any unique value) that exists again is skipped
  on conflict do nothing
  returning ${keyIdx.map((ci, j) => `${ident(cols[ci]!.name)}::text as k${j}`).join(', ')})
, d as (update ${STAGING} x set done = true from i where x.op = 'insert' and ${keyIdx.map((_, j) => `x.k${j} = i.k${j}`).join(' and ')} returning 1)
select count(*)::text as n from d`,
    skipped: `select ${keyIdx.map((_, j) => `k${j}`).join(', ')}, count(*) over ()::text as total from ${STAGING} where not done order by seq limit $1`,
  };
}

/** The whole transaction as an operator reads it before approving (the artefact of the diff step). */
export function repairSqlText(
  shape: Pick<TableShape, 'qualified' | 'columns' | 'keyColumns'>,
  opts: { classes: readonly RepairClass[]; auditTable: string; planFile: string },
): string {
  const st = repairStatements(shape);
  return [
    `-- Repair of ${shape.qualified}: restores the plan's rows of classes ${opts.classes.join(', ')} from ${opts.planFile}.`,
    "-- One transaction for every table of the repair (parents before children, each table's staging dropped after it); a row whose guard fails is skipped and reported, never overwritten.",
    'begin isolation level read committed;',
    `-- creates ${opts.auditTable} if absent; takes an advisory lock on the repair id; stops here if the audit table has a row for it (already applied)`,
    `${st.createStaging};`,
    `-- staging loaded from the plan in batched INSERTs (${st.stagingColumns.join(', ')})`,
    ...(st.update ? [`${st.update};`] : ['-- no UPDATE: the table has no column an UPDATE may set']),
    `${st.insert};`,
    '-- sequences owned by a column of the table: setval to max(column) when behind (never backwards)',
    `-- after every table of the repair, one row each: insert into ${opts.auditTable} (repair_id, table_name, updated, inserted, skipped, classes, approved_by) values (...);`,
    'commit;',
    '',
  ].join('\n');
}
