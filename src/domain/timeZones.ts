/**
 * Wall-clock arithmetic in a named time zone, with the platform's tz database (Intl), so daylight
 * saving is right without a table of our own. Pure: the instant comes in as an argument.
 */

/** The zone's offset from UTC at `instantMs`, in ms (Los Angeles: −8 h in winter, −7 h in summer). */
export function zoneOffsetMs(timeZone: string, instantMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(instantMs));
  const get = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)!.value);
  const asUtc = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

/**
 * The first local midnight in `timeZone` strictly after `nowMs`. In zones whose clocks change at
 * 02:00 (all of North America), midnight exists exactly once every day, so the answer is unique.
 */
export function nextMidnightIn(timeZone: string, nowMs: number): number {
  const local = new Date(nowMs + zoneOffsetMs(timeZone, nowMs));
  const nextLocalMidnightAsUtc = Date.UTC(
    local.getUTCFullYear(),
    local.getUTCMonth(),
    local.getUTCDate() + 1,
  );
  // The offset at midnight may differ from now's (a DST change during the day): take it there.
  let guess = nextLocalMidnightAsUtc - zoneOffsetMs(timeZone, nowMs);
  guess = nextLocalMidnightAsUtc - zoneOffsetMs(timeZone, guess);
  return guess;
}

/** The last local midnight in `timeZone` at or before `nowMs`: the start of its local day. */
export function startOfDayIn(timeZone: string, nowMs: number): number {
  const local = new Date(nowMs + zoneOffsetMs(timeZone, nowMs));
  const localMidnightAsUtc = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate());
  let guess = localMidnightAsUtc - zoneOffsetMs(timeZone, nowMs);
  guess = localMidnightAsUtc - zoneOffsetMs(timeZone, guess);
  return guess;
}
