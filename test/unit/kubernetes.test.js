// examples/kubernetes: every object validates against the Kubernetes schemas
// (kubernetes-models), the objects agree with each other, and the probes,
// ports and timing agree with corral's own reading of the container's flags.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Service } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { parseCommand } from '../../dist/cli/args.js';
import { resolveOptions } from '../../dist/config/options.js';
import { autoWorkers } from '../../dist/primary/cpus.js';
import { KILL_TIMEOUT_MS } from '../../dist/primary/run.js';
import { ROOT } from '../helpers.js';

const DIR = path.join(ROOT, 'examples/kubernetes');
const MODELS = { 'apps/v1/Deployment': Deployment, 'v1/Service': Service, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget, 'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler };

function loadObjects() {
  const objects = [];
  for (const file of readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      const value = doc.toJS();
      if (value !== null) objects.push({ file, value });
    }
  }
  return objects;
}

const objects = loadObjects();
const one = (kind) => {
  const found = objects.filter((o) => o.value.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0].value;
};

test('every object is a Deployment, Service, PodDisruptionBudget or HorizontalPodAutoscaler that validates against its schema', () => {
  assert.deepEqual(objects.map((o) => o.value.kind).sort(), ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service']);
  for (const { file, value } of objects) {
    const Model = MODELS[`${value.apiVersion}/${value.kind}`];
    assert.ok(Model, `${file}: ${value.apiVersion} ${value.kind} is not one of the expected API versions`);
    assert.doesNotThrow(() => new Model(value).validate(), `${file} is not a valid ${value.kind}`);
  }
});

test('the schema check is real: a wrong type or a missing field is refused', () => {
  const d = structuredClone(one('Deployment'));
  d.spec.template.spec.terminationGracePeriodSeconds = '35';
  assert.throws(() => new Deployment(d).validate(), /terminationGracePeriodSeconds must be integer/);
  const s = structuredClone(one('Service'));
  delete s.spec.ports[0].port;
  assert.throws(() => new Service(s).validate(), /must have required property port/);
});

const labelsMatch = (selector, labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);

test('the objects agree: selectors pick the pods, the HPA scales this Deployment, the Service targets the app port', () => {
  const deploy = one('Deployment');
  const pod = deploy.spec.template;
  assert.ok(labelsMatch(deploy.spec.selector.matchLabels, pod.metadata.labels));
  assert.ok(labelsMatch(one('Service').spec.selector, pod.metadata.labels));
  assert.ok(labelsMatch(one('PodDisruptionBudget').spec.selector.matchLabels, pod.metadata.labels));
  const hpa = one('HorizontalPodAutoscaler');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deploy.metadata.name });
  assert.equal(deploy.spec.replicas, undefined, 'with an HPA the Deployment leaves replicas to it');
  assert.ok(hpa.spec.minReplicas >= 2, 'at least two pods, so one can be disrupted');
  assert.equal(one('PodDisruptionBudget').spec.maxUnavailable, 1);
  assert.deepEqual(deploy.spec.strategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });
  const container = pod.spec.containers[0];
  const target = one('Service').spec.ports[0].targetPort;
  assert.ok(container.ports.some((p) => p.name === target || p.containerPort === target), `the Service's targetPort ${target} is a container port`);
});

/** The container's corral arguments, read by corral's own parser (args[0] is the bin the image's CMD runs). */
function corralFlags(container) {
  const dockerCmd = /^CMD\s+(\[.*\])\s*$/m.exec(readFileSync(path.join(ROOT, 'examples/docker/Dockerfile'), 'utf8'));
  assert.equal(container.args[0], JSON.parse(dockerCmd[1])[0], 'args replace the image CMD and start with the same bin');
  assert.equal(container.command, undefined, 'the image ENTRYPOINT (tini) stays');
  const command = parseCommand(container.args.slice(1));
  assert.equal(command.kind, 'start');
  // resolveOptions is what corral runs at start: the script must exist (the docker example's stands in)
  // and the token comes from the Secret through CORRAL_ADMIN_TOKEN.
  const tokenEnv = container.env.find((e) => e.name === 'CORRAL_ADMIN_TOKEN');
  assert.ok(tokenEnv?.valueFrom?.secretKeyRef, 'the admin token comes from a Secret, not the manifest');
  return resolveOptions({ ...command.options, adminToken: 'k8s-secret-stand-in-0123456789abcdef', cwd: path.join(ROOT, 'examples/docker') });
}

test('probes, ports and timing match corral\'s flags', () => {
  const pod = one('Deployment').spec.template.spec;
  const container = pod.containers[0];
  const options = corralFlags(container);
  const portOf = (ref) => (typeof ref === 'number' ? ref : container.ports.find((p) => p.name === ref)?.containerPort);

  // The app listens where the Service sends it.
  assert.equal(portOf(one('Service').spec.ports[0].targetPort), options.port);
  // The kubelet reaches the admin server on the pod IP, without a token, at corral's paths.
  assert.ok(options.admin, '--admin is set');
  assert.ok(!['127.0.0.1', 'localhost', '::1'].includes(options.admin.host), 'the admin server listens on the pod IP, where the kubelet probes');
  for (const [probe, urlPath] of [['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']]) {
    const get = container[probe]?.httpGet;
    assert.ok(get, `${probe} is an httpGet`);
    assert.equal(get.path, urlPath);
    assert.equal(portOf(get.port), options.admin.port, `${probe} goes to the --admin port`);
    assert.equal(get.httpHeaders, undefined, `${probe} needs no token (${urlPath} answers without it)`);
  }
  // Stop: endpoints go during preStop, corral drains for --grace, then SIGTERM and SIGKILL a stuck worker.
  const preStop = container.lifecycle.preStop.exec?.command ?? [];
  assert.equal(preStop[0], 'sleep');
  const sleepS = Number(preStop[1]);
  assert.ok(sleepS >= 3, 'preStop gives endpoint controllers a few seconds');
  const needS = sleepS + (options.grace + KILL_TIMEOUT_MS) / 1000;
  assert.ok(pod.terminationGracePeriodSeconds > needS, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > preStop ${sleepS} s + grace + kill timeout = ${needS} s`);
  // Workers: auto, from the pod's CPU limit (the kubelet writes it as the cgroup quota).
  assert.equal(options.workers, 'auto');
  const { requests, limits } = container.resources;
  assert.equal(requests.cpu, limits.cpu, 'CPU requests = limits');
  const cpus = Number(limits.cpu);
  assert.ok(Number.isInteger(cpus), 'whole CPUs');
  const cgroup = { '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': `${cpus * 100000} 100000\n` };
  const sizing = autoWorkers((f) => cgroup[f], '/sys/fs/cgroup', 64);
  assert.equal(sizing.workers, cpus, `a ${cpus}-CPU limit gives ${cpus} workers`);
  assert.ok(options.admin.minReady >= 1 && options.admin.minReady <= sizing.workers, '--min-ready is reachable');
});
