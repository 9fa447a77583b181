// The failover benchmark's app: a slow start, as real apps have — a large
// module graph (the typescript package, ~9 MB of JavaScript), 1 s of CPU
// (think: building caches) and 1 s of I/O (think: a connection pool) before
// it listens. "/" answers with the pid.
const http = require('node:http');
const started = Date.now();
require('typescript');
const loadedMs = Date.now() - started;
const spinUntil = Date.now() + 1000;
let x = 0;
while (Date.now() < spinUntil) x += Math.sqrt(x + 1);
setTimeout(() => {
  const server = http.createServer((req, res) => res.end(String(process.pid)));
  server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(`listening after ${Date.now() - started} ms (typescript loaded in ${loadedMs} ms)`));
}, 1000);
