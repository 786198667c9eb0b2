// URLs that may hold secrets (a Redis password, a purge token in the query,
// a pgbouncer admin password). The runbook names the environment variable;
// the worker reads the URL here and never shows it: results, errors and logs
// name the variable and at most the host, because workflow history is
// visible to everyone who can open the Temporal UI.
import { LifeboatError } from '../errors';

/** Reads and parses the URL in `envName`; SECRET_MISSING when unset or not a URL of an allowed scheme. */
export function urlFromEnv(
  envName: string,
  opts: { runbook: string; what: string; protocols: readonly string[] },
): URL {
  const raw = process.env[envName];
  const schemes = opts.protocols.map((p) => `${p}//`).join(' or ');
  if (raw === undefined || raw.trim() === '') {
    throw new LifeboatError('SECRET_MISSING', `environment variable ${envName} is not set in this process`, {
      hints: [
        `runbook ${opts.runbook} reads the URL of ${opts.what} from ${envName} (${schemes}...)`,
        'set it in the environment of the worker (never in the runbook)',
      ],
    });
  }
  let url: URL | undefined;
  try {
    url = new URL(raw.trim());
  } catch {
    url = undefined;
  }
  if (!url || !opts.protocols.includes(url.protocol)) {
    // The value itself is never echoed: it may be the secret, pasted whole.
    throw new LifeboatError('SECRET_MISSING', `environment variable ${envName} does not hold a ${schemes} URL`, {
      hints: [
        `runbook ${opts.runbook} reads the URL of ${opts.what} from ${envName}`,
        'check its value on this worker',
      ],
    });
  }
  return url;
}

/** host:port for messages: where, without who or with what password. */
export function hostOf(url: URL, defaultPort: number): string {
  return `${url.hostname}:${url.port === '' ? defaultPort : url.port}`;
}

/**
 * Removes the URL, its password and its query from text that came from a
 * library (an error message), in case the library quoted them.
 */
export function redact(text: string, url: URL): string {
  const secrets = [
    url.href,
    url.search.slice(1),
    url.password,
    safeDecode(url.password),
    url.username && url.password ? `${url.username}:${url.password}` : '',
  ]
    .filter((s) => s.length >= 3)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
