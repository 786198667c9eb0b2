// The compose stack's Prometheus (docker/prometheus/): it scrapes the two
// exporters where docker-compose.yml serves them, its rules are the README's
// example alert rules (which test/unit/metrics-readme.test.ts tests with
// promtool), and promtool accepts the configuration with its rule file.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { parse } from 'yaml';
import { toolsDir } from '../../src/tools';

const ROOT = path.resolve(__dirname, '../..');
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
}
const services = (parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> }).services;
const prometheus = services.prometheus!;
const config = parse(read('docker/prometheus/prometheus.yml')) as {
  rule_files: string[];
  scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
};

function readmeRules(): unknown {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Monitoring with Prometheus\n');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks).toHaveLength(1);
  return parse(blocks[0]!);
}

it('runs a maintained Prometheus with this configuration and rule file, on 127.0.0.1 only', () => {
  expect(prometheus.image).toMatch(/^prom\/prometheus:v3\.\d+\.\d+$/);
  expect(prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
  expect(prometheus.volumes).toContain('./docker/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  // rule_files are relative to the configuration file, here and in the container.
  expect(config.rule_files).toEqual(['lifeboat-rules.yml']);
  expect(prometheus.volumes).toContain('./docker/prometheus/lifeboat-rules.yml:/etc/prometheus/lifeboat-rules.yml:ro');
  expect(prometheus.ports).toEqual(['127.0.0.1:9090:9090']);
});

it('scrapes lifeboat metrics and the worker where the compose file serves them', () => {
  const targets = Object.fromEntries(
    config.scrape_configs.map((j) => [j.job_name, j.static_configs.flatMap((c) => c.targets)]),
  );
  const listen = services['lifeboat-metrics']!.command!;
  const metricsPort = listen[listen.indexOf('--listen') + 1]!.split(':').at(-1);
  const workerPort = services['lifeboat-worker']!.environment!.LIFEBOAT_WORKER_METRICS!.split(':').at(-1);
  expect(targets).toEqual({
    'lifeboat-metrics': [`lifeboat-metrics:${metricsPort}`],
    'lifeboat-worker': [`lifeboat-worker:${workerPort}`],
  });
});

it("evaluates the README's alert rules, and promtool accepts the configuration with them", async () => {
  const rules = parse(read('docker/prometheus/lifeboat-rules.yml')) as { groups: Array<{ rules: unknown[] }> };
  expect(rules).toEqual(readmeRules());
  const promtool = process.env.LIFEBOAT_PROMTOOL_BIN ?? path.join(toolsDir(), 'promtool');
  expect(existsSync(promtool), `${promtool}: run bash scripts/setup.sh`).toBe(true);
  const { stdout } = await promisify(execFile)(promtool, ['check', 'config', 'docker/prometheus/prometheus.yml'], {
    cwd: ROOT,
  });
  expect(stdout).toContain('is valid prometheus config file syntax');
  expect(stdout).toContain(`SUCCESS: ${rules.groups.flatMap((g) => g.rules).length} rules found`);
});
