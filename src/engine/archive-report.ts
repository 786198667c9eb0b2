// The archive report every engine gives (./types.ts ArchiveReport), from the
// continuity analysis they share (src/catalog/chain.ts): the same timelines
// and gaps whoever holds the WAL, the problems in the engine's own words.
import type { ChainReport, HealthProblem } from '../catalog/chain';
import type { ArchiveReport } from './types';

export function archiveReport(chain: ChainReport, problems: HealthProblem[], notes: string[]): ArchiveReport {
  return {
    timelines: chain.timelines.map((t) => ({
      timeline: t.timeline,
      ...(t.firstSegment ? { first: t.firstSegment, last: t.lastSegment } : {}),
      segmentCount: t.segmentCount,
    })),
    gaps: chain.gaps,
    problems,
    chain,
    notes,
  };
}
