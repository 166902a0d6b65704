// Finds where and why a JSON text is malformed, for a one-line error with line and column.
//
// JSON.parse does the real parsing; this scanner runs only after it has failed, because V8's
// messages on Node 20 sometimes give a character offset, sometimes only a quoted excerpt of the
// input (which can span lines), and never a line number.

export interface JsonSyntaxError {
  /** Offset in UTF-16 code units. */
  offset: number;
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
  reason: string;
}

type State =
  | 'value'            // a value must start here
  | 'value-or-close'   // just after '[': a value or ']'
  | 'value-after-comma'
  | 'key-or-close'     // just after '{': a key or '}'
  | 'key-after-comma'  // a key; '}' here is a trailing comma
  | 'after-value';     // a value just ended

const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

class Found {
  constructor(readonly offset: number, readonly reason: string) {}
}

/** Returns undefined when `text` is well-formed JSON. */
export function locateJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const found = scan(text);
  if (found === undefined) return undefined;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < found.offset; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset: found.offset, line, column: found.offset - lineStart + 1, reason: found.reason };
}

function describe(ch: string | undefined): string {
  if (ch === undefined) return 'end of input';
  const code = ch.charCodeAt(0);
  if (code >= 0x21 && code <= 0x7e) return `character '${ch}'`;
  return `character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

function scan(text: string): Found | undefined {
  // An explicit stack rather than recursion: deeply nested input must not overflow ours
  // where JSON.parse's own limit would have said something else.
  const stack: ('{' | '[')[] = [];
  let state: State = 'value';
  let pos = 0;
  const n = text.length;

  const skipSpace = (): void => {
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      pos++;
    }
  };
  const unexpected = (): Found =>
    new Found(pos, pos >= n ? 'unexpected end of input' : `unexpected ${describe(text[pos])}`);

  for (;;) {
    skipSpace();
    const ch = text[pos];
    switch (state) {
      case 'value-or-close':
        if (ch === ']') { pos++; stack.pop(); state = 'after-value'; continue; }
        state = 'value';
        continue;
      case 'key-or-close':
        if (ch === '}') { pos++; stack.pop(); state = 'after-value'; continue; }
        {
          const err = scanKey();
          if (err) return err;
        }
        state = 'value';
        continue;
      case 'key-after-comma': {
        if (ch === '}') return new Found(pos, "trailing comma before '}'");
        const err = scanKey();
        if (err) return err;
        state = 'value';
        continue;
      }
      case 'value-after-comma':
        if (ch === ']') return new Found(pos, "trailing comma before ']'");
        state = 'value';
        continue;
      case 'value': {
        if (ch === '{') { pos++; stack.push('{'); state = 'key-or-close'; continue; }
        if (ch === '[') { pos++; stack.push('['); state = 'value-or-close'; continue; }
        const err = ch === '"' ? scanString()
          : ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9') ? scanNumber()
          : ch === 't' ? scanLiteral('true')
          : ch === 'f' ? scanLiteral('false')
          : ch === 'n' ? scanLiteral('null')
          : unexpected();
        if (err) return err;
        state = 'after-value';
        continue;
      }
      case 'after-value': {
        const top = stack[stack.length - 1];
        if (top === undefined) return pos < n ? new Found(pos, `unexpected ${describe(ch)} after the end of the document`) : undefined;
        if (ch === ',') { pos++; state = top === '{' ? 'key-after-comma' : 'value-after-comma'; continue; }
        if (top === '{' && ch === '}') { pos++; stack.pop(); continue; }
        if (top === '[' && ch === ']') { pos++; stack.pop(); continue; }
        if (ch === undefined) return unexpected();
        return new Found(pos, top === '{'
          ? `expected ',' or '}' after a property value, found ${describe(ch)}`
          : `expected ',' or ']' after an array element, found ${describe(ch)}`);
      }
    }
  }

  /** A property name and its ':'. */
  function scanKey(): Found | undefined {
    const ch = text[pos];
    if (ch !== '"') return ch === undefined ? unexpected() : new Found(pos, `expected a property name in double quotes, found ${describe(ch)}`);
    const err = scanString();
    if (err) return err;
    skipSpace();
    const colon = text[pos];
    if (colon !== ':') return colon === undefined ? unexpected() : new Found(pos, `expected ':' after a property name, found ${describe(colon)}`);
    pos++;
    return undefined;
  }

  function scanString(): Found | undefined {
    const start = pos;
    pos++;
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c === 0x22) { pos++; return undefined; }
      if (c < 0x20) return new Found(pos, `unescaped control ${describe(text[pos])} in a string`);
      if (c === 0x5c) {
        const e = text[pos + 1];
        if (e === 'u') {
          if (!/^[0-9A-Fa-f]{4}$/.test(text.slice(pos + 2, pos + 6))) return new Found(pos, 'invalid \\u escape in a string');
          pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) return new Found(pos, `invalid escape '\\${e ?? ''}' in a string`);
        pos += 2;
        continue;
      }
      pos++;
    }
    return new Found(start, 'unterminated string');
  }

  function scanNumber(): Found | undefined {
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (m === null) return new Found(pos, 'invalid number');
    const end = pos + m[0].length;
    const next = text[end];
    // "01", "1.", "1e" and "-" stop the pattern early; the leftover digit or sign shows it.
    if (next !== undefined && /[0-9.eE+-]/.test(next)) return new Found(pos, 'invalid number');
    pos = end;
    return undefined;
  }

  function scanLiteral(word: string): Found | undefined {
    for (let i = 0; i < word.length; i++) {
      if (text[pos + i] !== word[i]) return new Found(pos + i, `unexpected ${describe(text[pos + i])}`);
    }
    pos += word.length;
    return undefined;
  }
}
