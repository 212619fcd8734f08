'use strict';
// A real sofa-rpc-node RpcServer (bolt via sofa-bolt-node, or Dubbo via
// dubbo-remoting) bound to a loopback address, with no registry.

const net = require('net');
const { RpcServer } = require('sofa-rpc-node').server;

/**
 * sofa-rpc-node's RpcServer always listens on every interface
 * (`server.listen(port)`); the tests must stay on loopback, so this subclass
 * repeats its `_startServer` with a host. Everything else is the library's.
 */
class LoopbackRpcServer extends RpcServer {
  constructor(options) {
    super(options);
    this._listenHost = options.listenHost;
  }

  _startServer(port) {
    const server = net.createServer();
    server.once('error', err => { this.emit('error', err); });
    server.on('connection', socket => { this._handleSocket(socket); });
    server.listen(port, this._listenHost, () => {
      const realPort = server.address().port;
      if (port === this.publishPort && port === 0) {
        this.publishPort = realPort;
      }
      this.logger.info('[RpcServer] server start on %s:%s', this._listenHost, realPort);
    });
    return server;
  }

  get boundPort() {
    return this._servers[0].address().port;
  }
}

/** Waits a random 0..maxMs (nothing when maxMs is 0). */
function randomDelay(maxMs) {
  if (!maxMs || maxMs <= 0) return Promise.resolve();
  const ms = Math.floor(Math.random() * (maxMs + 1));
  return new Promise(resolve => setTimeout(resolve, ms));
}

/**
 * Starts a server exposing one service and resolves to it once listening.
 *   protocol: the protocol module (require('sofa-bolt-node') or require('dubbo-remoting'))
 *   host, port: where to listen (port 0 = any free port; see `boundPort`)
 *   interfaceName, version: the service identity (id = interfaceName:version)
 *   methods: { name: async function }
 */
async function startServer({ protocol, host, port, interfaceName, version, methods, logger }) {
  const server = new LoopbackRpcServer({
    logger,
    protocol,
    port,
    listenHost: host,
    version,
    // graceful's kill timer would outlive a SIGTERM'd test server otherwise.
    killTimeout: 2000,
  });
  server.on('error', err => logger.warn('[server] %s', err && err.stack || err));
  server.addService({ interfaceName, version }, methods);
  await server.start();
  return server;
}

module.exports = { startServer, randomDelay, LoopbackRpcServer };
