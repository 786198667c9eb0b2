// A real Temporal cluster for a test file, not the dev server: the Temporal
// server that scripts/setup.sh builds (v1.32.2), its persistence and SQL
// visibility in a PostgreSQL 15 of its own (schemas set up with the server's
// SQL tool from the schema files setup.sh copies beside it), configured from
// ./temporal-cluster-config.ts, whose dynamic config, schema setup and
// namespace scripts docker-compose.yml runs too; mTLS required on
// the frontend with certificates this harness makes with openssl (a CA, a
// server certificate for 127.0.0.1/localhost, a client certificate), every
// port a free loopback one, and API keys checked: every request but the
// health check needs a JWT (Authorization: Bearer, what the SDKs send for an
// API key) signed by a key of this harness, its permissions claim naming
// namespace:role (the server's default claim mapper and authorizer). The
// system worker talks to an internal frontend, which needs neither. The
// `default` namespace is registered with the Temporal CLI over mTLS with a
// system admin's key (docker/temporal/create-namespace.sh); Lifeboat's search attributes are left to the worker,
// which registers them before it polls (src/worker.ts).
// `stop()` stops the server, then removes its PostgreSQL and its directory.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { stopChild } from '../../src/dev/child';
import { requireTool, toolsDir } from '../../src/tools';
import { startPrimary, type Primary } from './postgres';
import { freePort, waitFor } from './ports';
import { TEMPORAL_CLUSTER } from './temporal-cluster-config';

const exec = promisify(execFile);

/**
 * A free loopback port below 32768: the server stores each service's
 * membership port in cluster_membership.rpc_port, a smallint, and refuses to
 * start with one from Linux's ephemeral range (32768-60999), where
 * freePort's come from.
 */
async function freeLowPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free loopback port between 20000 and 32000');
}

export interface ClusterCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface TemporalCluster {
  /** The frontend's gRPC address, 127.0.0.1:<port>, mTLS only. */
  address: string;
  certs: ClusterCerts;
  /** The Temporal CLI's flags for this server over mTLS, as a system admin. */
  cliArgs: string[];
  /** An API key (a JWT this server accepts) granting permissions such as "default:admin" or "temporal-system:admin". */
  apiKey(permissions: string[]): string;
  logFile: string;
  pg: Primary;
  stop(): Promise<void>;
}

function tool(name: 'temporal-server' | 'temporal-sql'): string {
  const p = path.join(toolsDir(), name);
  if (!existsSync(p))
    throw new Error(
      `${p} not found: run bash scripts/setup.sh (it builds the Temporal server v${TEMPORAL_CLUSTER.serverVersion} once per machine)`,
    );
  return p;
}

/** A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate it signed (EC P-256, one day). */
export async function makeCerts(dir: string): Promise<ClusterCerts> {
  const f = (n: string) => path.join(dir, n);
  const openssl = (...args: string[]) => exec('openssl', args, { cwd: dir });
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=lifeboat-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  const leaf = async (name: string, cn: string, ext: string) => {
    await openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    );
    writeFileSync(f(`${name}.ext`), ext);
    await openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
    );
  };
  await leaf(
    'server',
    'localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
  );
  await leaf('client', 'lifeboat-test-client', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  return {
    dir,
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}

/** A signing key, its JWKS file for the server, and API keys (JWTs, ES256, one day) signed with it. */
function makeSigner(dir: string): { jwks: string; apiKey: (permissions: string[]) => string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'lifeboat-test';
  const jwks = path.join(dir, 'jwks.json');
  writeFileSync(
    jwks,
    JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] }),
  );
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return {
    jwks,
    apiKey(permissions) {
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${b64({ alg: 'ES256', typ: 'JWT', kid })}.${b64({ sub: 'lifeboat-test', permissions, iat: now, exp: now + 86400 })}`;
      return `${unsigned}.${sign('sha256', Buffer.from(unsigned), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    },
  };
}

/** The server's configuration: PostgreSQL persistence and SQL visibility as TEMPORAL_CLUSTER says, mTLS on the frontend. */
function serverConfig(pg: Primary, ports: Record<string, number>, certs: ClusterCerts, jwks: string): string {
  const db = TEMPORAL_CLUSTER.persistence;
  const store = (name: string, maxConns: number) => `
      sql:
        pluginName: "${db.sqlPlugin}"
        databaseName: "${name}"
        connectAddr: "127.0.0.1:${pg.port}"
        connectProtocol: "tcp"
        user: "postgres"
        password: ""
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;
  const service = (name: string, extra = '') => `
  ${name}:
    rpc:
      grpcPort: ${ports[`${key(name)}Grpc`]}
      membershipPort: ${ports[`${key(name)}Membership`]}
      bindOnIP: "127.0.0.1"${extra}`;
  const key = (name: string) => name.replace('internal-frontend', 'internalFrontend');
  const client = `
        serverName: "localhost"
        rootCaFiles: ["${certs.ca}"]`;
  return `log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${db.numHistoryShards}
  datastores:
    postgres-default:${store(db.database, db.maxConns)}
    postgres-visibility:${store(db.visibilityDatabase, db.visibilityMaxConns)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  tls:
    frontend:
      server:
        certFile: "${certs.serverCert}"
        keyFile: "${certs.serverKey}"
        clientCaFiles: ["${certs.ca}"]
        requireClientAuth: true
      client:${client}
  authorization:
    jwtKeyProvider:
      keySourceURIs: ["file://${jwks}"]
      refreshInterval: 1m
    permissionsClaimName: permissions
    authorizer: default
    claimMapper: default
services:${service('frontend', `\n      httpPort: ${ports.frontendHttp}`)}${service('internal-frontend', `\n      httpPort: ${ports.internalFrontendHttp}`)}${service('matching')}${service('history')}${service('worker')}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${ports.frontendGrpc}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "${TEMPORAL_CLUSTER.files.dynamicConfig}"
  pollInterval: "10s"
`;
}

/**
 * Both databases and their schemas, by the script the compose stack's
 * `temporal-schema` job runs, with the SQL tool and schema files setup.sh
 * built (the admin-tools image's are the same release's).
 */
export async function setupSchemas(pg: Primary): Promise<void> {
  const schema = path.join(toolsDir(), 'temporal-schema', 'postgresql', 'v12');
  if (!existsSync(schema)) throw new Error(`${schema} not found: run bash scripts/setup.sh`);
  const db = TEMPORAL_CLUSTER.persistence;
  await exec('sh', [TEMPORAL_CLUSTER.files.setupSchema], {
    env: {
      ...process.env,
      TEMPORAL_SQL_TOOL: tool('temporal-sql'),
      TEMPORAL_SCHEMA_DIR: schema,
      SQL_PLUGIN: db.sqlPlugin,
      SQL_HOST: '127.0.0.1',
      SQL_PORT: String(pg.port),
      SQL_USER: 'postgres',
      SQL_PASSWORD: '',
      DBNAME: db.database,
      VISIBILITY_DBNAME: db.visibilityDatabase,
    },
  });
}

export async function startTemporalCluster(): Promise<TemporalCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-temporal-cluster-'));
  const stops: Array<() => Promise<unknown>> = [];
  const logFile = path.join(dir, 'temporal-server.log');
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    // Our own temporary directory, made above: provably ours to remove.
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const certs = await makeCerts(dir);
    const pg = await startPrimary();
    stops.push(() => pg.stop());
    await setupSchemas(pg);

    const ports: Record<string, number> = {};
    for (const s of ['frontend', 'internalFrontend', 'matching', 'history', 'worker']) {
      ports[`${s}Grpc`] = await freePort();
      ports[`${s}Membership`] = await freeLowPort();
    }
    ports.frontendHttp = await freePort();
    ports.internalFrontendHttp = await freePort();
    const signer = makeSigner(dir);
    const configFile = path.join(dir, 'temporal-server.yaml');
    writeFileSync(configFile, serverConfig(pg, ports, certs, signer.jwks));

    const log = openSync(logFile, 'a');
    const server = spawn(
      tool('temporal-server'),
      [
        '--config-file',
        configFile,
        'start',
        ...['frontend', 'internal-frontend', 'history', 'matching', 'worker'].flatMap((svc) => ['--service', svc]),
      ],
      { stdio: ['ignore', log, log] },
    );
    stops.push(() => stopChild(server, 20_000));
    const address = `127.0.0.1:${ports.frontendGrpc}`;
    const tls = {
      serverNameOverride: 'localhost',
      serverRootCACertificate: readFileSync(certs.ca),
      clientCertPair: { crt: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) },
    };
    // The server exiting ends the wait at once, with its log's tail (a bad config, a port taken).
    const exited = new Promise<never>((_, reject) =>
      server.once('exit', (code) => reject(new Error(`temporal-server exited with ${code}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([
      exited,
      waitFor(
        'the Temporal server to answer over mTLS',
        async () => {
          const conn = await Connection.connect({ address, tls, connectTimeout: 2000 }).catch(() => undefined);
          if (!conn) return undefined;
          try {
            await conn.workflowService.getSystemInfo({});
            return true;
          } finally {
            await conn.close();
          }
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      ),
    ]);

    const cliArgs = [
      '--address',
      address,
      '--tls-cert-path',
      certs.clientCert,
      '--tls-key-path',
      certs.clientKey,
      '--tls-ca-path',
      certs.ca,
      '--tls-server-name',
      'localhost',
      '--api-key',
      signer.apiKey(['temporal-system:admin']),
    ];
    const { name: namespace, retention } = TEMPORAL_CLUSTER.namespace;
    await exec('sh', [TEMPORAL_CLUSTER.files.createNamespace, ...cliArgs], {
      env: {
        ...process.env,
        TEMPORAL_CLI: requireTool('temporal'),
        NAMESPACE: namespace,
        NAMESPACE_RETENTION: retention,
      },
    });
    // The namespace registry of each service refreshes every 2 s (system.namespaceCacheRefreshInterval).
    await waitFor(
      `namespace ${namespace} on every service`,
      async () => {
        const r = await exec(requireTool('temporal'), [
          'workflow',
          'count',
          '--namespace',
          namespace,
          ...cliArgs,
        ]).catch(() => undefined);
        return r ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    return { address, certs, cliArgs, apiKey: signer.apiKey, logFile, pg, stop };
  } catch (err) {
    const tail = existsSync(logFile)
      ? `\n--- ${logFile} (tail) ---\n${readFileSync(logFile, 'utf8').slice(-3000)}`
      : '';
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}${tail}`, { cause: err });
  }
}
