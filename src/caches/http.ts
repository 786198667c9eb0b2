// HTTP purge endpoints (a CDN, an application's own cache-clear route): one
// request, and only a 2xx counts. The URL often carries a token (in the
// query or as user:password), so it is never shown; messages name the
// variable, the method, the host and the status.
import { LifeboatError, errorMessage } from '../errors';
import type { CacheResult } from '../recovery/contract';
import { hostOf, redact, urlFromEnv } from '../endpoints/secret-url';
import { PROBE_TIMEOUT_MS } from '../endpoints/probe';
import type { CacheInvalidator, InvalidationContext } from './types';

export const HTTP_TIMEOUT_MS = 60_000;

export function httpInvalidator(cfg: { urlEnv: string; method: string }, runbook: string): CacheInvalidator {
  const url = urlFromEnv(cfg.urlEnv, { runbook, what: 'the cache purge endpoint', protocols: ['http:', 'https:'] });
  const target = `http ${cfg.method} $${cfg.urlEnv}`;
  const where = `${cfg.method} $${cfg.urlEnv} (${hostOf(url, url.protocol === 'https:' ? 443 : 80)})`;
  return {
    target,
    async invalidate(ctx: InvalidationContext): Promise<CacheResult> {
      // fetch refuses URLs with credentials in them: send them as Basic auth.
      const request = new URL(url.href);
      const headers: Record<string, string> = { 'user-agent': 'lifeboat' };
      if (request.username || request.password) {
        const user = decodeURIComponent(request.username);
        const pass = decodeURIComponent(request.password);
        headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
        request.username = '';
        request.password = '';
      }
      const timeout = AbortSignal.timeout(HTTP_TIMEOUT_MS);
      let response: Response;
      try {
        response = await fetch(request, {
          method: cfg.method,
          headers,
          // A redirect is reported, not followed: a POST followed through a
          // 302 becomes a GET, which purges nothing and would look like success.
          redirect: 'manual',
          signal: ctx.signal ? AbortSignal.any([timeout, ctx.signal]) : timeout,
        });
        // The body is not shown (it may echo the token); read it so the connection is released.
        await response.arrayBuffer().catch(() => undefined);
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        const cause = err instanceof Error && err.cause !== undefined ? `: ${errorMessage(err.cause)}` : '';
        const why = timeout.aborted ? `no answer within ${HTTP_TIMEOUT_MS / 1000} s` : `${errorMessage(err)}${cause}`;
        throw new LifeboatError('CACHE_INVALIDATION_FAILED', `cache purge ${where} failed: ${redact(why, url)}`, {
          hints: [`is the purge endpoint up and reachable from this worker?`, 'purging again is safe: retry the step'],
        });
      }
      ctx.progress();
      if (response.status < 200 || response.status > 299) {
        const hints =
          response.status === 401 || response.status === 403
            ? [`check the credentials in ${cfg.urlEnv} on this worker`]
            : [
                `check the purge endpoint's own logs (Lifeboat shows neither the URL nor the response body: they may hold credentials)`,
              ];
        throw new LifeboatError(
          'CACHE_INVALIDATION_FAILED',
          `cache purge ${where} answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}, expected 2xx`,
          { hints: [...hints, 'purging again is safe: retry the step'], details: { status: response.status } },
        );
      }
      return { kind: 'http', target, status: response.status };
    },
    async check(signal?: AbortSignal): Promise<string> {
      // HEAD, never the purge method: preflight only asks whether the
      // endpoint answers at all, and any HTTP status says it does (a purge
      // route may well answer 405 to HEAD). Credentials are not sent.
      const request = new URL(url.href);
      request.username = '';
      request.password = '';
      const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
      try {
        const response = await fetch(request, {
          method: 'HEAD',
          headers: { 'user-agent': 'lifeboat' },
          redirect: 'manual',
          signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
        });
        await response.arrayBuffer().catch(() => undefined);
        return `http $${cfg.urlEnv} (${hostOf(url, url.protocol === 'https:' ? 443 : 80)}): answered HEAD with ${response.status}`;
      } catch (err) {
        if (signal?.aborted) throw err;
        const cause = err instanceof Error && err.cause !== undefined ? `: ${errorMessage(err.cause)}` : '';
        const why = timeout.aborted ? `no answer within ${PROBE_TIMEOUT_MS / 1000} s` : `${errorMessage(err)}${cause}`;
        throw new LifeboatError(
          'ENDPOINT_UNREACHABLE',
          `cache purge endpoint $${cfg.urlEnv} (${hostOf(url, url.protocol === 'https:' ? 443 : 80)}) does not answer: ${redact(why, url)}`,
          {
            hints: [
              'is the purge endpoint up and reachable from the workers of the lifeboat queue? (preflight sent HEAD, not the purge method)',
            ],
          },
        );
      }
    },
  };
}
