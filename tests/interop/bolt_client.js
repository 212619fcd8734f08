#!/usr/bin/env node
'use strict';
// A real SOFARPC bolt client: sofa-rpc-node's RpcClient with sofa-bolt-node,
// direct address (no registry). `node bolt_client.js --help` for the options.
require('./lib/rpc_client').run('bolt_client.js', 'bolt');
