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
      return tooLarge();
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (aborted) return;
    invoke(opts, name, Buffer.concat(chunks), res).catch((err) => {
      process.stderr.write(`function-host: internal error: ${err.stack || err}\n`);
      send(res, 500, JSON.stringify({ Type: 'Service', message: 'Internal error' }),
           { 'x-amzn-ErrorType': 'ServiceException' });
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
