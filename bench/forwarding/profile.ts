/**
 * Summary of a V8 `.cpuprofile` (as written by `node --cpu-prof`): self and total (inclusive)
 * time per function, aggregated over call sites, from the sample timeline (`samples` +
 * `timeDeltas`), so the numbers are milliseconds of the profiled process, not hit counts.
 */

export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function where(url: string, line: number): string {
  if (url === '') return '';
  const m = /\/(src|dist|node_modules)\/(.*)$/.exec(url);
  const short = m !== null ? `${m[1]}/${m[2]}` : url.replace(/^file:\/\//, '');
  return `${short}:${line + 1}`;
}

/**
 * A text report: the top `n` functions by self time and by total time. `window`: only samples
 * taken within [from, to] (µs of CLOCK_MONOTONIC, the clock of V8's timestamps and of
 * `process.hrtime`), e.g. the measurement without the process's start-up.
 */
export function summarizeProfile(p: CpuProfile, n: number, window?: readonly [number, number]): string {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const key = (id: number): string => {
    const f = byId.get(id)!.callFrame;
    const w = where(f.url, f.lineNumber);
    return `${f.functionName === '' ? '(anonymous)' : f.functionName}${w === '' ? '' : ` ${w}`}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  let idle = 0;
  let ts = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    ts += p.timeDeltas[i] ?? 0;
    if (window !== undefined && (ts < window[0] || ts > window[1])) continue;
    // the delta before sample i+1 is the time spent in sample i
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const id = p.samples[i]!;
    const k = key(id);
    all += dt;
    if (k === '(idle)') idle += dt;
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let a: number | undefined = id; a !== undefined; a = parent.get(a)) {
      const ka = key(a);
      if (seen.has(ka)) continue;
      seen.add(ka);
      total.set(ka, (total.get(ka) ?? 0) + dt);
    }
  }
  const busy = all - idle;
  const rows = (m: Map<string, number>): string[] =>
    [...m.entries()]
      .filter(([k]) => k !== '(root)' && k !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${v.toFixed(0).padStart(7)} ms ${((100 * v) / Math.max(1, busy)).toFixed(1).padStart(5)} %  ${k}`);
  return [
    `profile${window === undefined ? '' : ' (measurement window only)'}: ${(all / 1000).toFixed(2)} s sampled, ${(idle / 1000).toFixed(2)} s idle, ${(busy / 1000).toFixed(2)} s busy (percentages of busy)`,
    '',
    'self time:',
    ...rows(self),
    '',
    'total time (inclusive):',
    ...rows(total),
  ].join('\n');
}
