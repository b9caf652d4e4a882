/**
 * Regular expressions in policy config: when a set member is a regex, and how a Cisco-style AS
 * path regex becomes a JS RegExp. Every regex is compiled once, at config time.
 *
 * - A member "looks like a regex" when it starts with `^`, ends with `$`, or contains one of
 *   `. * + ? [ ] ( ) | \`. Callers try the literal parse first, so "rt:192.0.2.1:100" (dots) stays
 *   a literal.
 * - Cisco `_` matches one delimiter: the start or end of the string, a space, a brace, a paren, a
 *   bracket or a comma (the AS path text form is "65001 65002 {65003,65004}"). It is rewritten to
 *   `(?:^|$|[ {}()\[\],])` outside character classes; `\_` stays a literal underscore.
 */

const REGEX_HINT = /^\^|\$$|[.*+?[\]()|\\]/;

export function looksLikeRegex(s: string): boolean {
  return REGEX_HINT.test(s);
}

export class RegexError extends Error {
  override readonly name = 'RegexError';
  readonly code = 'BAD_REGEX';
}

/** Compiles a plain JS regex (community members); throws RegexError with the engine's reason. */
export function compileRegex(source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (e) {
    throw new RegexError(`bad regex "${source}": ${(e as Error).message}`);
  }
}

const DELIMITER = '(?:^|$|[ {}()\\[\\],])';

/** Rewrites Cisco `_` to a delimiter alternative, leaving character classes and escapes alone. */
export function translateAsPathRegex(source: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      out += c + (source[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
      if (source[i + 1] === '^') out += source[++i];
    } else if (c === '_') {
      out += DELIMITER;
    } else {
      out += c;
    }
  }
  return out;
}

/** Compiles a Cisco-style AS path regex against the text form "65001 65002 {65003,65004}". */
export function compileAsPathRegex(source: string): RegExp {
  const translated = translateAsPathRegex(source);
  try {
    return new RegExp(translated);
  } catch (e) {
    throw new RegexError(`bad AS path regex "${source}": ${(e as Error).message}`);
  }
}
