#!/usr/bin/env node
'use strict';
// A real Dubbo consumer in Node: sofa-rpc-node's RpcClient with dubbo-remoting,
// direct address (no registry). `node dubbo_client.js --help` for the options.
// (The Python client, dubbo_client.py, is the other implementation.)
require('./lib/rpc_client').run('dubbo_client.js', 'dubbo');
