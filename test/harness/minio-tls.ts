// A MinIO of the test's own serving HTTPS on loopback, with a test CA and a
// server certificate made at test time by openssl (MinIO reads public.crt and
// private.key from its --certs-dir). The certificate names 127.0.0.1 twice:
// as an IP subjectAltName (what Go, Node and curl check for an IP endpoint)
// and as a DNS subjectAltName, because pgBackRest 2.45 matches the endpoint
// host against the certificate's DNS names and common name only: with the IP
// name alone it refuses with "[095]: unable to find hostname '127.0.0.1' in
// certificate common name or subject alternative names". A second CA that
// signed nothing is made too, for tests of a wrong CA file.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { stopChild } from '../../src/dev/child';
import { spawnMinio } from '../../src/dev/minio';
import { freePort, waitFor } from './ports';

export interface TestCa {
  /** The CA certificate that signed the server's (PEM): what a client trusts. */
  caFile: string;
  /** A CA certificate that signed nothing here: a client trusting only it must refuse the server. */
  otherCaFile: string;
  /** MinIO's --certs-dir: public.crt and private.key. */
  certsDir: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A test CA, a server certificate for 127.0.0.1 signed by it, and an
 * unrelated CA, under `dir`. `ipOnly`: the certificate names 127.0.0.1 as an
 * IP address only (what pgBackRest 2.45 refuses).
 */
export function makeTestCa(dir: string, opts: { ipOnly?: boolean } = {}): TestCa {
  mkdirSync(dir, { recursive: true });
  const certsDir = path.join(dir, 'certs');
  mkdirSync(certsDir, { recursive: true });
  const selfSigned = (name: string, cn: string) =>
    openssl(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`]
        .concat(['-days', '2', '-subj', `/CN=${cn}`])
        .concat(['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']),
      dir,
    );
  selfSigned('ca', 'Lifeboat test CA');
  selfSigned('other-ca', 'Lifeboat unrelated test CA');
  openssl(
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path.join(certsDir, 'private.key')],
    dir,
  );
  openssl(
    ['req', '-new', '-key', path.join(certsDir, 'private.key'), '-out', 'server.csr', '-subj', '/CN=127.0.0.1'],
    dir,
  );
  writeFileSync(
    path.join(dir, 'server.ext'),
    [
      `subjectAltName=IP:127.0.0.1${opts.ipOnly ? '' : ',DNS:127.0.0.1'}`,
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'].concat([
      '-out',
      path.join(certsDir, 'public.crt'),
      '-days',
      '2',
      '-extfile',
      'server.ext',
    ]),
    dir,
  );
  // Certificates are public: readable by the PostgreSQL OS user that runs pgBackRest (keys are not).
  chmodSync(dir, 0o755);
  chmodSync(certsDir, 0o700);
  for (const f of ['ca.crt', 'other-ca.crt']) chmodSync(path.join(dir, f), 0o644);
  for (const f of ['ca.key', 'other-ca.key']) chmodSync(path.join(dir, f), 0o600);
  return { caFile: path.join(dir, 'ca.crt'), otherCaFile: path.join(dir, 'other-ca.crt'), certsDir };
}

export interface TlsMinio {
  /** https://127.0.0.1:<port> */
  endpoint: string;
  host: string;
  port: number;
  bucket: string;
  accessKey: string;
  secretKey: string;
  ca: TestCa;
  logFile: string;
  stop(): Promise<void>;
}

/** MinIO over HTTPS with a fresh test CA, one bucket created through the CA-verified connection. */
export async function startTlsMinio(label: string, opts: { ipOnly?: boolean } = {}): Promise<TlsMinio> {
  const root = mkdtempSync(path.join(os.tmpdir(), `lifeboat-minio-tls-${label}-`));
  chmodSync(root, 0o755);
  const ca = makeTestCa(path.join(root, 'pki'), opts);
  const port = await freePort();
  const consolePort = await freePort();
  // Test-only credentials of a MinIO that lives for one test file on loopback.
  const accessKey = `lifeboat-tls-${label}`;
  const secretKey = `lifeboat-tls-secret-${process.pid}-${Date.now().toString(36)}`;
  const logFile = path.join(root, 'minio.log');
  const child = spawnMinio({
    dataDir: path.join(root, 'data'),
    port,
    consolePort,
    logFile,
    user: accessKey,
    password: secretKey,
    args: ['--certs-dir', ca.certsDir],
  });
  const stop = async () => {
    await stopChild(child);
    rmSync(root, { recursive: true, force: true });
  };
  const endpoint = `https://127.0.0.1:${port}`;
  const bucket = 'pgbackrest';
  // The client trusts the test CA only, so this also proves MinIO serves the certificate made above.
  const agent = new Agent({ ca: readFileSync(ca.caFile) });
  const s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    requestHandler: { httpsAgent: agent },
  });
  try {
    await waitFor(
      `MinIO over TLS on ${endpoint}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`minio exited with ${child.exitCode}; see ${logFile}`);
        await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: Error) => {
          // A retry after a reply that was lost: the bucket is there.
          if (err.name !== 'BucketAlreadyOwnedByYou') throw err;
        });
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
  } catch (err) {
    await stop();
    throw err;
  } finally {
    s3.destroy();
    agent.destroy();
  }
  return { endpoint, host: '127.0.0.1', port, bucket, accessKey, secretKey, ca, logFile, stop };
}
