'use strict';
// The demo function: greets {name} with the stage variable `greeting` (default "hello").
exports.handler = async (event) => {
  const vars = event.stageVariables || {};
  const params = event.pathParameters || {};
  const ctx = event.requestContext || {};
  return {
    statusCode: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      message: `${vars.greeting || 'hello'}, ${params.name}`,
      stage: ctx.stage,
      method: event.httpMethod,
    }),
  };
};
