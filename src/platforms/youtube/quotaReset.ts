/**
 * YouTube quotas reset at midnight Pacific time (developers.google.com/youtube/v3/getting-started#quota:
 * "Daily quotas reset at midnight Pacific Time"). Pacific is UTC-8 in winter and UTC-7 in summer,
 * so "next midnight" is found through the time zone database, never a fixed offset. Pure.
 */

const ZONE = 'America/Los_Angeles';
const HOUR_MS = 3_600_000;

const formatter = new Intl.DateTimeFormat('en-US', {
  timeZone: ZONE,
  hourCycle: 'h23',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
});

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function pacific(ms: number): LocalTime {
  const parts = Object.fromEntries(
    formatter.formatToParts(new Date(ms)).map((part) => [part.type, Number(part.value)]),
  ) as Record<string, number>;
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

/** The instant of 00:00 Pacific on the given Pacific calendar day (which always exists: DST moves 02:00). */
function pacificMidnight(year: number, month: number, day: number): number {
  const utcMidnight = Date.UTC(year, month - 1, day);
  // Pacific midnight is 07:00 or 08:00 UTC; keep the candidate that reads 00:00 there.
  for (const offsetHours of [8, 7]) {
    const candidate = utcMidnight + offsetHours * HOUR_MS;
    const local = pacific(candidate);
    if (local.hour === 0 && local.minute === 0 && local.day === new Date(utcMidnight).getUTCDate()) {
      return candidate;
    }
  }
  throw new Error('no Pacific midnight found'); // unreachable while Pacific is UTC-7 or UTC-8
}

/** The start (00:00 Pacific) of the Pacific day that contains `nowMs`. */
export function pacificDayStart(nowMs: number): number {
  const local = pacific(nowMs);
  return pacificMidnight(local.year, local.month, local.day);
}

/** When YouTube's daily quota next resets: the next 00:00 Pacific strictly after `nowMs`. */
export function nextPacificMidnight(nowMs: number): number {
  const local = pacific(nowMs);
  const tomorrow = new Date(Date.UTC(local.year, local.month - 1, local.day + 1));
  return pacificMidnight(tomorrow.getUTCFullYear(), tomorrow.getUTCMonth() + 1, tomorrow.getUTCDate());
}
