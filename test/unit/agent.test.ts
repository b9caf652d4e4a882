/**
 * The agent: configuration validation (every error names its field path), the management API
 * through fastify's inject (shapes, 400/404/409, metrics, OpenAPI), startAgent in-process, and the
 * `vce agent` binary as a child process (exit 2 on a bad config, exit 0 on SIGTERM).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrefix } from '../../src/lib/ip.ts';
import { buildAgentConfig, ConfigError } from '../../src/agent/config.ts';
import type { PolicyConfigError } from '../../src/bgp/policy/index.ts';
import { startAgent } from '../../src/agent/run.ts';
import { buildAgentApi } from '../../src/agent/api.ts';
import { Speaker } from '../../src/bgp/speaker.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface RawNeighbor {
  [key: string]: unknown;
  address: string;
  'peer-asn': number;
}
/** The configuration tree as a test edits it (anything may be set, to provoke errors). */
interface RawConfig {
  [key: string]: unknown;
  'router-id'?: string;
  bgp: { [key: string]: unknown; neighbors: RawNeighbor[]; networks: string[] };
}

const VALID: RawConfig = {
  'router-id': '192.0.2.1',
  bgp: {
    asn: 65001,
    listen: { address: '127.0.0.1', port: 0 },
    neighbors: [
      {
        address: '192.0.2.2',
        'peer-asn': 65002,
        'import-policy': 'accept-all',
        'export-policy': ['accept-all'],
      },
    ],
    networks: ['10.1.0.0/16', '2001:db8::/32'],
  },
};

/** VALID with `edit` applied to a deep copy. */
function variant(edit: (c: RawConfig) => void): unknown {
  const c = structuredClone(VALID);
  edit(c);
  return c;
}

function configError(raw: unknown): PolicyConfigError {
  try {
    buildAgentConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('configuration was accepted');
}

describe('configuration validation', () => {
  it('a valid configuration becomes the speaker configuration with defaults filled in', () => {
    const cfg = buildAgentConfig(VALID);
    expect(cfg.routerId).toBe(0xc0000201);
    expect(cfg.routerIdText).toBe('192.0.2.1');
    expect(cfg.logLevel).toBe('info');
    expect(cfg.api).toBeUndefined();
    expect(cfg.speaker).toMatchObject({
      asn: 65001,
      routerId: 0xc0000201,
      listen: { address: '127.0.0.1', port: 0 },
    });
    expect(cfg.speaker!.networks).toEqual([parsePrefix('10.1.0.0/16'), parsePrefix('2001:db8::/32')]);
    expect(cfg.speaker!.neighbors[0]).toMatchObject({
      address: '192.0.2.2',
      peerAsn: 65002,
      passive: false,
      remotePort: 179,
      families: ['ipv4-unicast', 'ipv6-unicast'],
      importPolicy: ['accept-all'],
      exportPolicy: ['accept-all'],
      holdTime: 90,
      connectRetryTime: 5,
      shutdown: false,
    });
    const noListen = buildAgentConfig(variant((c) => delete c.bgp.listen));
    expect(noListen.speaker!.listen).toEqual({ address: '0.0.0.0', port: 179 });
    expect(buildAgentConfig(variant((c) => (c.api = { listen: '[::1]:8080' }))).api).toEqual({
      host: '::1',
      port: 8080,
    });
  });

  it.each<[string, (c: RawConfig) => void, string, RegExp]>([
    ['router-id not an address', (c) => (c['router-id'] = '1.2.3'), 'router-id', /1\.2\.3|address/i],
    ['router-id 0.0.0.0', (c) => (c['router-id'] = '0.0.0.0'), 'router-id', /RFC 6286/],
    ['router-id IPv6', (c) => (c['router-id'] = '2001:db8::1'), 'router-id', /IPv4/],
    ['router-id missing', (c) => delete c['router-id'], 'config.router-id', /missing/],
    ['unknown top-level key', (c) => (c.bgpp = {}), 'config.bgpp', /unknown key "bgpp"/],
    [
      'unknown neighbour key',
      (c) => (c.bgp.neighbors[0]!.foo = 1),
      'bgp.neighbors[0].foo',
      /unknown key "foo"/,
    ],
    [
      'unknown policy name',
      (c) => (c.bgp.neighbors[0]!['import-policy'] = 'nope'),
      'bgp.neighbors[0].import-policy',
      /unknown policy "nope"/,
    ],
    [
      'unknown policy in a chain',
      (c) => (c.bgp.neighbors[0]!['export-policy'] = ['accept-all', 'nope']),
      'bgp.neighbors[0].export-policy',
      /unknown policy "nope"/,
    ],
    [
      'hold-time 2',
      (c) => (c.bgp.neighbors[0]!['hold-time'] = 2),
      'bgp.neighbors[0].hold-time',
      /0 or at least 3/,
    ],
    [
      'hold-time out of range',
      (c) => (c.bgp.neighbors[0]!['hold-time'] = 70000),
      'bgp.neighbors[0].hold-time',
      /./,
    ],
    ['prefix with host bits', (c) => (c.bgp.networks[1] = '10.0.0.1/8'), 'bgp.networks[1]', /host bits/],
    ['prefix too long', (c) => (c.bgp.networks[0] = '10.0.0.0/33'), 'bgp.networks[0]', /too long/],
    ['not a prefix', (c) => (c.bgp.networks[0] = 'ten'), 'bgp.networks[0]', /./],
    ['missing asn', (c) => delete c.bgp.asn, 'bgp.asn', /missing/],
    [
      'neighbour configured twice',
      (c) => c.bgp.neighbors.push({ address: '192.0.2.2', 'peer-asn': 1 }),
      'bgp.neighbors[1].address',
      /twice/,
    ],
    [
      'bad family',
      (c) => (c.bgp.neighbors[0]!['afi-safis'] = ['ipv4-multicast']),
      'bgp.neighbors[0].afi-safis[0]',
      /./,
    ],
    ['bad api listen', (c) => (c.api = { listen: 'localhost' }), 'api.listen', /HOST:PORT/],
    ['bad log level', (c) => (c['log-level'] = 'loud'), 'log-level', /./],
  ])('%s -> error at %s', (_name, edit, wantPath, msg) => {
    const e = configError(variant(edit));
    expect(e.path).toBe(wantPath);
    expect(e.message.startsWith(`${wantPath}: `)).toBe(true);
    expect(e.message).toMatch(msg);
  });

  it('policy errors name the path inside policies', () => {
    const e = configError(
      variant(
        (c) =>
          (c.policies = {
            'policy-definitions': [{ name: 'p', statements: [{ actions: { 'policy-result': 'maybe' } }] }],
          }),
      ),
    );
    expect(e.path).toBe('policies.policy-definitions[0].statements[0].actions.policy-result');
  });
});

// ---------------------------------------------------------------------------------- API

interface ErrorBody {
  error: string;
  message: string;
}
interface Route {
  prefix: string;
  paths: unknown[];
}
interface OpenApiDoc {
  openapi: string;
  info: { title: string };
  paths: Record<string, { get?: { responses: Record<string, unknown> } }>;
}

describe('management API (inject)', () => {
  let sp: Speaker;
  let app: FastifyInstance;

  beforeAll(async () => {
    const cfg = buildAgentConfig(
      variant((c) => {
        c.bgp.listen = false;
        c.bgp.neighbors[0]!.passive = true;
        c.bgp.neighbors[0]!.description = 'pe1';
        c.bgp.networks = ['10.2.0.0/16', '10.1.0.0/16', '2001:db8::/32'];
      }),
    );
    sp = new Speaker(cfg.speaker!);
    await sp.start();
    await new Promise((r) => setImmediate(r)); // the first flush: best paths chosen
    app = await buildAgentApi({ speaker: sp });
  });

  afterAll(async () => {
    await app.close();
    await sp.stop();
  });

  it('GET /api/v1/bgp/neighbors', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/bgp/neighbors' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.json()).toEqual([
      {
        address: '192.0.2.2',
        'peer-asn': 65002,
        description: 'pe1',
        state: 'active',
        'uptime-s': 0,
        'router-id': null,
        'afi-safis': {
          'ipv4-unicast': { received: 0, accepted: 0, advertised: 0 },
          'ipv6-unicast': { received: 0, accepted: 0, advertised: 0 },
        },
        'last-error': null,
        messages: { in: 0, out: 0, 'updates-in': 0, 'updates-out': 0 },
        flaps: 0,
      },
    ]);
  });

  it('GET one neighbour; 404 for an unknown one', async () => {
    const one = await app.inject({ method: 'GET', url: '/api/v1/bgp/neighbors/192.0.2.2' });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ address: '192.0.2.2', state: 'active' });
    const none = await app.inject({ method: 'GET', url: '/api/v1/bgp/neighbors/192.0.2.99' });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toEqual({ error: 'not-found', message: 'no neighbor 192.0.2.99' });
  });

  it('neighbour actions: 404 unknown, 409 not established, 400 bad action', async () => {
    const post = (addr: string, payload: object) =>
      app.inject({ method: 'POST', url: `/api/v1/bgp/neighbors/${addr}/actions`, payload });
    expect((await post('192.0.2.99', { action: 'soft-reset-in' })).statusCode).toBe(404);
    const conflict = await post('192.0.2.2', { action: 'soft-reset-in' });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json<ErrorBody>().message).toMatch(/not established/);
    const bad = await post('192.0.2.2', { action: 'explode' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<ErrorBody>().error).toBe('bad-request');
  });

  it('GET /api/v1/bgp/rib/ipv4-unicast lists routes sorted, with the reason', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/bgp/rib/ipv4-unicast' });
    expect(res.statusCode).toBe(200);
    const body = res.json<Route[]>();
    expect(body.map((r) => r.prefix)).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
    expect(body[0]!.paths).toEqual([
      {
        best: true,
        reason: 'only-path',
        'next-hop': '0.0.0.0',
        'as-path': '',
        origin: 'igp',
        med: null,
        'local-pref': null,
        communities: [],
        'large-communities': [],
        'ext-communities': [],
        from: 'local',
        'path-id': 0,
        stale: false,
      },
    ]);
  });

  it('?prefix= narrows to one prefix (host bits are masked); unknown prefix gives []', async () => {
    const get = (q: string) => app.inject({ method: 'GET', url: `/api/v1/bgp/rib/${q}` });
    const one = await get('ipv4-unicast?prefix=10.2.0.0/16');
    expect(one.statusCode).toBe(200);
    expect(one.json<Route[]>().map((r) => r.prefix)).toEqual(['10.2.0.0/16']);
    expect((await get('ipv4-unicast?prefix=10.2.3.4/16')).json()).toHaveLength(1);
    expect((await get('ipv4-unicast?prefix=10.2.0.0/24')).json()).toEqual([]);
    const v6 = await get(`ipv6-unicast?prefix=${encodeURIComponent('2001:db8::/32')}`);
    expect(v6.json<Route[]>().map((r) => r.prefix)).toEqual(['2001:db8::/32']);
  });

  it('400 on a bad prefix or a prefix of the other family; 400 on an unknown family', async () => {
    const get = (q: string) => app.inject({ method: 'GET', url: `/api/v1/bgp/rib/${q}` });
    for (const q of [
      'ipv4-unicast?prefix=10.1.0.0',
      'ipv4-unicast?prefix=banana/8',
      'ipv4-unicast?prefix=10.0.0.0/40',
    ]) {
      const res = await get(q);
      expect(res.statusCode, q).toBe(400);
      expect(res.json()).toMatchObject({ error: 'bad-request', message: expect.stringMatching(/^prefix: /) });
    }
    const other = await get(`ipv4-unicast?prefix=${encodeURIComponent('2001:db8::/32')}`);
    expect(other.statusCode).toBe(400);
    expect(other.json<ErrorBody>().message).toMatch(/not of family ipv4-unicast/);
    const fam = await get('ipv4-multicast');
    expect(fam.statusCode).toBe(400);
    expect(fam.json<ErrorBody>().error).toBe('bad-request');
  });

  it('/metrics is Prometheus text with vce_bgp_neighbor_up', async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toContain('# TYPE vce_bgp_neighbor_up gauge');
    expect(res.body).toContain('vce_bgp_neighbor_up{vrf="default",neighbor="192.0.2.2",peer_asn="65002"} 0');
    expect(res.body).toContain('vce_bgp_loc_rib_routes{vrf="default",afi_safi="ipv4-unicast"} 2');
    expect(res.body).toContain(
      'vce_bgp_prefixes{vrf="default",neighbor="192.0.2.2",afi_safi="ipv4-unicast",kind="received"} 0',
    );
  });

  it('/api/v1/openapi.json is an OpenAPI 3 document with the paths', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<OpenApiDoc>();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('vce agent API');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/bgp/neighbors',
        '/api/v1/bgp/neighbors/{address}',
        '/api/v1/bgp/neighbors/{address}/actions',
        '/api/v1/bgp/rib/{afiSafi}',
        '/api/v1/bgp/rib/dump',
      ]),
    );
    expect(doc.paths).not.toHaveProperty('/api/v1/openapi.json');
    expect(doc.paths['/api/v1/bgp/rib/{afiSafi}']?.get?.responses).toHaveProperty('400');
  });
});

describe('startAgent', () => {
  it('starts the speaker and the API on ephemeral ports and stops both', async () => {
    const cfg = buildAgentConfig(variant((c) => (c.api = { listen: '127.0.0.1:0' })));
    const agent = await startAgent(cfg, pino({ level: 'silent' }));
    try {
      expect(agent.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(agent.speaker.listenPort).toBeGreaterThan(0);
      const res = await fetch(`${agent.apiUrl!}/api/v1/bgp/neighbors`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as unknown[]).length).toBe(1);
    } finally {
      await agent.stop();
    }
  });
});

// ---------------------------------------------------------------------------------- binary

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `vce agent --config <file>`; `onStdout` may act on the running process (e.g. kill it). */
function runAgent(
  file: string,
  onStdout?: (text: string, kill: () => void) => void,
  timeoutMs = 20_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/vce.js'), 'agent', '--config', file], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vce agent did not finish in ${timeoutMs} ms; stdout ${stdout} stderr ${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      onStdout?.(stdout, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('vce agent binary', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vce-agent-test-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an invalid configuration exits 2 naming the field; a missing file too', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      [
        'router-id: 192.0.2.1',
        'bgp:',
        '  asn: 65001',
        '  neighbors:',
        '    - address: 192.0.2.2',
        '      peer-asn: 65002',
        '      hold-time: 2',
        '',
      ].join('\n'),
    );
    const [r, missing] = await Promise.all([runAgent(bad), runAgent(path.join(dir, 'nope.yaml'))]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('vce agent: invalid configuration: bgp.neighbors[0].hold-time: ');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/invalid configuration: .*nope\.yaml/);
  });

  it('a valid configuration listens, serves the API, and exits 0 on SIGTERM', async () => {
    const good = path.join(dir, 'good.yaml');
    writeFileSync(
      good,
      [
        'router-id: 192.0.2.1',
        'api:',
        '  listen: 127.0.0.1:0',
        'bgp:',
        '  asn: 65001',
        '  listen: { address: 127.0.0.1, port: 0 }',
        '  neighbors:',
        '    - { address: 192.0.2.2, peer-asn: 65002, passive: true, import-policy: accept-all, export-policy: accept-all }',
        '  networks: [10.1.0.0/16]',
        '',
      ].join('\n'),
    );
    const seen: { started?: { api: string; bgpPort: number }; checked?: Promise<void> } = {};
    const r = await runAgent(good, (text, kill) => {
      if (seen.started !== undefined) return;
      const line = text.split('\n').find((l) => l.includes('"vce agent started"'));
      if (line === undefined) return;
      const s = JSON.parse(line) as { api: string; bgpPort: number };
      seen.started = s;
      // it really listens: the API answers, then SIGTERM
      seen.checked = fetch(`${s.api}/api/v1/bgp/neighbors`)
        .then(async (res) => {
          expect(res.status).toBe(200);
          expect(await res.json()).toMatchObject([{ address: '192.0.2.2', state: 'active' }]);
        })
        .finally(kill);
    });
    await seen.checked;
    expect(seen.started?.bgpPort).toBeGreaterThan(0);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });
});
