import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, get, runCli, startCorral } from '../helpers.js';

const TS = path.join(FIXTURES, 'server.ts');
const [major, minor] = process.versions.node.split('.').map(Number);
const strips = major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 6);

test('a TypeScript app runs where Node strips types', { skip: !strips && `Node ${process.versions.node} cannot strip types` }, async (t) => {
  const c = startCorral(t, [TS, '-w', '2']);
  const port = await c.ready(2);
  assert.equal(JSON.parse((await get(port, '/')).body).lang, 'ts');
});

test('on a Node that cannot strip types (and no tsx), a TypeScript app gets exit 2 and what to install', { skip: strips && `Node ${process.versions.node} strips types` }, async () => {
  const r = await runCli([TS, '-w', '1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr.split('\n')[0], /^corral: server\.ts is TypeScript and Node \d+\.\d+\.\d+ cannot run it by itself; install tsx .*npm i -D tsx.* or use Node >= 22\.18$/);
});
