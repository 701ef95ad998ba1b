'use strict';
// Returns the received event as the JSON body, so tests can assert the event's shape.
// Query `status=NNN` sets the status code; `header_NAME=value` sets response header NAME.
exports.handler = async (event) => {
  const query = event.queryStringParameters || {};
  const headers = { 'Content-Type': 'application/json' };
  let statusCode = 200;
  for (const [key, value] of Object.entries(query)) {
    if (key === 'status') {
      const n = Number(value);
      if (Number.isInteger(n) && n >= 100 && n <= 599) statusCode = n;
    } else if (key.startsWith('header_') && key.length > 'header_'.length) {
      headers[key.slice('header_'.length)] = value;
    }
  }
  return { statusCode, headers, body: JSON.stringify(event) };
};
