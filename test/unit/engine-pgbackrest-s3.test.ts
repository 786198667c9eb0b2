// pgBackRest's failures reaching an S3 repository, as Lifeboat names them:
// `info --output=json` exits 0 with the repository's error in its status
// (recorded from pgBackRest 2.45 against MinIO over TLS), a failed command
// prints `ERROR: [095]` or `[037]`. A refused certificate is
// REPOSITORY_UNREACHABLE naming TLS, a key the store refuses the same naming
// HTTP 403, a missing key SECRET_MISSING naming its PGBACKREST_* variable.
// test/integration/engine-pgbackrest-s3.test.ts runs the real thing.
import { describe, expect, it } from 'vitest';
import { failureError, failureOfRepoStatus, parseFailure } from '../../src/engine/pgbackrest/errors';
import { parseInfo } from '../../src/engine/pgbackrest/info';

const WRONG_CA =
  "[CryptoError] unable to verify certificate presented by '127.0.0.1:39411': [20] unable to get local issuer certificate";
const FORBIDDEN = [
  '[ProtocolError] HTTP request failed with 403 (Forbidden):',
  '*** Path/Query ***:',
  'GET /bkt/?delimiter=%2F&list-type=2&prefix=stanza-test%2Fbackup%2F',
  '*** Request Headers ***:',
  'authorization: <redacted>',
  'x-amz-date: <redacted>',
  '*** Response Content ***:',
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>',
].join('\n');

function infoWithRepoError(message: string): string {
  return JSON.stringify([
    {
      archive: [],
      backup: [],
      cipher: 'none',
      db: [],
      name: 'x',
      repo: [{ cipher: 'none', key: 1, status: { code: 99, message } }],
      status: { code: 99, lock: { backup: { held: false } }, message: 'other' },
    },
  ]);
}

describe("pgBackRest's S3 repository failures", () => {
  it("keeps each repository's status from info, which exits 0 when it cannot read one", () => {
    expect(parseInfo(infoWithRepoError(WRONG_CA), 'x').repos).toEqual([
      { key: 1, status: { code: 99, message: WRONG_CA } },
    ]);
  });

  it('names a refused certificate as TLS, with the CA file option in the hint', () => {
    const f = failureOfRepoStatus(WRONG_CA);
    expect(f).toEqual({ code: 95, text: WRONG_CA.replace('[CryptoError] ', ''), hints: [] });
    const err = failureError('info', f);
    expect(err.code).toBe('REPOSITORY_UNREACHABLE');
    expect(err.what).toBe(
      `pgbackrest info failed: the repository's TLS certificate was refused: ${WRONG_CA.replace('[CryptoError] ', '')}`,
    );
    expect(err.hints[0]).toBe(`pgBackRest error [095]: ${f.text}`);
    expect(err.hints[1]).toContain('repoN-storage-ca-file');
    expect(err.hints[1]).toContain('never turn verification off (repoN-storage-verify-tls=n)');
  });

  it('says, for a certificate that names the endpoint IP only as an IP address, that 2.45 wants it as a DNS name', () => {
    const f = parseFailure(
      "ERROR: [095]: unable to find hostname '127.0.0.1' in certificate common name or subject alternative names\n",
      95,
    );
    const err = failureError('repo-ls', f);
    expect(err.code).toBe('REPOSITORY_UNREACHABLE');
    expect(err.what).toMatch(
      /^pgbackrest repo-ls failed: the repository's TLS certificate was refused: unable to find/,
    );
    expect(err.hints).toContain(
      "pgBackRest 2.45 matches repoN-s3-endpoint against the certificate's DNS names and common name only, not its IP addresses: a certificate for an IP endpoint must also carry it as a DNS name (subjectAltName DNS:<ip>)",
    );
  });

  it('leaves a CryptoError that is not about a certificate (a wrong cipher passphrase) as it was', () => {
    const err = failureError('restore', { code: 95, text: 'unable to flush', hints: [] });
    expect([err.code, err.what]).toEqual(['TOOL_FAILED', 'pgbackrest restore failed: unable to flush']);
  });

  it("names a key the store refuses by the store's own error code, in one line", () => {
    const f = failureOfRepoStatus(FORBIDDEN);
    expect(f.code).toBe(39);
    const err = failureError('info', f);
    expect([err.code, err.what]).toEqual([
      'REPOSITORY_UNREACHABLE',
      "pgbackrest info failed: the S3 store refused pgBackRest's request (HTTP 403 SignatureDoesNotMatch)",
    ]);
    expect(err.hints[1]).toContain('PGBACKREST_REPON_S3_KEY');
  });

  it('names a missing key as a missing secret, with the variable pgBackRest reads it from', () => {
    const f = parseFailure('ERROR: [037]: backup command requires option: repo2-s3-key-secret\n', 37);
    const err = failureError('backup', f, 'BACKUP_FAILED');
    expect([err.code, err.what]).toEqual([
      'SECRET_MISSING',
      'pgbackrest backup failed: no repo2-s3-key-secret for the repository',
    ]);
    expect(err.hints[1]).toContain('PGBACKREST_REPO2_S3_KEY_SECRET in its environment');
    // Any other missing option stays a configuration problem.
    expect(failureError('info', parseFailure('ERROR: [037]: info command requires option: pg1-path\n', 37)).code).toBe(
      'RUNBOOK_INVALID',
    );
  });
});
