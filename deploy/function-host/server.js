#!/usr/bin/env node
// function-host: a small AWS Lambda Invoke API server for Portico's `lambda` origins.
//
//   node deploy/function-host/server.js --port 9001 [--host 127.0.0.1] [--functions DIR]
//
// Route: POST /2015-03-31/functions/{name}/invocations with a JSON event as the body. The
// function is the module functions/{name}.js (name matches ^[A-Za-z0-9_-]+$) exporting
// `async handler(event, context)`. Answers as AWS Lambda does for a RequestResponse invoke:
//   - 200 + the handler's result as JSON;
//   - 200 + X-Amz-Function-Error: Unhandled + {"errorMessage","errorType","trace"} when the
//     handler throws (or rejects);
//   - 404 ResourceNotFoundException for an unknown function, 400 for an invalid event,
//     413 RequestTooLargeException for a payload over 6 MiB.
// A handler may return {[Symbol.for('function-host.raw')]: "text"} to have "text" written
// verbatim (a non-JSON answer, to test how callers cope with a broken function).
//
// HTTP interface (API Gateway's Lambda proxy integration, without Portico): a request whose
// path starts with /http/{name}/ (or is /http/{name}) becomes an API Gateway proxy event v1.0
// for functions/{name}.js, `path` being the rest after /http/{name}, and the handler's
// {statusCode, headers, multiValueHeaders, body, isBase64Encoded} becomes the HTTP answer (see
// the HTTP interface section below and README.md). deploy/bench.sh puts nginx in front of it.
//
// Standard library only. Prints exactly one line on stdout when ready:
//   function-host listening on http://HOST:PORT
// Everything else (handler errors) goes to stderr. SIGTERM / SIGINT: stop accepting, let
// in-flight invocations finish (at most 5 s), exit 0.
'use strict';

const http = require('node:http');
const path = require('node:path');
const fs = require('node:fs');
const crypto = require('node:crypto');

const MAX_PAYLOAD = 6 * 1024 * 1024;  // Lambda's synchronous invocation payload limit
const NAME_RE = /^[A-Za-z0-9_-]+$/;
const ROUTE_RE = /^\/2015-03-31\/functions\/([^/?]+)\/invocations(?:\?.*)?$/;
const RAW = Symbol.for('function-host.raw');
const DRAIN_MS = 5000;
let stopping = false;  // set on SIGTERM/SIGINT: answers then close their connection


// Reads a request body of at most MAX_PAYLOAD bytes, then calls onBody(buffer) once; past the
// limit (declared or received) calls tooLarge() once instead and ignores the rest.
function readBody(req, tooLarge, onBody) {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_PAYLOAD) return tooLarge();
  const chunks = [];
  let size = 0;
  let aborted = false;
  req.on('data', (chunk) => {
    if (aborted) return;
    size += chunk.length;
    if (size > MAX_PAYLOAD) {
      aborted = true;
      chunks.length = 0;
      tooLarge();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (!aborted) onBody(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  });
}

function usage(msg) {
  if (msg) process.stderr.write(`function-host: ${msg}\n`);
  process.stderr.write('usage: node server.js --port PORT [--host HOST] [--functions DIR]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: null, host: '127.0.0.1', functions: path.join(__dirname, 'functions') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--port') opts.port = next();
    else if (arg === '--host') opts.host = next();
    else if (arg === '--functions') opts.functions = path.resolve(next());
    else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown argument ${arg}`);
  }
  if (opts.port === null) usage('--port is required');
  if (!/^\d+$/.test(opts.port) || Number(opts.port) > 65535) usage(`invalid port ${opts.port}`);
  opts.port = Number(opts.port);
  return opts;
}

// Sends a JSON (or raw) body with the headers Lambda puts on every answer.
function send(res, status, body, extraHeaders = {}) {
  if (res.headersSent || res.destroyed) return;
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': payload.length,
    'x-amzn-RequestId': res.requestId,
    ...(stopping ? { Connection: 'close' } : {}),
    ...extraHeaders,
  });
  res.end(payload);
}

function sendError(res, status, type, message, extra = {}) {
  send(res, status, JSON.stringify({ Type: 'User', message }),
       { 'x-amzn-ErrorType': type, ...extra });
}

// Loads (once) and returns the function module, or null when there is no such function.
const modules = new Map();
function loadFunction(dir, name) {
  if (modules.has(name)) return modules.get(name);
  const file = path.join(dir, `${name}.js`);
  if (!fs.existsSync(file)) return null;
  const mod = require(file);
  if (typeof mod.handler !== 'function') throw new Error(`${file} exports no handler()`);
  modules.set(name, mod);
  return mod;
}

function makeContext(name, requestId, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  return {
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
    memoryLimitInMB: '128',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'function-host',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

// Encodes a handler result the way the Lambda runtime does: JSON, `undefined` -> null.
function encodeResult(result) {
  if (result !== null && typeof result === 'object' && typeof result[RAW] === 'string') {
    return result[RAW];
  }
  const json = JSON.stringify(result === undefined ? null : result);
  return json === undefined ? 'null' : json;
}

async function invoke(opts, name, rawBody, res) {
  let mod;
  try {
    mod = loadFunction(opts.functions, name);
  } catch (err) {
    process.stderr.write(`function-host: cannot load ${name}: ${err.stack || err}\n`);
    return send(res, 502, JSON.stringify({ Type: 'Service', message: `Cannot load ${name}` }),
                { 'x-amzn-ErrorType': 'ServiceException' });
  }
  if (!mod) {
    return sendError(res, 404, 'ResourceNotFoundException',
      `Function not found: arn:aws:lambda:us-east-1:000000000000:function:${name}`);
  }
  let event = {};
  const text = rawBody.toString('utf8');
  if (text.trim() !== '') {
    try {
      event = JSON.parse(text);
    } catch (err) {
      return sendError(res, 400, 'InvalidRequestContentException',
        `Could not parse request body into json: ${err.message}`);
    }
  }
  const context = makeContext(name, res.requestId, 30000);
  let result;
  try {
    result = await mod.handler(event, context);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`function-host: ${name} failed: ${e.name}: ${e.message}\n`);
    const body = {
      errorType: e.name || 'Error',
      errorMessage: e.message,
      trace: String(e.stack || '').split('\n'),
    };
    return send(res, 200, JSON.stringify(body), { 'X-Amz-Function-Error': 'Unhandled' });
  }
  send(res, 200, encodeResult(result), { 'X-Amz-Executed-Version': '$LATEST' });
}

function handle(opts, req, res) {
  res.requestId = crypto.randomUUID();
  if (HTTP_PREFIX_RE.test(req.url)) return handleHttp(opts, req, res);
  const m = ROUTE_RE.exec(req.url);
  if (!m) {
    return sendError(res, 404, 'UnknownOperationException', `Unknown operation ${req.method} ${req.url}`);
  }
  if (req.method !== 'POST') {
    return sendError(res, 405, 'MethodNotAllowedException', `Method ${req.method} not allowed`,
                     { Allow: 'POST' });
  }
  let name;
  try {
    name = decodeURIComponent(m[1]);
  } catch (err) {
    name = '';
  }
  if (!NAME_RE.test(name)) {
    return sendError(res, 400, 'ValidationException',
      `1 validation error detected: Value '${m[1]}' at 'functionName' failed to satisfy constraint`);
  }
  const tooLarge = () => {
    // We stop reading: the connection cannot be reused, so close it after the answer.
    sendError(res, 413, 'RequestTooLargeException',
      `Request must be smaller than ${MAX_PAYLOAD} bytes for the InvokeFunction operation`,
      { Connection: 'close' });
  };
  readBody(req, tooLarge, (body) => {
    invoke(opts, name, body, res).catch((err) => {
      process.stderr.write(`function-host: internal error: ${err.stack || err}\n`);
      send(res, 500, JSON.stringify({ Type: 'Service', message: 'Internal error' }),
           { 'x-amzn-ErrorType': 'ServiceException' });
    });
  });
  req.on('error', () => {});
}

// ---- HTTP interface: API Gateway's Lambda proxy integration, without a gateway ---------------
//
// /http/{name}{path}?{query} -> handler(event v1.0) -> HTTP answer. The resource is the greedy
// "/{proxy+}" (pathParameters.proxy = path without its leading '/'), or "/" for the root, as an
// API Gateway REST API with a single proxy resource would send. The answer is mapped the way
// Portico's lambda origin maps it (origin/lambda_origin.cc): multiValueHeaders, then headers
// (a pair already present is not repeated), hop-by-hop fields and Content-Length dropped,
// base64 bodies decoded; a malformed result or a handler that throws is API Gateway's
// 502 {"message":"Internal server error"}, a handler still running after 29 s its 504.

const HTTP_PREFIX_RE = /^\/http\/[^/?]*(?:[/?]|$)/;
const HTTP_ROUTE_RE = /^\/http\/([^/?]*)([^?]*)(?:\?(.*))?$/;
const HTTP_TIMEOUT_MS = 29000;  // API Gateway's integration timeout
const TIMED_OUT = Symbol('timed out');
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding',
                            'te', 'trailer', 'upgrade', 'content-length']);
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;  // what node accepts in a header value
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const isUtf8 = require('node:buffer').isUtf8 ||
  ((buf) => Buffer.from(buf.toString('utf8'), 'utf8').equals(buf));

// Decodes %XX byte sequences; anything else (a lone '%', '+') stays as it is, and bytes that do
// not form UTF-8 become U+FFFD (Portico's lambda origin does the same).
function percentDecode(s) {
  if (!s.includes('%')) return s;
  const hex = (b) => (b >= 0x30 && b <= 0x39 ? b - 0x30 : b >= 0x41 && b <= 0x46 ? b - 0x37
                      : b >= 0x61 && b <= 0x66 ? b - 0x57 : -1);
  const bytes = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const hi = i + 2 < bytes.length ? hex(bytes[i + 1]) : -1;
    const lo = hi >= 0 ? hex(bytes[i + 2]) : -1;
    if (bytes[i] === 0x25 && lo >= 0) {
      out[n++] = hi * 16 + lo;
      i += 2;
    } else {
      out[n++] = bytes[i];
    }
  }
  return out.toString('utf8', 0, n);
}

// [{name: last value}, {name: [values]}] in first-seen order, or [null, null] when there are
// none (as API Gateway sends). Plain own properties, so a "__proto__" field stays a field.
function groupsToEvent(pairs, caseInsensitive) {
  const groups = new Map();  // key (lower-cased if caseInsensitive) -> [name as first seen, values]
  for (const [name, value] of pairs) {
    const key = caseInsensitive ? name.toLowerCase() : name;
    const g = groups.get(key);
    if (g) g[1].push(value);
    else groups.set(key, [name, [value]]);
  }
  if (groups.size === 0) return [null, null];
  const single = [];
  const multi = [];
  for (const [name, values] of groups.values()) {
    single.push([name, values[values.length - 1]]);
    multi.push([name, values]);
  }
  return [Object.fromEntries(single), Object.fromEntries(multi)];
}

function headerPairs(raw) {
  const pairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i], raw[i + 1]]);
  return pairs;
}

function queryPairs(query) {
  const pairs = [];
  for (const part of (query || '').split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    pairs.push(eq < 0 ? [percentDecode(part), ''] : [percentDecode(part.slice(0, eq)),
                                                      percentDecode(part.slice(eq + 1))]);
  }
  return pairs;
}

function buildHttpEvent(req, name, pathPart, query, rawBody) {
  const path = pathPart === '' ? '/' : percentDecode(pathPart);
  const resource = path === '/' ? '/' : '/{proxy+}';
  const [headers, multiValueHeaders] = groupsToEvent(headerPairs(req.rawHeaders), true);
  const [queryStringParameters, multiValueQueryStringParameters] =
      groupsToEvent(queryPairs(query), false);
  const text = rawBody.length > 0 && isUtf8(rawBody);
  return {
    resource,
    path,
    httpMethod: req.method,
    headers,
    multiValueHeaders,
    queryStringParameters,
    multiValueQueryStringParameters,
    pathParameters: path === '/' ? null : { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      resourcePath: resource,
      httpMethod: req.method,
      path: `/http/${name}${path === '/' ? '' : path}`,
      stage: 'http',
      requestId: req.requestId,
      requestTimeEpoch: Date.now(),
      identity: { sourceIp: req.socket.remoteAddress || '' },
      protocol: `HTTP/${req.httpVersion}`,
      accountId: '000000000000',
      apiId: 'function-host',
      domainName: req.headers.host || '',
    },
    body: rawBody.length === 0 ? null : text ? rawBody.toString('utf8') : rawBody.toString('base64'),
    isBase64Encoded: rawBody.length > 0 && !text,
  };
}

// The handler's result -> {status, headers: [[name, value]...], body: Buffer}, or {error}.
function mapProxyResult(result) {
  const bad = (error) => ({ error });
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return bad('not a JSON object');
  if (typeof result[RAW] === 'string') return bad('not JSON');
  const status = result.statusCode;
  if (!Number.isInteger(status)) return bad('statusCode missing or not an integer');
  if (status < 100 || status > 599) return bad('statusCode out of range');
  const headers = [];
  const isObject = (v) => typeof v === 'object' && !Array.isArray(v);
  const mv = result.multiValueHeaders;
  if (mv !== undefined && mv !== null) {
    if (!isObject(mv)) return bad('multiValueHeaders is not an object');
    for (const [name, values] of Object.entries(mv)) {
      if (!Array.isArray(values)) return bad('multiValueHeaders value is not an array');
      if (!TOKEN_RE.test(name)) return bad('bad header name');
      for (const v of values) {
        if (typeof v !== 'string' || !FIELD_VALUE_RE.test(v)) return bad('bad multiValueHeaders value');
        headers.push([name, v]);
      }
    }
  }
  const hs = result.headers;
  if (hs !== undefined && hs !== null) {
    if (!isObject(hs)) return bad('headers is not an object');
    for (const [name, v] of Object.entries(hs)) {
      if (!TOKEN_RE.test(name)) return bad('bad header name');
      if (typeof v !== 'string' || !FIELD_VALUE_RE.test(v)) return bad('bad headers value');
      const lower = name.toLowerCase();
      // API Gateway merges both; a pair present in multiValueHeaders is not repeated.
      if (!headers.some(([n, e]) => e === v && n.toLowerCase() === lower)) headers.push([name, v]);
    }
  }
  const kept = headers.filter(([n]) => !HOP_BY_HOP.has(n.toLowerCase()));
  const b64 = result.isBase64Encoded;
  if (b64 !== undefined && b64 !== null && typeof b64 !== 'boolean') {
    return bad('isBase64Encoded is not a boolean');
  }
  let body = Buffer.alloc(0);
  if (result.body !== undefined && result.body !== null) {
    if (typeof result.body !== 'string') return bad('body is not a string');
    if (b64) {
      if (!BASE64_RE.test(result.body)) return bad('body is not valid base64');
      body = Buffer.from(result.body, 'base64');
    } else {
      body = Buffer.from(result.body, 'utf8');
    }
  }
  if (body.length > MAX_PAYLOAD) return bad('body over the 6 MiB response limit');
  return { status, headers: kept, body };
}

// API Gateway's own answers ({"message": ...}, as Portico's API stages send them).
function sendApiError(res, status, message, errorType, extra = {}) {
  send(res, status, JSON.stringify({ message }),
       { ...(errorType ? { 'x-amzn-ErrorType': errorType } : {}), ...extra });
}

function sendMapped(req, res, mapped) {
  if (res.headersSent || res.destroyed) return;
  const flat = [];
  let hasType = false;
  for (const [name, value] of mapped.headers) {
    hasType = hasType || name.toLowerCase() === 'content-type';
    flat.push(name, value);
  }
  if (!hasType) flat.push('Content-Type', 'application/json');  // API Gateway's default
  flat.push('x-amzn-RequestId', res.requestId);
  const noBody = mapped.status === 204 || mapped.status === 304 || (mapped.status >= 100 && mapped.status < 200);
  if (!noBody) flat.push('Content-Length', String(mapped.body.length));
  if (stopping) flat.push('Connection', 'close');
  res.writeHead(mapped.status, flat);
  res.end(noBody || req.method === 'HEAD' ? undefined : mapped.body);
}

async function invokeHttp(opts, name, req, res, pathPart, query, rawBody) {
  let mod;
  try {
    mod = loadFunction(opts.functions, name);
  } catch (err) {
    process.stderr.write(`function-host: cannot load ${name}: ${err.stack || err}\n`);
    return sendApiError(res, 502, 'Internal server error', '');
  }
  if (!mod) return sendApiError(res, 404, `Function not found: ${name}`, 'NotFoundException');
  req.requestId = res.requestId;
  const event = buildHttpEvent(req, name, pathPart, query, rawBody);
  const context = makeContext(name, res.requestId, HTTP_TIMEOUT_MS);
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, HTTP_TIMEOUT_MS, TIMED_OUT); });
  let result;
  try {
    result = await Promise.race([Promise.resolve().then(() => mod.handler(event, context)), timeout]);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    process.stderr.write(`function-host: ${name} failed: ${e.name}: ${e.message}\n`);
    return sendApiError(res, 502, 'Internal server error', '');
  } finally {
    clearTimeout(timer);
  }
  if (result === TIMED_OUT) return sendApiError(res, 504, 'Endpoint request timed out', '');
  const mapped = mapProxyResult(result);
  if (mapped.error) {
    process.stderr.write(`function-host: ${name}: malformed Lambda proxy response: ${mapped.error}\n`);
    return sendApiError(res, 502, 'Internal server error', '');
  }
  try {
    sendMapped(req, res, mapped);
  } catch (err) {  // a header node refuses despite the checks above
    process.stderr.write(`function-host: ${name}: cannot send the answer: ${err.message}\n`);
    if (!res.headersSent) sendApiError(res, 502, 'Internal server error', '');
    else res.destroy();
  }
}

function handleHttp(opts, req, res) {
  const m = HTTP_ROUTE_RE.exec(req.url);
  let name = '';
  try {
    name = m ? decodeURIComponent(m[1]) : '';
  } catch (err) {
    name = '';
  }
  if (!NAME_RE.test(name)) {
    return sendApiError(res, 400, `Invalid function name in ${req.url.split('?')[0]}`, 'BadRequestException');
  }
  const tooLarge = () => sendApiError(res, 413, 'Request Too Long', 'RequestTooLargeException',
                                      { Connection: 'close' });
  readBody(req, tooLarge, (body) => {
    invokeHttp(opts, name, req, res, m[2], m[3], body).catch((err) => {
      process.stderr.write(`function-host: internal error: ${err.stack || err}\n`);
      sendApiError(res, 500, 'Internal server error', '');
    });
  });
  req.on('error', () => {});
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const server = http.createServer({ keepAlive: true }, (req, res) => handle(opts, req, res));
  // Answer `Expect: 100-continue` ourselves so an oversized payload is refused before the
  // client sends it (node would otherwise send 100 Continue unconditionally).
  server.on('checkContinue', (req, res) => {
    const declared = req.headers['content-length'];
    if (declared === undefined || Number(declared) <= MAX_PAYLOAD) res.writeContinue();
    handle(opts, req, res);
  });
  // Callers (Portico's curl pool) keep connections open between invocations: do not close
  // them sooner than a typical client-side idle limit, or a reused connection may race a close.
  server.keepAliveTimeout = 65000;
  server.headersTimeout = 66000;
  server.requestTimeout = 0;  // sleep may legitimately take up to 30 s
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, DRAIN_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  server.on('error', (err) => {
    process.stderr.write(`function-host: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const addr = server.address();
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    process.stdout.write(`function-host listening on http://${host}:${addr.port}\n`);
  });
}

main();
