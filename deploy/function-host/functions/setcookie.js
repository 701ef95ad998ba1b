'use strict';
// A 200 that sets a cookie (session=<n>), with the invocation count n in the body: answers with
// Set-Cookie are not stored by an API stage cache unless its cache_set_cookie says so.
let invocations = 0;

exports.handler = async () => {
  invocations += 1;
  const n = invocations;
  return {
    statusCode: 200,
    headers: {
      'Content-Type': 'application/json',
      'Set-Cookie': `session=${n}; Path=/; HttpOnly`,
      'X-Invocation': String(n),
    },
    body: JSON.stringify({ fn: 'setcookie', n }),
  };
};
