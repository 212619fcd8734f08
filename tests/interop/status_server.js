#!/usr/bin/env node
'use strict';
// Stands in for the gateway's error replies: answers EVERY request with the
// given response status, encoded by the real library (sofa-bolt-node's or
// dubbo-remoting's own encoder), so tests and the README can record what each
// real client reports for "no route" (bolt 6 / Dubbo 60) and friends before
// the gateway exists. Prints `READY port=N ...`; exits 0 on SIGTERM.

const net = require('net');
const common = require('./lib/common');

const USAGE = `usage: node status_server.js --protocol bolt|dubbo --status N [--message TEXT] [--empty]
                            [--host 127.0.0.1] [--port 0]
  Answers every request with response status N (bolt: 0x0006 = NO_PROCESSOR ...;
  Dubbo: 60 = SERVICE_NOT_FOUND ...) and TEXT as the error message:
    bolt:  sofa-bolt-node responseEncode(id, {status: N, errorMsg: TEXT}) -> content is a
           hessian com.alipay.remoting.rpc.exception.RpcServerException
           --empty: the 20-byte v1 frame with no content (what MOSN sends, bolt.md §8)
    dubbo: dubbo-remoting Response(id){status: N, errorMsg: TEXT} -> body is one hessian string
  Heartbeats are acknowledged normally.`;

const opts = common.parseArgs(process.argv.slice(2), {
  protocol: '',
  status: -1,
  message: '',
  empty: false,
  host: '127.0.0.1',
  port: Number(process.env.PORT || 0),
}, USAGE);
if (!['bolt', 'dubbo'].includes(opts.protocol)) common.usageError(USAGE, '--protocol must be bolt or dubbo');
if (!(opts.status >= 0 && opts.status <= (opts.protocol === 'bolt' ? 0xffff : 0xff))) common.usageError(USAGE, '--status is required (bolt: u16, dubbo: u8)');
if (!common.isLoopback(opts.host)) common.usageError(USAGE, '--host must be a loopback address');

const logger = common.quietLogger('status_server');

function boltHandlers() {
  const protocol = require('sofa-bolt-node/lib/protocol');
  const codecCode = { hessian: 1, hessian2: 1, java: 2, protobuf: 11, json: 12 };
  return {
    decoder: () => require('sofa-bolt-node').decoder({ sentReqs: new Map(), classCache: new Map(), logger }),
    reply(req) {
      const codecType = req.options && req.options.codecType || 'hessian2';
      if (opts.empty) {
        // bolt v1 response, bolt.md §8: proto 1, type 0, cmd 2, ver2 1, id, codec, status, 0, 0, 0.
        const buf = Buffer.alloc(20);
        buf.writeUInt8(0x01, 0);
        buf.writeUInt8(0x00, 1);
        buf.writeUInt16BE(2, 2);
        buf.writeUInt8(0x01, 4);
        buf.writeUInt32BE(req.packetId >>> 0, 5);
        buf.writeUInt8(codecCode[codecType] || 1, 9);
        buf.writeUInt16BE(opts.status, 10);
        return buf;
      }
      const res = { status: opts.status, isError: true, errorMsg: opts.message || null, appResponse: null };
      return protocol.responseEncode(req.packetId, res, Object.assign({ protocolType: 'bolt', codecType }, req.options));
    },
    heartbeatAck(hb) {
      return protocol.heartbeatAckEncode(hb.packetId, Object.assign({ protocolType: 'bolt', codecType: 'hessian2' }, hb.options));
    },
  };
}

function dubboHandlers() {
  const Response = require('dubbo-remoting/lib/protocol/response');
  const protocol = require('dubbo-remoting/lib/protocol');
  return {
    decoder: () => require('dubbo-remoting').decoder({ sentReqs: new Map(), classCache: new Map(), logger }),
    reply(req) {
      const res = new Response(req.packetId);
      res.status = opts.status;
      res.errorMsg = opts.message || null;
      return res.encode({ codecType: 'hessian2' });
    },
    heartbeatAck(hb) {
      return protocol.heartbeatAckEncode(hb.packetId, { codecType: 'hessian2' });
    },
  };
}

const handlers = opts.protocol === 'bolt' ? boltHandlers() : dubboHandlers();
const sockets = new Set();
const server = net.createServer(socket => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', err => logger.info('socket error: %s', err.message));
  const decoder = handlers.decoder();
  decoder.on('request', req => {
    if (req.options && req.options.oneway) return;
    socket.write(handlers.reply(req));
  });
  decoder.on('heartbeat', hb => socket.write(handlers.heartbeatAck(hb)));
  decoder.on('error', err => {
    logger.warn('decode error: %s', err.message);
    socket.destroy();
  });
  socket.pipe(decoder);
});
server.on('error', err => {
  process.stderr.write('status_server failed: ' + err.stack + '\n');
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  common.onTerminate(() => new Promise(resolve => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  common.printReady({
    port: server.address().port,
    protocol: opts.protocol,
    status: opts.status,
    pid: process.pid,
  });
});
