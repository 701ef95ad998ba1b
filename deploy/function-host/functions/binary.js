'use strict';
// A 1x1 PNG, base64-encoded with isBase64Encoded: true (API Gateway decodes it).
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

exports.handler = async () => ({
  statusCode: 200,
  headers: { 'Content-Type': 'image/png' },
  body: PNG,
  isBase64Encoded: true,
});
