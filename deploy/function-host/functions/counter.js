'use strict';
// Counts its own invocations (one count per function-host process) and answers with the count,
// so a caller can tell a cached answer (an n it has seen before) from a fresh invocation (a new
// n). The count is also sent as the X-Invocation header, for HEAD requests.
let invocations = 0;

exports.handler = async (event) => {
  invocations += 1;
  const n = invocations;
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json', 'X-Invocation': String(n) },
    body: JSON.stringify({
      fn: 'counter',
      n,
      method: event.httpMethod,
      path: event.path,
      stage: (event.requestContext || {}).stage,
      query: event.queryStringParameters,
      stageVariables: event.stageVariables,
    }),
  };
};
