// The classic hand-written node:cluster server, unchanged. Run with plain
// `node server.js` it forks one worker per core itself; under corral every
// worker sees isMaster === false and simply serves, while corral supervises.
import cluster from 'node:cluster';
import http from 'node:http';
import os from 'node:os';

const port = Number(process.env.PORT ?? 3000);

if (cluster.isMaster) {
  for (let i = 0; i < os.availableParallelism(); i++) cluster.fork();
  cluster.on('exit', (worker) => {
    console.log(`worker ${worker.process.pid} died; forking another`);
    cluster.fork();
  });
} else {
  http
    .createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello from pid ${process.pid}\n`);
    })
    .listen(port, '127.0.0.1', function () {
      console.log(`listening on http://127.0.0.1:${this.address().port}`);
    });
}
