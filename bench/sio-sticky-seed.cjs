// @socket.io/sticky's approach, written as its README writes it: a hand-made
// primary owns the port, reads each connection's first chunk and sends the
// socket to a worker (round-robin here: its least-connection method counts
// Socket.IO sessions, and a plain HTTP app has none, so it would send
// everything to one worker); the workers inject it into their server, which
// does not listen. Its setupWorker() answers every request with
// "Connection: close", so keep-alive clients reconnect for every request.
const cluster = require('node:cluster');
const http = require('node:http');
const { EventEmitter } = require('node:events');
const path = require('node:path');
const { setupMaster, setupWorker } = require('@socket.io/sticky');

if (cluster.isPrimary) {
  const workers = Number(process.env.BENCH_WORKERS ?? 2);
  // Its README's setup: Buffers cross the IPC channel as Buffers.
  cluster.setupPrimary({ serialization: 'advanced' });
  const httpServer = http.createServer();
  setupMaster(httpServer, { loadBalancingMethod: 'round-robin' });
  httpServer.listen(Number(process.env.PORT), '127.0.0.1');
  for (let i = 0; i < workers; i++) cluster.fork({ BENCH_NO_LISTEN: '1' });
  let stopping = false;
  cluster.on('exit', () => {
    if (!stopping) cluster.fork({ BENCH_NO_LISTEN: '1' });
  });
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200);
  });
} else {
  const server = require(path.join(__dirname, 'server.cjs'));
  // setupWorker() wants a Socket.IO server; it uses only its httpServer and engine.
  setupWorker({ httpServer: server, engine: new EventEmitter() });
}
