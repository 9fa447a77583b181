// A stand-in for systemd's notification socket: test/fixtures/notify-socket.py
// records every datagram with its sender, as the service manager sees it.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { FIXTURES, eachLine, waitFor } from './helpers.js';

const RECEIVER = path.join(FIXTURES, 'notify-socket.py');

export function notifyToolsMissing() {
  for (const [tool, pkg] of [['python3', 'python3'], ['systemd-notify', 'systemd']]) {
    const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
    if (r.error) return `${tool} is not installed (apt-get install ${pkg}; .ci/run does)`;
  }
  return null;
}

export const monotonicUsec = () => Number(process.hrtime.bigint() / 1000n);

/** The fake manager socket; `messages` are the non-barrier ones, in order of arrival. */
export async function fakeManager(t, dir) {
  const socket = path.join(dir, 'notify.sock');
  const proc = spawn('python3', [RECEIVER, socket], { stdio: ['pipe', 'pipe', 'inherit'] });
  const all = [];
  eachLine(proc.stdout, (l) => all.push({ ...JSON.parse(l), at: monotonicUsec() }));
  t.after(() => proc.kill('SIGKILL'));
  await waitFor(() => all.some((m) => m.listening), 10000, 'the fake NOTIFY_SOCKET');
  const messages = () => all.filter((m) => m.fields && !m.fields.includes('BARRIER=1'));
  const field = (m, key) => m.fields.find((f) => f.startsWith(`${key}=`))?.slice(key.length + 1);
  const next = (key, after = 0) => waitFor(() => messages().slice(after).find((m) => field(m, key) === '1'), 20000, `${key}=1 on the notify socket (got ${JSON.stringify(messages())})`);
  return { socket, messages, field, next };
}

