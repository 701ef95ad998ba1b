'use strict';
// Waits queryStringParameters.ms (0..30000) milliseconds, then answers 200.
const { setTimeout: delay } = require('node:timers/promises');

exports.handler = async (event) => {
  const query = event.queryStringParameters || {};
  const requested = Number.parseInt(query.ms || '0', 10);
  const ms = Number.isFinite(requested) ? Math.min(Math.max(requested, 0), 30000) : 0;
  await delay(ms);
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ slept_ms: ms }),
  };
};
