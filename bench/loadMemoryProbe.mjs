// Preloaded into the service under load (`node --import ./bench/loadMemoryProbe.mjs dist/cli/main.js serve`):
// prints the process's memory every LOAD_SAMPLE_MS as one `LOADMEM {json}` line on stderr, so the
// load script can tell whether memory stays flat. Changes nothing else in the service.
const every = Number(process.env.LOAD_SAMPLE_MS ?? 5000);
const started = Date.now();
const timer = setInterval(() => {
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  process.stderr.write(
    `LOADMEM ${JSON.stringify({ atMs: Date.now() - started, rss, heapUsed, heapTotal, external })}\n`,
  );
}, every);
timer.unref();
