/**
 * The provider simulator in a process of its own, as a platform is another machine: its CPU is not
 * the service's. Started by bench/support.ts; driven over the IPC channel (seed accounts, read and
 * reset the refresh counters, the upload endpoints' settings and what they received). Answers every
 * message with `{ id, result }` or `{ id, error }`.
 */
import type { ProviderName } from '../src/domain/providerName.js';
import { startProviderSimulator } from '../src/simulator/simulator.js';
import type { SeedAccountInput } from '../src/simulator/state.js';
import type { UploadSimulatorSettings } from '../src/simulator/uploads.js';

export type SimulatorCommand =
  | { op: 'seed'; provider: ProviderName; inputs: SeedAccountInput[] }
  | { op: 'totalRefreshCalls'; provider: ProviderName }
  | { op: 'accountsRefreshedMoreThanOnce'; provider: ProviderName; externalAccountIds: string[] }
  | { op: 'resetCounters' }
  | {
      op: 'uploadSettings';
      settings: { [P in keyof UploadSimulatorSettings]?: Partial<UploadSimulatorSettings[P]> };
    }
  | { op: 'uploadsOf'; provider: ProviderName; externalAccountIds: string[] }
  | { op: 'watchFetches'; on: boolean };

/** One upload as the bench reads it back: what the platform kept, and the posts it made of it. */
export interface UploadReport {
  id: string;
  externalAccountId: string;
  storedBytes: number;
  sha256: string | null;
  postIds: string[];
  createdAtMs: number;
  /** Instagram: when the download of video_url ended (seen by the watch, within 2 ms); null otherwise. */
  fetchedAtMs: number | null;
}

const simulator = await startProviderSimulator({
  port: 0,
  clients: JSON.parse(process.env.SIMULATOR_CLIENTS ?? '{}'),
  latencyMs: Number(process.env.SIMULATOR_LATENCY_MS ?? 0),
});

// Instagram's simulator downloads video_url in the background and keeps no end time: while the
// watch is on, a download that has just ended is stamped here (every 2 ms, a few µs each).
const fetchedAt = new Map<string, number>();
let watch: NodeJS.Timeout | null = null;
function watchFetches(on: boolean): void {
  if (on && watch === null) {
    watch = setInterval(() => {
      for (const upload of simulator.uploads.uploads('instagram')) {
        if (upload.sha256 !== null && !fetchedAt.has(upload.id)) fetchedAt.set(upload.id, Date.now());
      }
    }, 2);
  } else if (!on && watch !== null) {
    clearInterval(watch);
    watch = null;
  }
}

function uploadsOf(provider: ProviderName, externalAccountIds: string[]): UploadReport[] {
  const wanted = new Set(externalAccountIds);
  const posts = simulator.uploads.posts(provider);
  return simulator.uploads
    .uploads(provider)
    .filter((upload) => wanted.has(upload.externalAccountId))
    .map((upload) => ({
      id: upload.id,
      externalAccountId: upload.externalAccountId,
      storedBytes: upload.storedBytes,
      sha256: upload.sha256,
      postIds: posts.filter((post) => post.uploadId === upload.id).map((post) => post.postId),
      createdAtMs: upload.createdAtMs,
      fetchedAtMs: fetchedAt.get(upload.id) ?? null,
    }));
}

function run(command: SimulatorCommand): unknown {
  switch (command.op) {
    case 'seed':
      return command.inputs.map((input) => simulator.seedAccount(command.provider, input));
    case 'totalRefreshCalls':
      return simulator.totalRefreshCalls(command.provider);
    case 'accountsRefreshedMoreThanOnce':
      return command.externalAccountIds.filter((id) => simulator.refreshCalls(command.provider, id) > 1)
        .length;
    case 'resetCounters':
      simulator.resetCounters();
      return null;
    case 'uploadSettings': {
      const settings = simulator.uploads.settings;
      Object.assign(settings.youtube, command.settings.youtube);
      Object.assign(settings.tiktok, command.settings.tiktok);
      Object.assign(settings.instagram, command.settings.instagram);
      return null;
    }
    case 'uploadsOf':
      return uploadsOf(command.provider, command.externalAccountIds);
    case 'watchFetches':
      watchFetches(command.on);
      return null;
  }
}

process.on('message', (message: { id: number; command: SimulatorCommand }) => {
  try {
    process.send!({ id: message.id, result: run(message.command) });
  } catch (error) {
    process.send!({ id: message.id, error: String(error) });
  }
});
// The parent going away (a bench cut short) ends the simulator too.
process.on('disconnect', () => {
  watchFetches(false);
  void simulator.close().then(() => process.exit(0));
});
process.send!({ ready: simulator.url });
