'use strict';
// The example conf's `GET /bill/{id}`: a bill whose amount is a pure function of (id, month),
// so a cached answer and a fresh one are indistinguishable.
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function currentMonth() {
  const now = new Date();
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
}

exports.handler = async (event) => {
  const id = (event.pathParameters || {}).id;
  if (id === undefined || id === '') {
    return { statusCode: 400, headers: { 'Content-Type': 'application/json' },
             body: JSON.stringify({ message: 'missing bill id' }) };
  }
  const query = event.queryStringParameters || {};
  const month = query.month || currentMonth();
  const amount = (fnv1a(`${id}/${month}`) % 100000) / 100;  // 0.00 .. 999.99
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id, month, amount }),
  };
};
