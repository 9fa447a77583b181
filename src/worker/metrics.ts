/**
 * The worker's half of app-metrics aggregation. The app uses prom-client as
 * it would anywhere; corral never asks it to write IPC code. prom-client is
 * CommonJS, so whichever copy the app loaded (by require or import) sits in
 * Node's module cache, where its global registry can be found. Nothing is
 * loaded here: an app without prom-client answers at once with `found: false`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { AppMetricsReply } from '../common/ipc.js';

/** What corral needs of a prom-client Registry. */
export interface MetricsSource {
  getMetricsAsJSON(): Promise<unknown[]>;
}

const moduleCache = createRequire(import.meta.url).cache;
const REGISTRY_SUFFIX = `${path.sep}prom-client${path.sep}lib${path.sep}registry.js`;

function isSource(value: unknown): value is MetricsSource {
  return typeof (value as MetricsSource | undefined)?.getMetricsAsJSON === 'function';
}

/** The global registry of every prom-client copy the app has loaded. */
export function loadedRegistries(): MetricsSource[] {
  const found: MetricsSource[] = [];
  for (const [file, mod] of Object.entries(moduleCache)) {
    if (!file.endsWith(REGISTRY_SUFFIX) || !mod?.loaded) continue;
    const global = (mod.exports as { globalRegistry?: unknown } | undefined)?.globalRegistry;
    if (isSource(global)) found.push(global);
  }
  return found;
}

/** Answer a `collect-metrics` request with the JSON of every registry, found or exposed. */
export async function collectAppMetrics(id: number, exposed: Iterable<MetricsSource>): Promise<AppMetricsReply> {
  const sources = [...new Set([...loadedRegistries(), ...exposed])];
  try {
    const registries = await Promise.all(sources.map((r) => r.getMetricsAsJSON()));
    return { corral: 1, type: 'metrics', id, found: sources.length > 0, registries: registries as unknown[][] };
  } catch (err) {
    return { corral: 1, type: 'metrics', id, error: err instanceof Error ? err.message : String(err) };
  }
}
