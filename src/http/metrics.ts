/**
 * Prometheus text exposition, by hand: three metric kinds, labels, nothing global (each app has
 * its own registry, so tests can run apps side by side). Format: prometheus.io/docs/instrumenting/exposition_formats.
 */
type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}="${escapeLabel(labels[name]!)}"`)
    .join(',');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function series(name: string, key: string, value: number): string {
  return `${name}${key === '' ? '' : `{${key}}`} ${Number.isFinite(value) ? value : 0}`;
}

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.values) lines.push(series(this.name, key, value));
    return lines;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<
    string,
    { counts: number[]; sum: number; count: number; labels: Labels }
  >();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[],
  ) {}
  observe(labels: Labels, value: number): void {
    const key = labelKey(labels);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { counts: this.buckets.map(() => 0), sum: 0, count: 0, labels };
      this.series.set(key, entry);
    }
    this.buckets.forEach((bound, i) => {
      if (value <= bound) entry.counts[i]!++;
    });
    entry.sum += value;
    entry.count++;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const entry of this.series.values()) {
      this.buckets.forEach((bound, i) => {
        lines.push(
          series(`${this.name}_bucket`, labelKey({ ...entry.labels, le: String(bound) }), entry.counts[i]!),
        );
      });
      lines.push(series(`${this.name}_bucket`, labelKey({ ...entry.labels, le: '+Inf' }), entry.count));
      lines.push(series(`${this.name}_sum`, labelKey(entry.labels), entry.sum));
      lines.push(series(`${this.name}_count`, labelKey(entry.labels), entry.count));
    }
    return lines;
  }
}

/** A gauge whose values are read when scraped (accounts by status come from the database). */
export class CollectedGauge {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly collect: () => Promise<Array<{ labels: Labels; value: number }>>,
  ) {}
  async render(): Promise<string[]> {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of await this.collect())
      lines.push(series(this.name, labelKey(labels), value));
    return lines;
  }
}

/** The service's metrics. Names are part of the operational contract (dashboards, alerts). */
export class ServiceMetrics {
  readonly refreshes = new Counter(
    'social_oauth_refreshes_total',
    'Token refreshes finished in this process, by provider and outcome (success or the failure reason).',
  );
  readonly refreshDuration = new Histogram(
    'social_oauth_refresh_duration_seconds',
    'Time an API call spent refreshing through the platform (retries included), by provider.',
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly connects = new Counter(
    'social_oauth_connects_total',
    'Finished connect flows, by provider and outcome.',
  );
  readonly notifications = new Counter(
    'social_oauth_notifications_total',
    'Outgoing webhook notification attempts, by outcome (delivered, retried, failed, handed_back).',
  );
  readonly httpRequests = new Counter(
    'social_oauth_http_requests_total',
    'HTTP requests answered, by method, route and status code.',
  );
  readonly accounts: CollectedGauge;

  constructor(countAccounts: () => Promise<Array<{ provider: string; status: string; count: number }>>) {
    this.accounts = new CollectedGauge(
      'social_oauth_accounts',
      'Accounts by provider and status.',
      async () =>
        (await countAccounts()).map((row) => ({
          labels: { provider: row.provider, status: row.status },
          value: row.count,
        })),
    );
  }

  async render(): Promise<string> {
    const lines = [
      ...this.refreshes.render(),
      ...this.refreshDuration.render(),
      ...(await this.accounts.render()),
      ...this.connects.render(),
      ...this.notifications.render(),
      ...this.httpRequests.render(),
    ];
    return `${lines.join('\n')}\n`;
  }
}
