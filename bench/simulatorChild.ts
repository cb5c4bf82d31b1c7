/**
 * The provider simulator in a process of its own, as a platform is another machine: its CPU is not
 * the service's. Started by bench/support.ts; driven over the IPC channel (seed accounts, read and
 * reset the refresh counters). Answers every message with `{ id, result }` or `{ id, error }`.
 */
import type { ProviderName } from '../src/domain/providerName.js';
import { startProviderSimulator } from '../src/simulator/simulator.js';
import type { SeedAccountInput } from '../src/simulator/state.js';

export type SimulatorCommand =
  | { op: 'seed'; provider: ProviderName; inputs: SeedAccountInput[] }
  | { op: 'totalRefreshCalls'; provider: ProviderName }
  | { op: 'accountsRefreshedMoreThanOnce'; provider: ProviderName; externalAccountIds: string[] }
  | { op: 'resetCounters' };

const simulator = await startProviderSimulator({
  port: 0,
  clients: JSON.parse(process.env.SIMULATOR_CLIENTS ?? '{}'),
  latencyMs: Number(process.env.SIMULATOR_LATENCY_MS ?? 0),
});

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
process.on('disconnect', () => void simulator.close().then(() => process.exit(0)));
process.send!({ ready: simulator.url });
