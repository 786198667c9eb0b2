// The runbook of the embedded demo (`lifeboat dev`) and of the tests: one
// generator, so what the tests prove is what the demo runs. Its paths depend
// on where the sandbox lives, so it is written out at start rather than
// shipped as a fixed file.

export interface DemoRunbookParams {
  name?: string;
  /** Sandbox primary. */
  pgPort: number;
  pgUser?: string;
  database?: string;
  /** file:///... or s3://... */
  repoUrl: string;
  /** With s3:// repositories: the variable holding the endpoint. */
  endpointEnv?: string;
  /** Host name of the sandbox worker (its `lifeboat-host-<host>` queue). */
  host: string;
  /** Directory for restore and drill data directories and backup scratch. */
  stateDir: string;
  restorePort: number;
  drillPort: number;
  retainFull?: number;
  rpoSeconds?: number;
  pgBin?: string;
  /** Variable holding the Redis URL of the application's cache (keys orders:*). */
  redisUrlEnv?: string;
  /** pgbouncer in front of the application: admin URL variable and the file its [databases] includes. */
  pgbouncer?: { adminUrlEnv: string; databasesFile: string; database?: string };
  /** Approver names: approve-fence takes one of them, approve-promote two (or one when only one is named). */
  approvers?: string[];
  /** objectives.rtoSeconds (default 2700). */
  rtoSeconds?: number;
  /** Invariants after the demo's own. */
  extraInvariants?: Array<{ name: string; sql: string; expect: string | number | boolean }>;
  /** notify.webhookUrlEnv: the variable holding the webhook URL. */
  notifyWebhookUrlEnv?: string;
}

export function demoRunbookYaml(p: DemoRunbookParams): string {
  const repo = p.endpointEnv ? `{ url: "${p.repoUrl}", endpointEnv: ${p.endpointEnv} }` : `{ url: "${p.repoUrl}" }`;
  return `# Written by Lifeboat's sandbox (src/dev/demo-runbook.ts); see runbooks/orders.example.yaml
# for a commented runbook. The sandbox primary trusts loopback connections,
# so no passwordEnv is needed here.
name: ${p.name ?? 'demo'}
cluster:
  primary: { host: 127.0.0.1, port: ${p.pgPort}, database: ${p.database ?? 'appdb'}, user: ${p.pgUser ?? 'lifeboat'} }
  pgBin: ${p.pgBin ?? '/usr/lib/postgresql/15/bin'}
  osUser: postgres
repository: ${repo}
restore: { host: ${p.host}, dataDir: ${p.stateDir}/recovery, port: ${p.restorePort}, mode: side-by-side }
backup: { host: ${p.host}, retainFull: ${p.retainFull ?? 3}, scratchDir: ${p.stateDir}/scratch }
gates:
  table: system_gate
  writers: { gate: writers, readOnlyRoles: [app] }
  backgroundJobs: { gate: background_jobs }
  outbox: { gate: outbox_publisher, table: outbox, idColumn: id, publishedColumn: published_at }
invariants:
  - { name: no negative amounts, sql: "select count(*) from orders where amount < 0", expect: 0 }
${(p.extraInvariants ?? []).map((i) => `  - { name: ${JSON.stringify(i.name)}, sql: ${JSON.stringify(i.sql)}, expect: ${JSON.stringify(i.expect)} }\n`).join('')}${extras(p)}objectives: { rpoSeconds: ${p.rpoSeconds ?? 300}, rtoSeconds: ${p.rtoSeconds ?? 2700} }
drill: { host: ${p.host}, dataDir: ${p.stateDir}/drill, port: ${p.drillPort}, targetWindow: 24h }
`;
}

function extras(p: DemoRunbookParams): string {
  const out: string[] = [];
  if (p.redisUrlEnv) out.push(`caches:\n  - redis: { urlEnv: ${p.redisUrlEnv}, patterns: ["orders:*"] }`);
  if (p.pgbouncer) {
    out.push(
      `traffic:\n  pgbouncer: { adminUrlEnv: ${p.pgbouncer.adminUrlEnv}, database: ${p.pgbouncer.database ?? p.database ?? 'appdb'}, databasesFile: ${p.pgbouncer.databasesFile} }`,
    );
  }
  if (p.notifyWebhookUrlEnv) out.push(`notify: { webhookUrlEnv: ${p.notifyWebhookUrlEnv} }`);
  if (p.approvers?.length) {
    const list = p.approvers.join(', ');
    out.push(
      `approvals:\n  approve-fence: { approvers: [${list}] }\n  approve-promote: { approvers: [${list}], min: ${Math.min(2, p.approvers.length)} }`,
    );
  }
  return out.map((x) => `${x}\n`).join('');
}

/** The demo application's schema: orders, the gates and an outbox (DESIGN.md §4.1). */
export const DEMO_SCHEMA_SQL = `
create table if not exists orders (
  id bigserial primary key,
  customer text not null,
  status text not null check (status in ('pending', 'paid', 'shipped', 'canceled')),
  amount numeric(12,2) not null,
  updated_at timestamptz not null default now()
);
create table if not exists system_gate (
  gate_name text primary key,
  enabled boolean not null,
  updated_at timestamptz not null default now()
);
insert into system_gate (gate_name, enabled) values ('writers', true), ('background_jobs', true), ('outbox_publisher', true)
  on conflict do nothing;
create table if not exists outbox (
  id bigserial primary key,
  topic text not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  published_at timestamptz
);
`;

export const DEMO_SEED_SQL = `
insert into orders (customer, status, amount)
select 'customer-' || g, (array['pending','paid','shipped'])[1 + g % 3], (g % 97) + 0.5
from generate_series(1, 500) g;
insert into outbox (topic, payload, published_at)
select 'order.created', jsonb_build_object('order_id', id), case when id <= 450 then now() end from orders;
`;
