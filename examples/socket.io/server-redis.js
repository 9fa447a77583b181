// The same chat for several machines: each machine runs corral (one worker
// per core, --sticky for long-polling), and the Redis adapter carries the
// broadcasts between all workers of all machines. In front, a load balancer
// with sticky sessions per machine (e.g. nginx `ip_hash`, or a cookie).
//
//   npm i @socket.io/redis-adapter redis
//   REDIS_URL=redis://redis:6379 npx corral examples/socket.io/server-redis.js --port 3000 \
//     --sticky header:x-forwarded-for
//
// Behind the load balancer every connection comes from its address, so the
// key is the header it sets (see "Behind a reverse proxy" in the README).
// corral's adapter relay stays idle: the Redis adapter does not use IPC.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { worker } from 'corral/worker';

const page = readFileSync(new URL('./index.html', import.meta.url));
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(page);
});

const pub = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const io = new Server(server, { adapter: createAdapter(pub, sub) });
io.on('connection', (socket) => {
  socket.emit('welcome', { worker: process.pid });
  socket.on('chat', (text, ack) => {
    io.emit('chat', { text: String(text).slice(0, 500), worker: process.pid });
    ack?.();
  });
});

// Close the Redis connections once the worker's clients are gone.
worker.onShutdown(async () => {
  await Promise.allSettled([pub.quit(), sub.quit()]);
});

server.listen(Number(process.env.PORT ?? 3000), () => {
  console.log(`listening on ${server.address().port}`);
});
