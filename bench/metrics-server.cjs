// The scrape benchmark's app: hello world that instruments itself with
// prom-client the way a typical service does (default process metrics, a
// request counter by route and status, a latency histogram).
const http = require('node:http');
const client = require('prom-client');

client.collectDefaultMetrics();
const requests = new client.Counter({ name: 'http_requests_total', help: 'Requests.', labelNames: ['route', 'status'] });
const latency = new client.Histogram({ name: 'http_request_duration_seconds', help: 'Latency.', labelNames: ['route'] });
const body = 'hello world\n';

const server = http.createServer((req, res) => {
  const end = latency.startTimer({ route: '/' });
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
  requests.inc({ route: '/', status: '200' });
  end();
});
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
