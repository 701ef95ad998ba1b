'use strict';
// Single- and multi-value response headers together, as API Gateway merges them.
exports.handler = async () => ({
  statusCode: 200,
  headers: { 'Content-Type': 'text/plain', 'X-Single': 'one' },
  multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'], 'X-Multi': ['x', 'y'] },
  body: 'multi',
  isBase64Encoded: false,
});
