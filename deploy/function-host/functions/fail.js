'use strict';
// Always throws: the host answers with X-Amz-Function-Error: Unhandled (a function error).
exports.handler = async () => {
  throw new Error('intentional failure');
};
