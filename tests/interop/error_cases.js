#!/usr/bin/env node
'use strict';
// Sends a few calls that must fail and prints, one JSON line per case, the
// error the real client library reports. Through the gateway these are the
// "no route" cases (bolt status 6 / Dubbo status 60 with a message); straight
// to bolt_server.js / dubbo_server.js they show the provider's own errors.
// Exit 0 when every case failed with an error (what is expected), 1 otherwise.

const common = require('./lib/common');
const { PROTOCOLS } = require('./lib/rpc_client');

const USAGE = `usage: node error_cases.js --protocol bolt|dubbo --target 127.0.0.1:PORT
                           [--case all|unknown-service|unknown-version|unknown-method] [--timeout-ms 3000]
  Prints one JSON line per case:
    {"case", "protocol", "library", "service", "method", "outcome": "error"|"ok",
     "name", "message", "resultCode"?, "elapsed_ms"}`;

const opts = common.parseArgs(process.argv.slice(2), {
  protocol: '',
  target: '',
  case: 'all',
  timeoutMs: 3000,
}, USAGE);
if (!PROTOCOLS[opts.protocol]) common.usageError(USAGE, '--protocol must be bolt or dubbo');
const target = common.parseTarget(opts.target, USAGE);
const p = PROTOCOLS[opts.protocol];

const CASES = {
  'unknown-service': { service: 'com.meshgate.test.NoSuchService', version: p.version, method: p.method },
  'unknown-version': { service: p.service, version: '9.9.9', method: p.method },
  'unknown-method': { service: p.service, version: p.version, method: 'noSuchMethod' },
};
const names = opts.case === 'all' ? Object.keys(CASES) : [ opts.case ];
for (const n of names) if (!CASES[n]) common.usageError(USAGE, 'unknown --case ' + n);
common.hardDeadline((opts.timeoutMs + 1000) * names.length + 5000, 'error_cases.js');

async function main() {
  const { RpcClient } = require('sofa-rpc-node').client;
  const logger = common.quietLogger('error_cases');
  const client = new RpcClient({ logger, protocol: require(p.module) });
  client.on('error', err => logger.warn('client error: %s', err && err.message));
  let allFailed = true;
  for (const name of names) {
    const c = CASES[name];
    const consumer = client.createConsumer({
      interfaceName: c.service,
      version: c.version,
      group: p.group,
      serverHost: `${target.host}:${target.port}`,
      responseTimeout: opts.timeoutMs,
    });
    const line = { case: name, protocol: opts.protocol, library: 'sofa-rpc-node+' + p.module, service: c.service + ':' + c.version, method: c.method };
    const start = Date.now();
    try {
      await consumer.readyOrTimeout(opts.timeoutMs);
      const value = await consumer.invoke(c.method, [ 'probe' ], { responseTimeout: opts.timeoutMs });
      Object.assign(line, { outcome: 'ok', value });
      allFailed = false;
    } catch (err) {
      Object.assign(line, { outcome: 'error' }, common.describeError(err));
    }
    line.elapsed_ms = Date.now() - start;
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  await Promise.race([ client.close(), new Promise(resolve => setTimeout(resolve, 1000)) ]);
  process.exit(allFailed ? 0 : 1);
}

main().catch(err => {
  process.stderr.write('error_cases failed: ' + (err && err.stack || err) + '\n');
  process.exit(2);
});
