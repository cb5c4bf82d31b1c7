import { nextMidnightIn, startOfDayIn } from '../../domain/timeZones.js';

/**
 * YouTube quotas reset at midnight Pacific time (developers.google.com/youtube/v3/getting-started#quota:
 * "Daily quotas reset at midnight Pacific Time"). Pacific is UTC-8 in winter and UTC-7 in summer,
 * so midnight is found through the time zone database (src/domain/timeZones.ts), never a fixed
 * offset. Pure.
 */
const ZONE = 'America/Los_Angeles';

/** The start (00:00 Pacific) of the Pacific day that contains `nowMs`. */
export function pacificDayStart(nowMs: number): number {
  return startOfDayIn(ZONE, nowMs);
}

/** When YouTube's daily quota next resets: the next 00:00 Pacific strictly after `nowMs`. */
export function nextPacificMidnight(nowMs: number): number {
  return nextMidnightIn(ZONE, nowMs);
}
