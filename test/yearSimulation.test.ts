import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulateYear } from './support/yearSimulation.js';

// The full size (10,000 accounts) runs in `npm run bench`; this is the same year at a small size,
// on each database (on PostgreSQL the simulation's clock stands in for the server's in due times).
for (const factory of DATABASES) {
  describe(`a year in a minute (small, ${factory.kind})`, () => {
    let database: TestDatabase;
    beforeAll(async () => {
      database = await factory.create();
    });
    afterAll(async () => {
      await database?.drop();
    });

    it('90 accounts, most never used, over a simulated year: none lost, keep-alive at the least cost', async () => {
      const report = await simulateYear({
        accounts: 90,
        days: 365,
        stepHours: 24,
        seed: 7,
        databaseUrl: database.databaseUrl,
      });
      expect(report.lost).toBe(0);
      for (const platform of report.platforms) {
        expect(platform.lost).toBe(0);
        // Idle accounts cost close to the least: only the safety margin (3 days) can add a call.
        expect(platform.idleCallsPerAccountYear).toBeLessThanOrEqual(platform.idleLeastPerAccountYear * 1.25);
        expect(platform.idleCallsPerAccountYear).toBeGreaterThan(0);
      }
    }, 60_000);
  });
}
