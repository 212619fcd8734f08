'use strict';
// The bounded call loop with a real sofa-rpc-node RpcClient, direct address
// (no registry), over bolt (sofa-bolt-node) or Dubbo (dubbo-remoting).

const common = require('./common');

const PROTOCOLS = {
  bolt: {
    module: 'sofa-bolt-node',
    service: 'com.alipay.test.EchoService',
    version: '1.0',
    group: 'SOFA',
    // echo(s) -> s
    method: 'echo',
    expected: s => s,
  },
  dubbo: {
    module: 'dubbo-remoting',
    service: 'org.apache.dubbo.samples.DemoService',
    version: '1.0.0',
    group: '',
    // sayHello(name) -> "hello " + name
    method: 'sayHello',
    expected: s => 'hello ' + s,
  },
};

function usage(script, p) {
  return `usage: node ${script} --target 127.0.0.1:PORT [--calls 200] [--concurrency 8] [--timeout-ms 3000]
         [--deadline-ms 60000] [--max-len 64] [--charset ascii|unicode] [--mode echo|whoami]
         [--service ${p.service}] [--version ${p.version}] [--group ${JSON.stringify(p.group)}] [--method ${p.method}]
  Makes CALLS calls (CONCURRENCY at a time, each with a TIMEOUT_MS reply timeout)
  with random payloads and checks every reply against its request. Stops starting
  calls after DEADLINE_MS; the process ends by DEADLINE_MS + TIMEOUT_MS + 5 s.
  --mode whoami calls whoami() instead and counts the replies per server name.
  Prints one JSON line {ok, failed, mismatched, not_started, calls, elapsed_ms,
  errors: [first 5], by_reply?} and exits 0 only when every call was ok.`;
}

async function main(script, protocolName) {
  const p = PROTOCOLS[protocolName];
  const USAGE = usage(script, p);
  const opts = common.parseArgs(process.argv.slice(2), {
    target: '',
    calls: 200,
    concurrency: 8,
    timeoutMs: 3000,
    deadlineMs: 60000,
    maxLen: 64,
    charset: 'ascii',
    mode: 'echo',
    service: p.service,
    version: p.version,
    group: p.group,
    method: p.method,
  }, USAGE);
  const target = common.parseTarget(opts.target, USAGE);
  if (!(opts.calls >= 1 && opts.calls <= 10000000)) common.usageError(USAGE, '--calls must be 1..10000000');
  if (!(opts.concurrency >= 1 && opts.concurrency <= 10000)) common.usageError(USAGE, '--concurrency must be 1..10000');
  if (!(opts.timeoutMs >= 1)) common.usageError(USAGE, '--timeout-ms must be positive');
  if (!['ascii', 'unicode'].includes(opts.charset)) common.usageError(USAGE, '--charset must be ascii or unicode');
  if (!['echo', 'whoami'].includes(opts.mode)) common.usageError(USAGE, '--mode must be echo or whoami');
  common.hardDeadline(opts.deadlineMs + opts.timeoutMs + 5000, script);

  const { RpcClient } = require('sofa-rpc-node').client;
  const logger = common.quietLogger(script);
  const client = new RpcClient({ logger, protocol: require(p.module) });
  client.on('error', err => logger.warn('client error: %s', err && err.message));
  const consumer = client.createConsumer({
    interfaceName: opts.service,
    version: opts.version,
    group: opts.group,
    serverHost: `${target.host}:${target.port}`,
    responseTimeout: opts.timeoutMs,
  });
  await consumer.readyOrTimeout(opts.timeoutMs).catch(err => {
    throw new Error('consumer not ready: ' + err.message);
  });

  const byReply = {};
  const callOnce = async seq => {
    if (opts.mode === 'whoami') {
      const got = await consumer.invoke('whoami', [], { responseTimeout: opts.timeoutMs });
      const name = typeof got === 'string' && got.length > 0 ? got : null;
      return {
        expected: name === null ? 'a non-empty server name' : got,
        got,
        extra: () => { byReply[got] = (byReply[got] || 0) + 1; },
      };
    }
    const payload = common.randomPayload(seq, opts.maxLen, opts.charset);
    const got = await consumer.invoke(opts.method, [ payload ], { responseTimeout: opts.timeoutMs });
    return { expected: p.expected(payload), got };
  };
  const summary = await common.runCalls({
    calls: opts.calls,
    concurrency: opts.concurrency,
    deadlineMs: opts.deadlineMs,
    callOnce,
  });
  summary.protocol = protocolName;
  summary.library = 'sofa-rpc-node+' + p.module;
  if (opts.mode === 'whoami') summary.by_reply = byReply;
  await Promise.race([ client.close(), new Promise(resolve => setTimeout(resolve, 1000)) ]);
  common.finish(summary);
}

function run(script, protocolName) {
  main(script, protocolName).catch(err => {
    const summary = { ok: 0, failed: 0, mismatched: 0, calls: 0, setup_error: true, errors: [ Object.assign({ kind: 'setup' }, common.describeError(err)) ] };
    process.stdout.write(JSON.stringify(summary) + '\n');
    process.exit(1);
  });
}

module.exports = { run, PROTOCOLS };
