// A real OpenID Connect provider for lhs-rounds' tests (tests/api/oidc.rs) and scripts/bench-oidc:
// `oauth2-mock-server` (npm) serves the discovery document and the JWKS and signs the tokens;
// this script only adds what a test needs to steer it from outside (a control API on a second
// port). Install it with `npm ci` in this folder (scripts/test and .ci/run do).
//
//   node server.mjs [--port 0] [--control-port 0] [--alg RS256] [--realm-path /realms/hospital]
//
// Port 0 lets the system choose. Once both listen, one JSON line goes to stdout:
//   {"issuer":"http://127.0.0.1:P/realms/hospital","control":"http://127.0.0.1:C","kid":"..."}
// The process ends when its standard input closes, so a test that dies leaves nothing behind.
//
// Control API (JSON in, JSON out):
//   GET    /state                  issuer, kids, current kid, serving
//   POST   /keys {alg, kid?}       generate a key (RS256, PS256, ES256, ...) and sign with it from now on
//   DELETE /keys/<kid>             remove a key: it is no longer in the JWKS nor usable for signing
//   POST   /rotate {alg?}          a new key signs from now on, and the previous one is removed
//   GET    /public-pem/<kid>       the public key as SPKI PEM (for the HS256 key-confusion forgery)
//   POST   /mint {kid?, claims?, header?, exp_in?, nbf_in?}
//                                  a token signed by the provider; claims/header entries that are
//                                  null are removed (e.g. header {"kid": null}, claims {"exp": null})
//   GET    /stats, POST /stats/reset   counts of discovery and JWKS fetches
//   POST   /down, POST /up         stop and start serving the provider's port (an outage)
//   POST   /cache-control {value}  Cache-Control header of the JWKS answer (null: none)
//   POST   /delay {ms}             the provider answers only after ms (a hung provider)
//   POST   /signin-claims {claims} claims merged into the access tokens of the authorization
//                                  code flow (who signs in to the pages); null removes one

import http from 'node:http';
import crypto from 'node:crypto';
import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const HOST = '127.0.0.1';
const realmPath = option('realm-path', '/realms/hospital').replace(/\/$/, '');
let port = Number(option('port', '0'));
const controlPort = Number(option('control-port', '0'));
// Keycloak's own path for the JWKS, so that the settings exercised here read like Keycloak's.
const endpoints = { jwks: '/protocol/openid-connect/certs' };

let issuerUrl;
let issuer;
let service;
let currentKid;
let serving = false;
let cacheControl = null;
let delayMs = 0;
const stats = { discovery: 0, jwks: 0 };

// The package's key store can add keys but not remove them: removing one builds a new issuer
// and service holding the remaining (private) keys, so the key is really gone.
async function rebuild(privateKeys) {
  const next = new OAuth2Issuer();
  next.url = issuerUrl;
  for (const key of privateKeys) {
    await next.keys.add(key);
  }
  issuer = next;
  service = serviceOf(next);
}

// Who signs in through the authorization code flow (the pages' sign-in): the claims of the
// access tokens that flow's token request answers with (POST /signin-claims sets them).
let signinClaims = {};

function serviceOf(of) {
  const made = new OAuth2Service(of, endpoints);
  made.on('beforeTokenSigning', (token, req) => {
    // The access token only: the ID token of the same answer has the client as its audience.
    if (req.body?.grant_type === 'authorization_code' && token.payload.aud === undefined) {
      merge(token.payload, signinClaims);
    }
  });
  return made;
}

function publicJwk(kid) {
  return issuer.keys.toJSON(false).find((k) => k.kid === kid);
}

const provider = http.createServer((req, res) => {
  const handle = () => {
    const url = new URL(req.url, 'http://provider');
    // The issuer has a path, as Keycloak's does; the package serves from its root.
    if (!url.pathname.startsWith(`${realmPath}/`)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const inner = url.pathname.slice(realmPath.length);
    if (inner === '/.well-known/openid-configuration') stats.discovery += 1;
    if (inner === endpoints.jwks) {
      stats.jwks += 1;
      if (cacheControl !== null) res.setHeader('Cache-Control', cacheControl);
    }
    req.url = inner + url.search;
    service.requestHandler(req, res);
  };
  if (delayMs > 0) setTimeout(handle, delayMs);
  else handle();
});

function listen(server, p) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, HOST, () => {
      server.removeListener('error', reject);
      resolve(server.address().port);
    });
  });
}

async function up() {
  if (serving) return;
  port = await listen(provider, port);
  serving = true;
}

async function down() {
  if (!serving) return;
  await new Promise((resolve) => {
    provider.close(() => resolve());
    // Pooled keep-alive connections too: an outage refuses everything.
    provider.closeAllConnections();
  });
  serving = false;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => {
      data += chunk;
    });
    req.on('end', () => {
      try {
        resolve(data ? JSON.parse(data) : {});
      } catch (e) {
        reject(e);
      }
    });
    req.on('error', reject);
  });
}

function merge(target, changes) {
  for (const [name, value] of Object.entries(changes ?? {})) {
    // undefined is left out of the signed JSON: null in a request removes the entry.
    target[name] = value === null ? undefined : value;
  }
}

async function control(req, body) {
  const url = new URL(req.url, 'http://control');
  const path = url.pathname;
  const now = Math.floor(Date.now() / 1000);
  if (req.method === 'GET' && path === '/state') {
    return { issuer: issuerUrl, current: currentKid, serving, kids: issuer.keys.toJSON().map((k) => k.kid) };
  }
  if (req.method === 'POST' && path === '/keys') {
    const key = await issuer.keys.generate(body.alg ?? 'RS256', body.kid ? { kid: body.kid } : undefined);
    currentKid = key.kid;
    return { kid: key.kid, alg: key.alg };
  }
  if (req.method === 'DELETE' && path.startsWith('/keys/')) {
    const kid = decodeURIComponent(path.slice('/keys/'.length));
    await rebuild(issuer.keys.toJSON(true).filter((k) => k.kid !== kid));
    return { removed: kid };
  }
  if (req.method === 'POST' && path === '/rotate') {
    const old = currentKid;
    const oldAlg = publicJwk(old)?.alg ?? 'RS256';
    const key = await issuer.keys.generate(body.alg ?? oldAlg);
    currentKid = key.kid;
    await rebuild(issuer.keys.toJSON(true).filter((k) => k.kid !== old));
    return { old, new: key.kid };
  }
  if (req.method === 'GET' && path.startsWith('/public-pem/')) {
    const jwk = publicJwk(decodeURIComponent(path.slice('/public-pem/'.length)));
    if (!jwk) throw new Error('no such key');
    const pem = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    return { pem, jwk };
  }
  if (req.method === 'POST' && path === '/mint') {
    const token = await issuer.buildToken({
      kid: body.kid ?? currentKid,
      expiresIn: body.exp_in ?? 3600,
      scopesOrTransform: (header, payload) => {
        if (body.nbf_in !== undefined) payload.nbf = now + body.nbf_in;
        merge(payload, body.claims);
        merge(header, body.header);
      },
    });
    return { token };
  }
  if (req.method === 'POST' && path === '/signin-claims') {
    signinClaims = body.claims ?? {};
    return { claims: signinClaims };
  }
  if (req.method === 'GET' && path === '/stats') return { ...stats };
  if (req.method === 'POST' && path === '/stats/reset') {
    stats.discovery = 0;
    stats.jwks = 0;
    return { ...stats };
  }
  if (req.method === 'POST' && path === '/down') {
    await down();
    return { serving };
  }
  if (req.method === 'POST' && path === '/up') {
    await up();
    return { serving };
  }
  if (req.method === 'POST' && path === '/cache-control') {
    cacheControl = body.value ?? null;
    return { cacheControl };
  }
  if (req.method === 'POST' && path === '/delay') {
    delayMs = Number(body.ms ?? 0);
    return { delayMs };
  }
  const error = new Error(`no control route ${req.method} ${path}`);
  error.status = 404;
  throw error;
}

const controller = http.createServer(async (req, res) => {
  try {
    const answer = await control(req, await readBody(req));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  } catch (e) {
    res.writeHead(e.status ?? 500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: String(e?.message ?? e) }));
  }
});

await up();
issuerUrl = `http://${HOST}:${port}${realmPath}`;
await rebuild([]);
const first = await issuer.keys.generate(option('alg', 'RS256'));
currentKid = first.kid;
const controlAt = await listen(controller, controlPort);
process.stdout.write(`${JSON.stringify({ issuer: issuerUrl, control: `http://${HOST}:${controlAt}`, kid: currentKid })}\n`);

process.stdin.on('close', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
