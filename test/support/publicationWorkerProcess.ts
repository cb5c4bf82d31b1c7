/**
 * A child process of the crash test: the publication worker on the shared database, publishing
 * through the test publisher to UPLOAD_SERVER_URL, until SIGTERM (or SIGKILL).
 */
import { loadConfig } from '../../src/config.js';
import { SocialOAuth } from '../../src/service/socialOAuth.js';
import { TestPublisher } from './testPublisher.js';

const app = await SocialOAuth.open({
  config: loadConfig(process.env),
  migrate: false,
  publishers: {
    youtube: new TestPublisher(
      'youtube',
      process.env.UPLOAD_SERVER_URL!,
      Number(process.env.UPLOAD_CHUNK_BYTES),
    ),
  },
});
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.stdout.write('ready\n');
await app.createPublicationWorker().run(stop.signal);
await app.close();
process.stdout.write(`${JSON.stringify({ pid: process.pid })}\n`);
