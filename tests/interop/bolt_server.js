#!/usr/bin/env node
'use strict';
// A real SOFARPC bolt server: sofa-rpc-node's RpcServer with sofa-bolt-node,
// no registry. Prints `READY port=N ...` once listening; exits 0 on SIGTERM.

const common = require('./lib/common');
const { startServer, randomDelay } = require('./lib/rpc_server');

const USAGE = `usage: node bolt_server.js [--host 127.0.0.1] [--port 0] [--service com.alipay.test.EchoService]
                           [--version 1.0] [--name bolt-1] [--max-delay-ms 0]
  Serves SERVICE:VERSION over bolt with methods
    echo(String) -> the same String
    whoami()     -> NAME (to tell several servers apart)
  --port 0 (or env PORT) picks a free port; the READY line tells which.
  --max-delay-ms D delays every reply by a random 0..D ms.`;

const opts = common.parseArgs(process.argv.slice(2), {
  host: '127.0.0.1',
  port: Number(process.env.PORT || 0),
  service: 'com.alipay.test.EchoService',
  version: '1.0',
  name: 'bolt-' + process.pid,
  maxDelayMs: 0,
}, USAGE);
if (!common.isLoopback(opts.host)) common.usageError(USAGE, '--host must be a loopback address');

async function main() {
  const logger = common.quietLogger('bolt_server');
  const server = await startServer({
    protocol: require('sofa-bolt-node'),
    host: opts.host,
    port: opts.port,
    interfaceName: opts.service,
    version: opts.version,
    logger,
    methods: {
      async echo(s) {
        await randomDelay(opts.maxDelayMs);
        return s;
      },
      async whoami() {
        await randomDelay(opts.maxDelayMs);
        return opts.name;
      },
    },
  });
  common.onTerminate(() => server.close());
  common.printReady({
    port: server.boundPort,
    protocol: 'bolt',
    service: opts.service + ':' + opts.version,
    name: opts.name,
    pid: process.pid,
  });
}

main().catch(err => {
  process.stderr.write('bolt_server failed: ' + (err && err.stack || err) + '\n');
  process.exit(1);
});
