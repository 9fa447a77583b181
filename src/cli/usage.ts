import { OPTIONS, type OptionDef } from '../config/schema.js';
import { VERBS, type VerbName } from './verbs.js';

/** `  -w, --workers <n|auto>        worker count ...`: one aligned line per flag that has help. */
function flagLines(defs: Record<string, OptionDef>, extra: ReadonlyArray<readonly [string, string]> = []): string[] {
  const rows: Array<readonly [string, string]> = Object.values(defs)
    .filter((d) => d.flag && d.help)
    .map((d) => {
      const f = d.flag!;
      const arg = f.arg ? (f.optionalArg ? f.arg : ` ${f.arg}`) : '';
      return [`${f.short ? `-${f.short}, ` : '    '}--${f.long}${arg}`, d.help as string] as readonly [string, string];
    })
    .concat(extra);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, help]) => `  ${left.padEnd(width)}${help}`);
}

const CONTROL: VerbName[] = ['status', 'logs', 'reload', 'restart', 'scale', 'stop', 'list', 'systemd'];

/** `corral --help`: what corral does, every command, the start options. */
export function generalHelp(): string {
  const width = Math.max(...Object.values(VERBS).map((v) => v.synopsis.length)) + 2;
  return `corral - run a Node.js server on every core

Usage:
  ${VERBS.start.synopsis}
  corral [start] [--config <file>] [options]   the apps of corral.config.{json,js,mjs,ts}
${CONTROL.map((v) => `  ${VERBS[v].synopsis.padEnd(width)}${VERBS[v].summary}`).join('\n')}
  corral help <command>   that command's options and an example

Start options:
${flagLines({ ...OPTIONS, ...VERBS.start.flags } as Record<string, OptionDef>, [
  ['-h, --help', 'this help'],
  ['-v, --version', "corral's version"],
]).join('\n')}

Signals to the primary: SIGINT/SIGTERM graceful stop (twice: immediate), SIGHUP reload,
SIGTTIN one worker more, SIGTTOU one worker less.
Exit codes: 0 ok, 1 operation failed, 2 bad usage or no such cluster.
`;
}

/** `corral help reload`, `corral reload --help`: synopsis, what it does, options, examples. */
export function verbHelp(verb: VerbName): string {
  if (verb === 'start') return generalHelp();
  const v = VERBS[verb];
  const options = flagLines(v.flags as Record<string, OptionDef>);
  return `Usage: ${v.synopsis}

${v.summary}.${'details' in v ? `\n${v.details}` : ''}

Options:
${options.join('\n')}

Example${v.examples.length > 1 ? 's' : ''}:
${v.examples.map((e) => `  ${e}`).join('\n')}
`;
}

/** The line that follows a usage error: that command's synopsis. */
export function usageLine(verb: VerbName | undefined): string {
  const v = VERBS[verb ?? 'start'];
  return `usage: ${v.synopsis}   (corral help ${verb ?? 'start'})`;
}
