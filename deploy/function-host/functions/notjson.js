'use strict';
// The host writes this string verbatim: an answer that is not JSON at all.
exports.handler = async () => ({ [Symbol.for('function-host.raw')]: 'this is not json {' });
