'use strict';
// Returns what the authorizer put in the event (requestContext.authorizer, whose `claims` are
// the verified JWT's claims) with the invocation count n.
let invocations = 0;

exports.handler = async (event) => {
  invocations += 1;
  const ctx = event.requestContext || {};
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json', 'X-Invocation': String(invocations) },
    body: JSON.stringify({ fn: 'claims', n: invocations, authorizer: ctx.authorizer === undefined ? null : ctx.authorizer }),
  };
};
