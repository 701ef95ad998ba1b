'use strict';
// Answers with the status code named by the path parameter {code} (100..599, else 400) and a
// body carrying the invocation count n, so a caller can tell whether an error answer (500, 429)
// was served from a cache.
let invocations = 0;

exports.handler = async (event) => {
  invocations += 1;
  const n = invocations;
  const code = Number(((event.pathParameters || {}).code) || '200');
  const statusCode = Number.isInteger(code) && code >= 100 && code <= 599 ? code : 400;
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json', 'X-Invocation': String(n) },
    body: JSON.stringify({ fn: 'status', n, code: statusCode }),
  };
};
