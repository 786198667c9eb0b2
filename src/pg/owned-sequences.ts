// The sequences owned by integer columns (serial and identity columns): the
// ones the built-in invariant "sequences ahead of their columns" reads
// (activities/invariants.ts), so the ones the role must be able to read
// (src/privileges). One definition, so the check, the grants and the
// invariant cannot come to disagree on which sequences count.

/**
 * FROM and WHERE of a query over those sequences, with the aliases
 * s (the sequence), sn (its schema), t (the table), tn (its schema) and
 * a (the column). Add columns before it and `order by` after it.
 */
export const OWNED_INTEGER_SEQUENCES = `from pg_depend d
  join pg_class s on s.oid = d.objid and s.relkind = 'S'
  join pg_namespace sn on sn.oid = s.relnamespace
  join pg_class t on t.oid = d.refobjid
  join pg_namespace tn on tn.oid = t.relnamespace
  join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
 where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
   and d.deptype in ('a', 'i') and d.refobjsubid > 0
   and a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype)
   and sn.nspname not in ('pg_catalog', 'information_schema') and sn.nspname not like 'pg_temp%'`;
