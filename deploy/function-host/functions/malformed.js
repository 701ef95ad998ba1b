'use strict';
// A well-formed JSON answer that is not an API Gateway proxy response (no statusCode).
exports.handler = async () => ({ hello: 'world' });
