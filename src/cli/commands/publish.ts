import { basename, extname, resolve } from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import Fastify from 'fastify';
import { ReauthorizationRequired } from '../../domain/errors.js';
import type { PublicationSummary } from '../../domain/publication.js';
import { mediaLinkRoutes } from '../../http/routes/publications.js';
import { MediaMissing, MediaTooLarge } from '../../service/publications/media.js';
import { ServiceError } from '../../service/serviceError.js';
import type { SocialOAuth } from '../../service/socialOAuth.js';
import { CliError, EXIT, withApp } from '../context.js';
import { waitForSignal } from './sandbox.js';

interface PublishOptions {
  title?: string;
  description?: string;
  privacy?: string;
  mode?: string;
  wait?: boolean;
  json?: boolean;
  sourceUrl?: string;
  idempotencyKey?: string;
}

/**
 * `social-oauth publish ACCOUNT_ID FILE`: uploads a video with a progress bar and waits until the
 * platform has the post (YouTube: uploaded, `processing` until processed; --wait waits for that too).
 * The publication is durable: interrupted (Ctrl-C, a crash), it is carried on by `serve` or `worker`,
 * or by this command run again with the same --idempotency-key.
 */
export function registerPublish(program: Command): void {
  program
    .command('publish')
    .description('publish a video to an account, exactly once; waits until the platform has the post')
    .argument('<accountId>')
    .argument('[file]', 'the video (or give --source-url)')
    .option(
      '--title <title>',
      'the title (default: the file name); on Instagram and TikTok the caption starts with it',
    )
    .option('--description <text>', 'the description (the rest of the caption on Instagram and TikTok)')
    .option(
      '--privacy <level>',
      'TikTok privacy_level (default TIKTOK_DEFAULT_PRIVACY), YouTube privacyStatus',
    )
    .option('--mode <mode>', 'TikTok: direct (post) or inbox (the user finishes it in the app)')
    .option('--wait', 'also wait until the platform has processed it (YouTube)')
    .option('--json', 'print {"id", "status", "platform_post_id"}')
    .option('--source-url <url>', 'a URL the video is fetched from instead of a file')
    .option('--idempotency-key <key>', 'run again with the same key to resume instead of posting twice')
    .action((accountId: string, file: string | undefined, options: PublishOptions) => {
      if ((file === undefined) === (options.sourceUrl === undefined)) {
        throw new CliError('give exactly one of: a FILE, --source-url', EXIT.usage);
      }
      if (options.mode !== undefined && options.mode !== 'direct' && options.mode !== 'inbox') {
        throw new CliError('--mode must be direct or inbox', EXIT.usage);
      }
      const title = options.title ?? (file ? basename(file, extname(file)) : undefined);
      if (!title) throw new CliError('--title is required with --source-url', EXIT.usage);
      return withApp(async (app) => {
        const outcome = await publishWithProgress(app, accountId, { ...options, title }, file);
        report(outcome, options.json === true);
      });
    });
}

async function publishWithProgress(
  app: SocialOAuth,
  accountId: string,
  options: PublishOptions & { title: string },
  file: string | undefined,
): Promise<PublicationSummary> {
  const stop = new AbortController();
  void waitForSignal().then(() => stop.abort());
  let client: Awaited<ReturnType<SocialOAuth['publishingClientFor']>>;
  try {
    client = await app.publishingClientFor(accountId);
  } catch (error) {
    throw toCliError(error);
  }
  // Instagram fetches the video from a public URL: this command serves the file while it runs.
  const mediaServer =
    file !== undefined && app.publishesFromUrl(client.provider) ? await serveMedia(app) : null;
  const bar = process.stderr.isTTY
    ? new SingleBar(
        {
          stream: process.stderr,
          format: ' {bar} {percentage}% | {sent} of {total} MB | ETA {eta_formatted}',
          hideCursor: true,
        },
        Presets.shades_classic,
      )
    : null;
  let started = false;
  try {
    return await client.uploadVideo(
      {
        ...(file !== undefined ? { file: resolve(file) } : { sourceUrl: options.sourceUrl! }),
        title: options.title,
        description: options.description ?? null,
        privacy: options.privacy ?? null,
        mode: (options.mode as 'direct' | 'inbox' | undefined) ?? null,
      },
      {
        idempotencyKey: options.idempotencyKey,
        waitForProcessing: options.wait === true,
        signal: stop.signal,
        onProgress(sent, total) {
          if (!bar || !total) return;
          const mb = (bytes: number) => (bytes / 1_000_000).toFixed(1);
          if (!started) {
            bar.start(total, 0, { sent: mb(0), total: mb(total) });
            started = true;
          }
          bar.update(sent, { sent: mb(sent), total: mb(total) });
        },
      },
    );
  } catch (error) {
    throw toCliError(error);
  } finally {
    if (started) bar?.stop();
    await mediaServer?.close();
    if (stop.signal.aborted) {
      process.stderr.write(
        'interrupted: the publication is saved and resumable; `serve` or `worker` carries it on (or run this again with the same --idempotency-key)\n',
      );
    }
  }
}

/** GET /media/:token on HOST:PORT, which PUBLIC_BASE_URL must reach, for as long as the command runs. */
async function serveMedia(app: SocialOAuth) {
  const server = Fastify({ logger: false });
  await server.register(mediaLinkRoutes, { mediaLinks: app.mediaLinks });
  try {
    await server.listen({ host: app.config.host, port: app.config.port });
  } catch (error) {
    throw new CliError(
      `cannot serve the file for Instagram on ${app.config.host}:${app.config.port} (${(error as NodeJS.ErrnoException).code ?? 'error'}): ` +
        'set PORT to a free port that PUBLIC_BASE_URL reaches, or give --source-url',
      EXIT.config,
    );
  }
  process.stderr.write(`serving the video for Instagram under ${app.config.http.publicBaseUrl}/media/…\n`);
  return server;
}

function report(outcome: PublicationSummary, json: boolean): void {
  if (json) {
    console.log(
      JSON.stringify({ id: outcome.id, status: outcome.status, platform_post_id: outcome.platformPostId }),
    );
  } else {
    const where = outcome.platformPostId ?? outcome.platformRef;
    const error = outcome.error ? `: ${outcome.error.code}: ${outcome.error.message}` : '';
    console.log(`${outcome.id} ${outcome.status}${where ? ` (${where})` : ''}${error}`);
  }
  if (outcome.status === 'needs_reauth') process.exitCode = EXIT.needsReauth;
  else if (outcome.status === 'failed') process.exitCode = EXIT.failed;
}

function toCliError(error: unknown): unknown {
  if (error instanceof ReauthorizationRequired) {
    return new CliError(`${error.message}: its user must connect it again`, EXIT.needsReauth);
  }
  if (error instanceof ServiceError) {
    if (error.code === 'account_needs_reauth' || error.code === 'account_revoked') {
      return new CliError(error.message, EXIT.needsReauth);
    }
    if (error.code === 'provider_not_configured') return new CliError(error.message, EXIT.config);
    return new CliError(error.message, EXIT.usage);
  }
  if (error instanceof MediaMissing || error instanceof MediaTooLarge || error instanceof TypeError) {
    return new CliError(error.message, EXIT.usage);
  }
  return error;
}
