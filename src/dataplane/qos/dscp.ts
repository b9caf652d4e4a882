/**
 * DSCP code points by name: class selectors CS0..CS7 (RFC 2474 §4.2.2), assured forwarding
 * AF11..AF43 (RFC 2597 §6), expedited forwarding EF (RFC 3246 §2.1), VOICE-ADMIT (RFC 5865 §3)
 * and lower effort LE (RFC 8622 §4). Names are for the config reader and the API; the data path
 * only sees the 6-bit numbers.
 */

export const DSCP = {
  CS0: 0,
  LE: 1,
  CS1: 8,
  AF11: 10,
  AF12: 12,
  AF13: 14,
  CS2: 16,
  AF21: 18,
  AF22: 20,
  AF23: 22,
  CS3: 24,
  AF31: 26,
  AF32: 28,
  AF33: 30,
  CS4: 32,
  AF41: 34,
  AF42: 36,
  AF43: 38,
  CS5: 40,
  VOICE_ADMIT: 44,
  EF: 46,
  CS6: 48,
  CS7: 56,
} as const;
export type DscpName = keyof typeof DSCP;

const NAMES: readonly string[] = (() => {
  const t = Array.from({ length: 64 }, (_, i) => String(i));
  for (const [name, v] of Object.entries(DSCP)) t[v] = name;
  return t;
})();

const BY_NAME = new Map<string, number>(Object.entries(DSCP).map(([n, v]) => [n.toLowerCase(), v]));
BY_NAME.set('be', 0);
BY_NAME.set('va', DSCP.VOICE_ADMIT);
BY_NAME.set('voice-admit', DSCP.VOICE_ADMIT);

/** `EF`, `AF41`, `CS0`, ...; the decimal value for a code point without a name. */
export function dscpName(n: number): string {
  return NAMES[n] ?? `invalid DSCP ${n}`;
}

/** `ef`, `AF41`, `cs3`, `be`, `le` or a decimal `0`..`63`; undefined when it is none of these. */
export function parseDscp(s: string): number | undefined {
  const t = s.trim().toLowerCase();
  if (/^\d{1,2}$/.test(t)) {
    const n = Number(t);
    return n <= 63 ? n : undefined;
  }
  return BY_NAME.get(t);
}
