/**
 * The CLI's commands: each one's synopsis, what it does, its own flags and
 * an example, for parsing, `corral help <command>` and usage errors alike.
 * Start options live in config/schema.ts.
 */
import { bool, duration, int, text, type OptionDef } from '../config/schema.js';

const home: OptionDef = { schema: text('a directory path'), flag: { long: 'home', arg: '<dir>' }, help: 'control socket directory (default $CORRAL_HOME or ~/.corral)' };
const json: OptionDef = { schema: bool(), flag: { long: 'json' }, help: 'machine-readable output' };
const timeout: OptionDef = {
  schema: duration('a positive duration in ms (or with s/m)', 1),
  flag: { long: 'timeout', arg: '<ms>' },
  help: 'wait at most this long (default: as long as the primary says the work can take)',
};

export interface Verb {
  synopsis: string;
  summary: string;
  /** The command's own flags (start's are the start options). */
  flags: Record<string, OptionDef>;
  examples: string[];
  /** A longer explanation printed by `corral help <command>`. */
  details?: string;
}

export const VERBS = {
  start: {
    synopsis: 'corral [start] <script> [options] [-- <script args>]',
    summary: 'run a server script in one worker per usable CPU (without a script: the apps of corral.config.*)',
    flags: {
      config: { schema: text('a file path'), flag: { long: 'config', short: 'c', arg: '<file>' }, help: 'config file to run when no script is given (default corral.config.* in the cwd)' },
    },
    examples: ['corral server.js', 'corral server.js -w 4 --port 8080 --name web -- --verbose', 'corral app.js --watch --env-file .env', 'corral start --config corral.config.mjs'],
    details: 'Options may come before or after the script; everything after -- goes to the script untouched.',
  },
  status: {
    synopsis: 'corral status [name] [--json] [--watch]',
    summary: 'the workers of a running cluster: pid, state, uptime, restarts, memory, CPU, requests',
    flags: { json, watch: { schema: bool(), flag: { long: 'watch' }, help: 'refresh in place every second until Ctrl-C (like top)' }, home },
    examples: ['corral status', 'corral status web --watch', 'corral status --json | jq .totals'],
  },
  reload: {
    synopsis: 'corral reload [name] [--timeout <ms>]',
    summary: 'rolling reload: each worker is replaced by one running the code now on disk, with zero downtime',
    flags: { timeout, home },
    examples: ['corral reload', 'corral reload web --timeout 60s'],
    details: 'Exits 1 naming the error if the new code fails; the old workers keep serving then.',
  },
  restart: {
    synopsis: 'corral restart [name] [--hard] [--timeout <ms>]',
    summary: 'a rolling reload (as corral reload); with --hard every worker is drained and replaced at once',
    flags: { hard: { schema: bool(), flag: { long: 'hard' }, help: 'replace all workers at once instead of one by one (requests may wait or fail meanwhile)' }, timeout, home },
    examples: ['corral restart web', 'corral restart web --hard'],
    details: 'Use --hard when old and new code must not run side by side (a schema migration, an exclusive lock).',
  },
  scale: {
    synopsis: 'corral scale [name] <n|+k|-k> [--force]',
    summary: 'change the worker count at runtime',
    flags: { force: { schema: bool(), flag: { long: 'force' }, help: 'allow more than 4 workers per usable CPU' }, timeout, home },
    examples: ['corral scale 4', 'corral scale web +1', 'corral scale web -1'],
  },
  stop: {
    synopsis: 'corral stop [name]',
    summary: 'graceful stop: in-flight requests finish, then the primary exits',
    flags: { home },
    examples: ['corral stop', 'corral stop web'],
  },
  list: {
    synopsis: 'corral list [--json]   (or: corral ls)',
    summary: 'the clusters running on this machine for this user',
    flags: { json, home },
    examples: ['corral ls'],
  },
  logs: {
    synopsis: 'corral logs [name] [-n <lines>] [--follow] [--json] [--time]',
    summary: "the last lines of a running cluster's workers and of corral itself, then (with --follow) new ones as they come",
    flags: {
      lines: { schema: int('a line count (0 or more)', 0), flag: { long: 'lines', short: 'n', arg: '<lines>' }, help: 'how many recent lines to show (default 200)' },
      follow: { schema: bool(), flag: { long: 'follow', short: 'f' }, help: 'keep printing new lines until Ctrl-C (or until the cluster stops)' },
      json,
      time: { schema: bool(), flag: { long: 'time' }, help: 'start each text line with its timestamp' },
      home,
    },
    examples: ['corral logs', 'corral logs web -n 50 --follow'],
    details: "The primary keeps the last --log-buffer lines (default 1000) per worker slot and of its own; works for a cluster started under systemd or in another terminal.",
  },
  systemd: {
    synopsis: 'corral systemd [name] [--user] [-- <script> [start options]]',
    summary: "print a systemd unit for the app (without --: the config file's apps)",
    flags: { user: { schema: bool(), flag: { long: 'user' }, help: 'a unit for the user manager (systemctl --user), not the system' } },
    examples: ['corral systemd web -- server.js --port 8080 > /etc/systemd/system/web.service', 'corral systemd --user'],
  },
} satisfies Record<string, Verb>;

export type VerbName = keyof typeof VERBS;

/** Other spellings users bring from PM2 and habit. */
export const ALIASES: Record<string, VerbName> = { ls: 'list' };

/** PM2 verbs corral does not have, and what to use instead. */
export const INSTEAD: Record<string, string> = {
  delete: "'corral stop' (a stopped cluster leaves nothing behind)",
  del: "'corral stop'",
  kill: "'corral stop'",
  monit: "'corral status --watch'",
  show: "'corral status <name>'",
  describe: "'corral status <name>'",
  info: "'corral status <name>'",
  flush: "nothing: the log buffer is bounded ('--log-buffer')",
  save: 'a config file (corral.config.mjs)',
  resurrect: "a systemd unit or a container's restart policy",
  startup: "a systemd unit or a container's restart policy",
};

export function isVerb(word: string): word is VerbName {
  return Object.hasOwn(VERBS, word);
}
