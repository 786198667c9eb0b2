// The Temporal Web UI page of a run, for `lifeboat recover`, `status`,
// `pending` and chat-ops replies to print. The
// UI's address cannot be read from the frontend's (gRPC) address, so: the
// --ui-url flag, else LIFEBOAT_UI_URL; else, only when the frontend is on
// this machine (a loopback address), the Temporal CLI dev server's own
// convention, its UI on the frontend's port + 1000 (7233 -> 8233, also this
// project's docker-compose), and only once that port answers as a Temporal UI
// (GET /api/v1/settings, the UI server's own endpoint); else no link, and a
// line saying how to get one. A remote server is never probed: a wrong link
// at 3 a.m. sends someone to another cluster's UI or to nothing.

export const UI_URL_ENV = 'LIFEBOAT_UI_URL';

/** How long the probe of the dev server's UI may take: recover must not hang on it. */
const PROBE_MS = 1500;

export type UiBase = { base: string; from: 'flag' | 'env' | 'dev-server' } | { base?: undefined; hint: string };

/** host and port of a Temporal frontend address ("127.0.0.1:7233", "[::1]:7233", "temporal.internal"). */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(address) ?? /^([^:]+)(?::(\d+))?$/.exec(address);
  if (!m) return { host: address, port: 7233 };
  return { host: m[1]!, port: m[2] ? Number(m[2]) : 7233 };
}

/** The dev server's UI for a frontend address: its port + 1000 (temporal server start-dev --ui-port's default). */
export function devServerUi(address: string): string | undefined {
  const { host, port } = parseAddress(address);
  if (!Number.isInteger(port) || port + 1000 > 65535) return undefined;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port + 1000}`;
}

/** Whether base answers as a Temporal Web UI: its settings endpoint returns the UI server's JSON. */
export async function answersAsTemporalUi(base: string, timeoutMs = PROBE_MS): Promise<boolean> {
  try {
    const r = await fetch(`${base}/api/v1/settings`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    if (!r.ok) return false;
    const body = (await r.json()) as Record<string, unknown>;
    return typeof body.Version === 'string' && typeof body.Auth === 'object';
  } catch {
    return false;
  }
}

/** Whether a frontend address is on this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(address: string): boolean {
  const { host } = parseAddress(address);
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** uiUrl: the --ui-url flag, which wins over LIFEBOAT_UI_URL. */
export async function temporalUiBase(
  address: string,
  env: NodeJS.ProcessEnv = process.env,
  uiUrl?: string,
): Promise<UiBase> {
  const flag = uiUrl?.trim();
  if (flag) return { base: flag.replace(/\/+$/, ''), from: 'flag' };
  const set = env[UI_URL_ENV]?.trim();
  if (set) return { base: set.replace(/\/+$/, ''), from: 'env' };
  const how = `pass --ui-url or set ${UI_URL_ENV} to your Temporal Web UI's address (e.g. export ${UI_URL_ENV}=https://temporal.example.com) to get one here`;
  if (!isLoopback(address))
    return {
      hint: `no Temporal UI link: the server at ${address} is not on this machine, and its UI's address cannot be derived from it; ${how}`,
    };
  const guess = devServerUi(address);
  if (guess && (await answersAsTemporalUi(guess))) return { base: guess, from: 'dev-server' };
  return {
    hint: `no Temporal UI link: ${guess ? `${guess} (where a dev server for ${address} keeps its UI) does not answer as one` : `none can be derived from ${address}`}; ${how}`,
  };
}

/**
 * The tab a link opens: User Metadata, whose Current Details hold the
 * checklist (workflows/recovery/checklist.ts): what the run waits for, who
 * may decide and how. Its route needs the run id: the UI answers 400 to
 * /workflows/<id>/user-metadata, and only /workflows/<id> itself (the
 * History tab, which shows none of that) works without one. Not .../metadata:
 * that is the Search Attributes and Memo page. Same route in UI 2.42 (the
 * dev server's) and 2.56.
 */
export const CHECKLIST_TAB = { name: 'User Metadata', path: 'user-metadata' } as const;

/** The run's checklist in the Temporal UI: its User Metadata tab, for one run of the workflow id. */
export function runPage(base: string, namespace: string, workflowId: string, runId: string): string {
  return `${workflowPage(base, namespace, workflowId)}/${encodeURIComponent(runId)}/${CHECKLIST_TAB.path}`;
}

/** The workflow id's page (its latest run, History tab), when no run id is known yet. */
export function workflowPage(base: string, namespace: string, workflowId: string): string {
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The words before a link, so a reader knows where it lands and that the page goes stale. */
export const CHECKLIST_LINK_NOTE = `the run's "${CHECKLIST_TAB.name}" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest)`;

/** The link under a line that says where it lands: the URL alone on its line, to copy or click. */
export function checklistLines(url: string): [string, string] {
  return [`Temporal UI, ${CHECKLIST_LINK_NOTE}:`, url];
}
