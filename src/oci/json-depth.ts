// Finds where a JSON text nests arrays and objects deeper than a limit, before anything parses it.
//
// JSON.parse copes with deep nesting, but every walk over the value afterwards (the validator,
// structuredClone, the checks) recurses, and a few thousand levels overflow the stack with an error
// that names nothing. Counting brackets outside strings is enough: on malformed text the count may
// be off, and JSON.parse refuses such text anyway.

export interface Position {
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
}

/** The position of the first bracket that opens level `max + 1`, or undefined if there is none. */
export function locateExcessNesting(text: string, max: number): Position | undefined {
  let depth = 0;
  let line = 1;
  let lineStart = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;                 // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    switch (c) {
      case 0x22: inString = true; break;   // "
      case 0x0a: line++; lineStart = i + 1; break;
      case 0x5b: case 0x7b:                // [ {
        if (++depth > max) return { line, column: i - lineStart + 1 };
        break;
      case 0x5d: case 0x7d: depth--; break; // ] }
    }
  }
  return undefined;
}
