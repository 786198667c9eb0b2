// Who may talk to `lifeboat chatops`: every request but /healthz carries
// Slack's request signature (https://api.slack.com/authentication/verifying-requests-from-slack),
// the generic JSON endpoint included, so one signing secret covers both.
//   X-Slack-Request-Timestamp: <unix seconds>
//   X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:<timestamp>:<raw body>")>
// The HMAC is over the raw bytes as received: a body parsed and serialised
// again would not match. The timestamp bounds how long a captured request
// stays usable (five minutes either way, as Slack's own SDKs check), and the
// replay guard refuses the same signature twice within that time, so a
// captured approval cannot be sent again while it is still fresh.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a request's timestamp may be from our clock, either way. */
export const MAX_SKEW_SECONDS = 5 * 60;

export type AuthRefusal =
  | { why: 'missing-signature'; message: string }
  | { why: 'bad-signature'; message: string }
  | { why: 'stale-timestamp'; message: string }
  | { why: 'replayed'; message: string };

/** The signature Slack sends for this timestamp and body. */
export function signRequest(secret: string, timestamp: string, body: Buffer | string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

/** The two headers a bot sends with a body, signed now (or at `timestamp`). */
export function signedHeaders(
  secret: string,
  body: string,
  timestamp = String(Math.floor(Date.now() / 1000)),
): Record<string, string> {
  return { 'X-Slack-Request-Timestamp': timestamp, 'X-Slack-Signature': signRequest(secret, timestamp, body) };
}

export interface SignedHeaders {
  timestamp?: string;
  signature?: string;
}

/**
 * Checks the signature and the timestamp; undefined when both are good.
 * The messages name what was wrong, never the expected signature or the secret.
 */
export function verifySignature(
  secret: string,
  headers: SignedHeaders,
  body: Buffer,
  nowSeconds: number,
): AuthRefusal | undefined {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) {
    return {
      why: 'missing-signature',
      message:
        'missing X-Slack-Request-Timestamp or X-Slack-Signature: requests must be signed with the signing secret',
    };
  }
  if (!/^\d{1,12}$/.test(timestamp))
    return { why: 'bad-signature', message: 'X-Slack-Request-Timestamp is not a Unix time in seconds' };
  // Checked before the HMAC, as Slack advises: an old request is refused
  // whether or not its signature is good.
  const skew = nowSeconds - Number(timestamp);
  if (Math.abs(skew) > MAX_SKEW_SECONDS) {
    return {
      why: 'stale-timestamp',
      message: `X-Slack-Request-Timestamp is ${Math.abs(skew)} s ${skew > 0 ? 'old' : 'in the future'}; at most ${MAX_SKEW_SECONDS} s either way is accepted (check the sender's clock)`,
    };
  }
  const expected = Buffer.from(signRequest(secret, timestamp, body), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  // timingSafeEqual needs equal lengths; a length mismatch is itself no secret.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      why: 'bad-signature',
      message: 'X-Slack-Signature does not match the body: wrong signing secret, or the body was changed on the way',
    };
  }
  return undefined;
}

/**
 * Signatures seen while their timestamp is still acceptable. An entry can be
 * forgotten once its timestamp is out of the window: the timestamp check
 * refuses that request by then anyway.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();
  private lastPrune = 0;

  /** Records the signature; false when it was already seen. */
  firstUse(signature: string, timestamp: string, nowSeconds: number): boolean {
    this.prune(nowSeconds);
    if (this.seen.has(signature)) return false;
    this.seen.set(signature, Number(timestamp) + MAX_SKEW_SECONDS);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private prune(nowSeconds: number): void {
    if (nowSeconds === this.lastPrune) return;
    this.lastPrune = nowSeconds;
    for (const [sig, until] of this.seen) if (until < nowSeconds) this.seen.delete(sig);
  }
}
