// The benchmark's app: "/" is hello, "/cpu" burns ~1 ms of CPU. On SIGUSR2
// each process appends how many requests it has served to BENCH_COUNT_FILE,
// so the benchmark can measure the spread across workers for any manager.
const http = require('node:http');
const fs = require('node:fs');

let served = 0;
const body = 'hello world\n';

function burn(ms) {
  const end = process.hrtime.bigint() + BigInt(ms * 1e6);
  let x = 0;
  while (process.hrtime.bigint() < end) x += Math.sqrt(x + 1);
  return x;
}

const server = http.createServer((req, res) => {
  served += 1;
  if (req.url === '/cpu') burn(1);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});

process.on('SIGUSR2', () => {
  if (process.env.BENCH_COUNT_FILE) fs.appendFileSync(process.env.BENCH_COUNT_FILE, `${process.pid} ${served}\n`);
});

// Under a hand-written primary that feeds connections in (bench/sio-sticky-seed.cjs), the app does not listen.
if (!process.env.BENCH_NO_LISTEN) {
  server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    console.log(`listening on ${server.address().port}`);
  });
}
module.exports = server;
