// The repair tests' database (src/dev/repair-db.ts, which bench/repair.ts
// shares: bench/ may not import test/).
export {
  AUDIT_SCHEMA,
  REPAIR_ROLE,
  repairGrants,
  startRepairDb,
  type RepairDb,
  type TwoTableIncident,
} from '../../src/dev/repair-db';
