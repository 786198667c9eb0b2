// restore-base-backup on a runbook whose backups another engine holds
// (engine: pgbackrest, src/engine/): the same claim and marker as Lifeboat's
// own restore (claim.ts, marker.ts), around the engine's restore, so that
// replay-wal, promote, stop and the next restore recognise the copy.
//
// One difference: the marker is written once pgBackRest has finished, in
// state 'extracted'. A restore interrupted half way leaves a directory with
// no marker (pgBackRest's --delta removes it too): a retry refuses it
// (DATA_DIR_NOT_EMPTY, nothing deleted) instead of removing it, and the
// operator moves it aside.
//
// engine.delta: true (pgbackrest restore --delta, data-dir.ts prepareForDelta)
// writes only over this recovery's own earlier, unpromoted copy; over the
// primary's directory in place it is refused before anything is stopped.
// A recovery's copy (instance 'restore') is the next primary: it archives into
// the stanza once promoted (engine.ts archiveSettings); a drill's never does.
import { openEngine, PgBackRestEngine } from '../engine';
import { LifeboatError } from '../errors';
import type { RestoreInput, RestoreResult } from '../recovery/contract';
import { engineSetting } from '../runbook/engine';
import type { Runbook } from '../runbook/schema';
import { DEFAULT_WAL_SEGMENT_SIZE } from '../wal/names';
import { checkConfigSources, ensureServerConfig } from './config-files';
import { prepareDataDir } from './data-dir';
import { prepareForDelta } from './delta';
import { timelineUnreachableError, unreachableLatest } from './engine-timeline';
import { writeMarker } from './marker';
import { requireFreePort } from './port';
import type { RestoreHooks } from './restore';
import { beginRestore, claimSite, prepareInput, siteMarker } from './site-restore';

export async function restoreWithEngine(
  runbook: Runbook,
  input: RestoreInput,
  hooks: RestoreHooks,
): Promise<RestoreResult> {
  const site = beginRestore(runbook, input, hooks);
  const pg = site.pg;
  // Checked before the directory is touched: a backup the engine lacks moves nothing aside.
  const engine = await openEngine(runbook);
  const backups = await engine.listBackups();
  const meta = backups.find((b) => b.backupId === input.backupId);
  if (!meta) {
    throw new LifeboatError('BACKUP_NOT_FOUND', `${engine.label} holds no usable backup ${input.backupId}`, {
      hints: [
        `it holds ${backups.map((b) => b.backupId).join(', ') || 'none'}; lifeboat backups --runbook ${runbook.name} lists them`,
        'nothing was moved or changed',
      ],
    });
  }
  // The stanza's newest timeline must be reachable from the backup (engine-timeline.ts): refused before anything is touched.
  if (engine instanceof PgBackRestEngine) {
    const unreachable = unreachableLatest(meta, (await engine.walFiles()).histories);
    if (unreachable) throw timelineUnreachableError(meta, unreachable, engine.command);
  }
  checkConfigSources(runbook);
  const claim = await claimSite(site, input, hooks);
  try {
    if (site.instance !== 'restore') await requireFreePort(site, input.workflowId);
    const setting = engineSetting(runbook);
    const delta = setting.kind === 'pgbackrest' && setting.delta === true;
    const prepared = await (delta ? prepareForDelta : prepareDataDir)(prepareInput(runbook, site, input));
    if (prepared.kind === 'reuse') {
      const config = await ensureServerConfig(pg.dataDir, runbook);
      hooks.onProgress({ phase: 'done', bytes: prepared.result.bytes, totalBytes: prepared.result.bytes });
      return config.notes.length ? { ...prepared.result, configNotes: config.notes } : prepared.result;
    }
    const restored = await engine.restore({
      backupId: input.backupId,
      dataDir: pg.dataDir,
      target: { latest: true },
      delta: prepared.kind === 'delta',
      archive: site.instance === 'restore',
      onProgress: hooks.onProgress,
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    });
    const result: RestoreResult = {
      dataDir: pg.dataDir,
      port: site.port,
      ...(prepared.movedAside ? { movedAside: prepared.movedAside } : {}),
      bytes: restored.bytes,
      files: restored.files,
      finishedAt: restored.finishedAt,
    };
    // pgBackRest's info does not give the segment size: read from an archived segment (src/engine/pgbackrest/segments.ts).
    const walSegmentSize =
      engine instanceof PgBackRestEngine ? await engine.walSegmentSize() : DEFAULT_WAL_SEGMENT_SIZE;
    const backup = { startLsn: meta.startLsn, timeline: meta.timeline, walSegmentSize };
    const marker = { ...siteMarker(site, input, 'extracted', backup, prepared.movedAside), result };
    await writeMarker(pg.dataDir, marker, pg.osUser);
    const config = await ensureServerConfig(pg.dataDir, runbook);
    return config.notes.length ? { ...result, configNotes: config.notes } : result;
  } finally {
    await claim.release().catch(() => undefined);
  }
}
