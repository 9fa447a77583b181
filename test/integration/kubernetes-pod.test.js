// examples/kubernetes/deployment.yaml's container, run the way the kubelet
// runs it (the image's ENTRYPOINT, tini, as PID 1 of a PID namespace; the
// manifest's args and env; its ports swapped for free ones): the probes get
// their answers without a token and with the pod IP as Host, the rest of the
// admin server wants the token, and a pod deletion drains in its budget.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ROOT, freePort, get, tempHome, waitFor } from '../helpers.js';
import { namespaceUnavailable, startNamespace } from '../namespace.js';
import { execForm, findTini, imageEnv, imageLayout, last } from '../image.js';

const tini = findTini();
const why = namespaceUnavailable() ?? (tini ? null : 'tini is not installed (apt-get install tini; .ci/run does)');
if (why) console.log(`# skipping the pod run of examples/kubernetes: ${why}`);

const deployment = parse(readFileSync(path.join(ROOT, 'examples/kubernetes/deployment.yaml'), 'utf8'));
const podSpec = deployment.spec.template.spec;
const container = podSpec.containers[0];
/** What the kubelet sends: the pod IP in Host, no Authorization. */
const POD_HOST = '10.244.1.17';

/** One request to 127.0.0.1:port with the given headers. */
function request(port, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** The manifest's args with --port and --admin's port replaced by free ones (the host is kept). */
function argsOnFreePorts(appPort, adminPort) {
  const args = [...container.args];
  const at = (flag) => args.indexOf(flag) + 1;
  args[at('--port')] = String(appPort);
  const [host] = args[at('--admin')].split(/:(?=\d+$)/);
  args[at('--admin')] = `${host}:${adminPort}`;
  return args;
}

test('the Deployment\'s container: probes answer the kubelet, the rest needs the token, a deletion drains within the grace budget', { skip: why ?? false }, async (t) => {
  const [appPort, adminPort] = [await freePort(), await freePort()];
  const token = randomBytes(32).toString('hex');
  const entrypoint = execForm(last('ENTRYPOINT').args).map((w, i) => (i === 0 ? tini : w));
  const env = { ...imageEnv(), CORRAL_ADMIN_TOKEN: token, CORRAL_HOME: tempHome(), PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` };
  assert.equal(container.env.find((e) => e.name === 'CORRAL_ADMIN_TOKEN')?.valueFrom?.secretKeyRef?.key, 'token');
  const ns = startNamespace(t, [...entrypoint, ...argsOnFreePorts(appPort, adminPort)], { cwd: imageLayout(), env });

  const probe = (p) => request(adminPort, p.httpGet.path, { host: `${POD_HOST}:${adminPort}` });
  await waitFor(async () => (await probe(container.readinessProbe)).status === 200, 20000, 'the readiness probe to pass');
  assert.equal((await probe(container.livenessProbe)).status, 200);
  assert.equal((await request(adminPort, '/status', { host: `${POD_HOST}:${adminPort}` })).status, 401, '/status needs the token');
  const status = await request(adminPort, '/status', { host: `${POD_HOST}:${adminPort}`, authorization: `Bearer ${token}` });
  assert.equal(status.status, 200);
  assert.ok(JSON.parse(status.body).totals.ready >= 1);
  assert.match((await get(appPort, '/')).body, /^hello from pid \d+/);

  // Pod deletion: preStop (sleep) while the endpoints go, then SIGTERM to PID 1.
  const slow = get(appPort, '/slow');
  await new Promise((r) => setTimeout(r, 300));
  const sigtermAt = Date.now();
  await ns.signal('SIGTERM');
  await waitFor(async () => (await probe(container.readinessProbe)).status === 503, 5000, '/readyz to turn 503 once the stop began');
  assert.equal((await slow).status, 200, 'the request in flight is answered');
  const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
  const budgetMs = (podSpec.terminationGracePeriodSeconds - preStopS) * 1000;
  const { code } = await ns.waitForExit(budgetMs);
  assert.equal(code, 0, ns.output);
  assert.ok(Date.now() - sigtermAt < budgetMs, 'exited before the kubelet\'s SIGKILL');
});
