// Read a unit file back the way systemd does, independently of how corral
// writes it: sections and keys, and ExecStart= words per systemd.service(5).
import assert from 'node:assert/strict';

/** [Section] -> key -> values (a key may repeat, as Environment= does). */
export function parseUnit(text) {
  const sections = {};
  let current;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections[section[1]] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `not a setting: ${line}`);
    (current[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return sections;
}

/** ExecStart= words the way systemd reads them: specifiers, then quotes and C escapes, then $$. */
export function execWords(value) {
  assert.doesNotMatch(value.replace(/%%/g, ''), /%/, 'no unescaped specifier');
  const line = value.replace(/%%/g, '%');
  const words = [];
  let word = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (ch === '"' || ch === "'") {
      const end = line.indexOf(ch, i + 1);
      assert.ok(end > i, `unbalanced quote in ${value}`);
      let inner = line.slice(i + 1, end);
      if (ch === '"') {
        // an escaped quote does not end the word
        let j = i + 1;
        inner = '';
        for (; line[j] !== '"'; j++) {
          if (line[j] === '\\') inner += { n: '\n', t: '\t', '\\': '\\', '"': '"', "'": "'" }[line[++j]] ?? line[j];
          else inner += line[j];
        }
        i = j;
      } else {
        i = end;
      }
      word = (word ?? '') + inner;
    } else if (ch === '\\') {
      word = (word ?? '') + line[++i];
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== null) words.push(word);
  return words.map((w) => {
    assert.doesNotMatch(w.replace(/\$\$/g, ''), /\$[A-Za-z_{]/, `no variable expansion in ${w}`);
    return w.replace(/\$\$/g, '$');
  });
}

