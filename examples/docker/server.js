// An ordinary HTTP server: corral runs it unmodified in one worker per CPU
// of the container's limit. /slow takes 2 s, to watch `docker stop` let an
// in-flight request finish.
import http from 'node:http';

const port = Number(process.env.PORT ?? 3000);

http
  .createServer((req, res) => {
    const reply = () => res.end(`hello from pid ${process.pid}\n`);
    if (req.url === '/slow') setTimeout(reply, 2000);
    else reply();
  })
  .listen(port, () => console.log(`listening on ${port}`));
