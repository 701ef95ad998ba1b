'use strict';
// The load test's function (deploy/bench/scenarios_api.sh): a JSON body of exactly 1024 bytes,
// the same bytes on every call, so a cached answer and a fresh one cannot be told apart by the
// body. The invocation count (one per host process) is sent in the X-Invocation header only,
// so the bench can check how often a cache in front called the function.
const SIZE = 1024;

// Built once when the module loads: an item record, padded to SIZE bytes.
function buildBody() {
  const item = {
    id: 'item-0001',
    name: 'Portico load-test item',
    description: 'A deterministic JSON answer of one KiB for the API stage cache benchmark.',
    price: { amount: 1999, currency: 'EUR' },
    tags: ['bench', 'api', 'cache', 'json'],
    dimensions: { width_mm: 210, height_mm: 297, depth_mm: 12, weight_g: 450 },
    updated: '2024-01-01T00:00:00Z',
    pad: '',
  };
  const bare = JSON.stringify(item).length;
  if (bare > SIZE) throw new Error(`json1k: the record alone is ${bare} bytes`);
  item.pad = 'x'.repeat(SIZE - bare);
  const body = JSON.stringify(item);
  if (Buffer.byteLength(body) !== SIZE) throw new Error('json1k: body is not 1024 bytes');
  return body;
}

const BODY = buildBody();
let invocations = 0;

exports.handler = async () => {
  invocations += 1;
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json', 'X-Invocation': String(invocations) },
    body: BODY,
  };
};
