export const USAGE = `corral - run a Node.js server on every core

Usage:
  corral [start] <script> [options] [-- <script args>]
  corral [start] [--config <file>] [options]   the apps of corral.config.{json,js,mjs,ts}
  corral status [name] [--json]      show workers, memory, CPU and restarts
  corral reload [name]               rolling reload with zero downtime
  corral scale [name] <n|+k|-k>      change the worker count at runtime
  corral stop [name]                 graceful stop
  corral list [--json]               running clusters
  corral systemd [name] [--user] [-- <script> [options]]
                                     print a systemd unit for the app (the config file's without --)

Start options:
  -w, --workers <n|auto>        worker count (default auto: usable CPUs, cgroup quota included)
  -p, --port <n>                set PORT for the workers
  -n, --name <name>             cluster name (default: the script's basename)
      --strategy <s>            auto | os | rr | reuseport (default auto)
  -e, --env <KEY=VALUE>         extra environment for the workers (repeatable)
      --boot-timeout <ms>       a worker must be ready within this (default 30000)
      --grace <ms>              drain time on stop/reload before SIGTERM (default 10000)
      --reload-parallel <k>     workers replaced at a time during reload (default 1)
      --watchdog <ms>           kill a worker without heartbeat this long (default 30000, 0 = off)
      --max-memory <size>       replace a worker whose RSS stays above this (e.g. 512M, 2G)
      --max-requests <n>        recycle a worker after n requests
      --max-requests-jitter <n> add 0..n to each worker's --max-requests
      --no-prefix               print worker output without [name slot pid] prefixes
      --log-format <text|json>  json: one object per line (time, level, source, worker, pid, msg)
      --home <dir>              control socket directory (default $CORRAL_HOME or ~/.corral)
      --admin <port|host:port>  admin HTTP server: /metrics /status /healthz /readyz and a dashboard (default host 127.0.0.1)
      --admin-token <token>     Bearer token for it (or $CORRAL_ADMIN_TOKEN); required on a non-loopback host
      --min-ready <n>           /readyz is 200 only with at least n ready workers (default 1)
      --admin-actions           allow reload and scale from the admin server (POST, off by default)
  -c, --config <file>           config file to run when no script is given (default corral.config.* in cwd)
  -h, --help                    this help
  -v, --version                 corral's version

Signals to the primary: SIGINT/SIGTERM graceful stop (twice: immediate), SIGHUP reload,
SIGTTIN one worker more, SIGTTOU one worker less.
Exit codes: 0 ok, 1 operation failed, 2 bad usage or no such cluster.
`;
