// WebSocket clients for the real-time tests: each reconnects as soon as its
// connection closes (as eager a client as there is, so a worker that still
// accepts when it should not gets caught) and records every session: which
// pid served it, how it ended, and echo messages left unanswered.
import WebSocket from 'ws';

export function wsFleet(port, count, { echoEveryMs = 0, reconnectMs = 10 } = {}) {
  const clients = Array.from({ length: count }, (_, i) => ({ i, sessions: [], refused: 0 }));
  let running = true;
  const pending = new Set();
  const connect = (c) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const session = { pid: null, code: null, reason: '', sent: 0, echoed: 0 };
    c.ws = ws;
    let timer;
    ws.on('open', () => {
      if (echoEveryMs > 0) {
        timer = setInterval(() => {
          if (ws.readyState !== WebSocket.OPEN) return;
          session.sent += 1;
          ws.send(`echo ${session.sent}`);
        }, echoEveryMs);
      }
    });
    ws.on('message', (data) => {
      const text = data.toString();
      if (session.pid === null && text.startsWith('{')) {
        session.pid = JSON.parse(text).pid;
        c.sessions.push(session);
      } else if (text.startsWith('echo ')) session.echoed += 1;
    });
    ws.on('error', () => {});
    ws.on('close', (code, reason) => {
      clearInterval(timer);
      if (!running) return; // the test is over: ended by stop(), not by the server
      if (session.pid === null) c.refused += 1;
      session.code = code;
      session.reason = reason.toString();
      const again = setTimeout(() => {
        pending.delete(again);
        connect(c);
      }, reconnectMs);
      pending.add(again);
    });
  };
  for (const c of clients) connect(c);
  return {
    clients,
    /** Every client's current session is open and served by one of `pids`. */
    allOn(pids) {
      return clients.every((c) => {
        const s = c.sessions[c.sessions.length - 1];
        return s && s.code === null && pids.includes(s.pid);
      });
    },
    /** Sessions that ended, with their close codes. */
    ended() {
      return clients.flatMap((c) => c.sessions.filter((s) => s.code !== null).map((s) => ({ client: c.i, ...s })));
    },
    async stop() {
      running = false;
      for (const timer of pending) clearTimeout(timer);
      await Promise.all(clients.map((c) => new Promise((resolve) => {
        if (!c.ws || c.ws.readyState === WebSocket.CLOSED) return resolve();
        c.ws.once('close', resolve);
        c.ws.terminate();
      })));
    },
  };
}

/**
 * Socket.IO clients, one `x-client` header each (the sticky key the tests
 * route by). Every error and disconnect is recorded; `hello` resolves with
 * the pid of the worker that took the client.
 */
export async function sioClients(port, count, { transports = ['polling', 'websocket'], upgrade = true, reconnection = false, key = (i) => `client-${i}` } = {}) {
  const { io } = await import('socket.io-client');
  const errors = [];
  const clients = Array.from({ length: count }, (_, i) => {
    const socket = io(`http://127.0.0.1:${port}`, { transports, upgrade, extraHeaders: { 'x-client': key(i) }, forceNew: true, reconnection, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    socket.news = [];
    socket.pids = [];
    socket.disconnects = [];
    socket.on('connect_error', (err) => errors.push(`client ${i}: connect_error ${err.message}`));
    socket.on('disconnect', (reason) => socket.disconnects.push(reason));
    socket.on('news', (m) => socket.news.push(m));
    socket.on('hello', (m) => socket.pids.push(m.pid));
    return socket;
  });
  return {
    clients,
    errors,
    close() {
      for (const s of clients) s.close();
    },
  };
}
