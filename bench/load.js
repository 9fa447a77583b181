// A small HTTP/1.1 load generator on raw sockets (cheaper per request than
// node:http, so more of the machine is left to the servers under test).
// Usage: node bench/load.js <port> <path> <connections> <durationMs> <keepalive|close> [header]
// `header` (e.g. "X-Client: c{i}") is sent with every request; {i} is the
// connection loop's number, so each loop is one client to a sticky router.
// Prints one JSON line: { requests, errors, non2xx, p50, p99, durationMs }.
import net from 'node:net';

const [port, urlPath, conns, durationMs, mode, header] = process.argv.slice(2);
const keepAlive = mode === 'keepalive';
const requestFor = (i) => Buffer.from(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n${header ? `${header.replaceAll('{i}', String(i))}\r\n` : ''}Connection: ${keepAlive ? 'keep-alive' : 'close'}\r\n\r\n`);
const latencies = new Float64Array(4_000_000);
let count = 0;
let errors = 0;
let non2xx = 0;
const started = performance.now();
const deadline = started + Number(durationMs);

/** Parse complete responses out of `buf`; returns the unconsumed rest and how many finished. */
function consume(buf, onResponse) {
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd === -1) return buf;
    const head = buf.subarray(0, headEnd).toString('latin1');
    const m = /content-length:\s*(\d+)/i.exec(head);
    const len = m ? Number(m[1]) : 0;
    if (buf.length < headEnd + 4 + len) return buf;
    onResponse(head.startsWith('HTTP/1.1 2'), /\r\nconnection:\s*close/i.test(head));
    buf = buf.subarray(headEnd + 4 + len);
  }
}

function connection(request) {
  return new Promise((resolve) => {
    let sent = 0;
    let buf = Buffer.alloc(0);
    const sock = net.connect({ port: Number(port), host: '127.0.0.1', noDelay: true });
    const send = () => {
      sent = performance.now();
      sock.write(request);
    };
    sock.on('connect', send);
    sock.on('data', (d) => {
      buf = consume(buf.length ? Buffer.concat([buf, d]) : d, (ok, serverCloses) => {
        if (count < latencies.length) latencies[count] = performance.now() - sent;
        count += 1;
        if (!ok) non2xx += 1;
        // A server that answers "Connection: close" gets a new connection for the next request.
        if (keepAlive && !serverCloses && performance.now() < deadline) send();
        else sock.end();
      });
    });
    sock.on('error', () => {
      errors += 1;
    });
    sock.on('close', () => resolve());
  });
}

async function loop(_, i) {
  const request = requestFor(i);
  do await connection(request);
  while (performance.now() < deadline);
}

await Promise.all(Array.from({ length: Number(conns) }, loop));
const elapsed = performance.now() - started;
const sorted = latencies.subarray(0, Math.min(count, latencies.length)).sort();
const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0);
process.stdout.write(`${JSON.stringify({ requests: count, errors, non2xx, p50: pct(0.5), p99: pct(0.99), durationMs: elapsed })}\n`);
