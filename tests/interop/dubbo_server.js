#!/usr/bin/env node
'use strict';
// A real Dubbo provider: sofa-rpc-node's RpcServer speaking Dubbo 2 through
// dubbo-remoting (hessian2), no registry. Prints `READY port=N ...` once
// listening; exits 0 on SIGTERM.

const common = require('./lib/common');
const { startServer, randomDelay } = require('./lib/rpc_server');

const USAGE = `usage: node dubbo_server.js [--host 127.0.0.1] [--port 0] [--service org.apache.dubbo.samples.DemoService]
                            [--version 1.0.0] [--name dubbo-1] [--max-delay-ms 0]
  Serves SERVICE version VERSION over Dubbo (hessian2) with methods
    sayHello(String name) -> "hello " + name
    whoami()              -> NAME (to tell several servers apart)
  The provider ignores the group attachment (sofa-rpc-node keys services by
  interface:version only), so any group reaches it.
  --port 0 (or env PORT) picks a free port; the READY line tells which.
  --max-delay-ms D delays every reply by a random 0..D ms.`;

const opts = common.parseArgs(process.argv.slice(2), {
  host: '127.0.0.1',
  port: Number(process.env.PORT || 0),
  service: 'org.apache.dubbo.samples.DemoService',
  version: '1.0.0',
  name: 'dubbo-' + process.pid,
  maxDelayMs: 0,
}, USAGE);
if (!common.isLoopback(opts.host)) common.usageError(USAGE, '--host must be a loopback address');

async function main() {
  const logger = common.quietLogger('dubbo_server');
  const server = await startServer({
    protocol: require('dubbo-remoting'),
    host: opts.host,
    port: opts.port,
    interfaceName: opts.service,
    version: opts.version,
    logger,
    methods: {
      async sayHello(name) {
        await randomDelay(opts.maxDelayMs);
        return 'hello ' + name;
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
    protocol: 'dubbo',
    service: opts.service + ':' + opts.version,
    name: opts.name,
    pid: process.pid,
  });
}

main().catch(err => {
  process.stderr.write('dubbo_server failed: ' + (err && err.stack || err) + '\n');
  process.exit(1);
});
