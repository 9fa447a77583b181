// The image of examples/docker without a container engine: its Dockerfile
// read back, and its /app laid out in a temp directory the way the image
// has it (the example app, node_modules/corral, its bin link), with its ENV.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempHome } from './helpers.js';

export const EXAMPLE = path.join(ROOT, 'examples/docker');

/** Instructions of a Dockerfile: [{ op, args, stage }], continuation lines joined, comments dropped. */
export function parseDockerfile(text) {
  const out = [];
  let stage = -1;
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of logical) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line);
    if (op.toUpperCase() === 'FROM') stage += 1;
    out.push({ op: op.toUpperCase(), args: args.trim(), stage });
  }
  return out;
}

/** Exec form (a JSON array) or null for shell form. */
export function execForm(args) {
  try {
    const v = JSON.parse(args);
    return Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

export const dockerfile = parseDockerfile(readFileSync(path.join(EXAMPLE, 'Dockerfile'), 'utf8'));
export const finalStage = Math.max(...dockerfile.map((i) => i.stage));
/** The last `op` instruction of the final stage. */
export const last = (op) => dockerfile.filter((i) => i.op === op && i.stage === finalStage).at(-1);

/** The image's /app: the example's files, node_modules/corral (this checkout) and its bin link. */
export function imageLayout() {
  const app = tempHome();
  for (const f of ['server.js', 'package.json']) copyFileSync(path.join(EXAMPLE, f), path.join(app, f));
  mkdirSync(path.join(app, 'node_modules/.bin'), { recursive: true });
  symlinkSync(ROOT, path.join(app, 'node_modules/corral'));
  symlinkSync('../corral/dist/cli/main.js', path.join(app, 'node_modules/.bin/corral'));
  // npm install makes a package's bin executable; tsc's output is not.
  chmodSync(path.join(ROOT, 'dist/cli/main.js'), 0o755);
  return app;
}

export function imageEnv() {
  const env = {};
  for (const i of dockerfile.filter((x) => x.op === 'ENV' && x.stage === finalStage)) {
    for (const [, k, v] of i.args.matchAll(/(\w+)=(\S+)/g)) env[k] = v;
  }
  return env;
}


/** Where this machine has tini (the image's is /usr/bin/tini), or null. */
export function findTini() {
  const r = spawnSync('sh', ['-c', 'command -v tini'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
