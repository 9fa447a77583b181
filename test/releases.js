// A symlinked-release layout as deploy tools make it: root/releases/<version>/server.cjs
// (the fixture app reporting its version) and root/current pointing at one of them.
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

export function release(root, version) {
  const dir = path.join(root, 'releases', version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'server.cjs'), `process.env.FIXTURE_VERSION = ${JSON.stringify(version)};\nrequire(${JSON.stringify(APP)});\n`);
  return dir;
}

/** Point `current` at a release the way deploy tools do: a new link renamed over the old one. */
export function activate(root, version) {
  const tmp = path.join(root, `current.${version}.tmp`);
  symlinkSync(path.join('releases', version), tmp);
  renameSync(tmp, path.join(root, 'current'));
}
