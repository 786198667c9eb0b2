// The Prometheus text format as lifeboat metrics writes it, and its --listen.
import { describe, expect, it } from 'vitest';
import { parseListen } from '../../src/cli/commands/metrics';
import { renderExposition } from '../../src/metrics/exposition';
import { parseExposition } from '../harness/prometheus';

describe('renderExposition', () => {
  it('writes HELP and TYPE once per metric in catalog order, escapes label values, and leaves out metrics without samples', () => {
    const text = renderExposition([
      { name: 'lifeboat_up', labels: { runbook: 'a', cluster: 'a', source: 'primary' }, value: 0 },
      { name: 'lifeboat_archive_failed_total', labels: { runbook: 'we\\ird "one"\nx', cluster: 'c' }, value: 3 },
      { name: 'lifeboat_up', labels: { runbook: 'a', cluster: 'a', source: 'repository' }, value: 1 },
      { name: 'lifeboat_drill_last_rpo_seconds', labels: {}, value: 0.25 },
    ]);
    expect(text.split('\n').filter((l) => !l.startsWith('# HELP'))).toEqual([
      '# TYPE lifeboat_archive_failed_total counter',
      'lifeboat_archive_failed_total{runbook="we\\\\ird \\"one\\"\\nx",cluster="c"} 3',
      '# TYPE lifeboat_drill_last_rpo_seconds gauge',
      'lifeboat_drill_last_rpo_seconds 0.25',
      '# TYPE lifeboat_up gauge',
      'lifeboat_up{runbook="a",cluster="a",source="primary"} 0',
      'lifeboat_up{runbook="a",cluster="a",source="repository"} 1',
      '',
    ]);
    expect(text).toContain(
      '# HELP lifeboat_archive_failed_total Failed archive_command attempts since the counters started (pg_stat_archiver.failed_count).\n',
    );
    // Read back as a scraper would: the label value is what was written.
    expect(parseExposition(text).find('lifeboat_archive_failed_total')[0]!.labels.runbook).toBe('we\\ird "one"\nx');
  });

  it('writes nothing at all for no samples', () => {
    expect(renderExposition([])).toBe('');
  });
});

describe('--listen', () => {
  it('takes host:port and [v6]:port', () => {
    expect(parseListen('127.0.0.1:9188')).toEqual({ host: '127.0.0.1', port: 9188 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('localhost:80')).toEqual({ host: 'localhost', port: 80 });
  });

  it('refuses anything else, naming the flag and an example', () => {
    for (const bad of ['9188', '127.0.0.1', '127.0.0.1:99999', ':9188', '::1:9188']) {
      expect(() => parseListen(bad), bad).toThrow(
        `--listen: expected host:port, e.g. 127.0.0.1:9188 or [::1]:9188, got ${JSON.stringify(bad)}`,
      );
    }
  });
});
