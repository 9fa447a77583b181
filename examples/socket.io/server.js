// A Socket.IO chat, written as for node:cluster workers, with no primary
// file: run it under corral and every worker shares the rooms and
// broadcasts.
//
//   npx corral examples/socket.io/server.js --port 3000 --sticky ip
//
// --sticky is what long-polling needs (each client's requests must reach the
// worker that holds its session); corral relays the cluster adapter's
// messages between the workers by itself. For many machines, see
// server-redis.js beside this file.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createAdapter } from '@socket.io/cluster-adapter';
import { Server } from 'socket.io';

const page = readFileSync(new URL('./index.html', import.meta.url));
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(page);
});

const io = new Server(server);
io.adapter(createAdapter());

io.on('connection', (socket) => {
  socket.emit('welcome', { worker: process.pid });
  socket.on('chat', (text, ack) => {
    // Reaches the clients of every worker, through corral's relay.
    io.emit('chat', { text: String(text).slice(0, 500), worker: process.pid });
    ack?.();
  });
});

server.listen(Number(process.env.PORT ?? 3000), () => {
  console.log(`listening on ${server.address().port}`);
});
