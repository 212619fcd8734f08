"""Equivalent static configurations for meshgate (MOSN v2 JSON), Envoy
(JSON, which Envoy reads as YAML) and nginx: one listener forwarding
everything to one backend, one worker thread each, no access log."""

from __future__ import annotations

import json

# Big enough that no proxy's connection or request limits shape a run
# (Envoy's default circuit breakers allow 1,024 upstream connections, which
# the memory scenario's 10,000 tcp_proxy connections would overflow).
MANY = 1_000_000


def meshgate(listen: int, backend: int, protocol: str) -> str:
    """One meshgate listener (`bolt`, `dubbo`, `Http1`, `Http2`) routing
    every request to the backend; 1 worker thread (`processor`). A new
    connection may stay silent for 60 s before its first request (HTTP's
    protocol detection waits 10 s by default, a head 15 s), as nginx's
    `client_header_timeout` allows: the memory scenario opens 10,000
    connections that send nothing, which can take seconds, and holds them
    8 s more; meshgate alone closed most of them in some runs."""
    if protocol in ("bolt", "dubbo"):
        match = {"headers": [{"name": "service", "value": ".*"}]}
        proxy = {"downstream_protocol": protocol, "router_config_name": "r"}
    else:
        match = {"prefix": "/"}
        proxy = {
            "downstream_protocol": protocol,
            "upstream_protocol": protocol,
            "router_config_name": "r",
        }
    proxy["extend_config"] = {"detect_timeout": "60s", "frame_read_timeout": "60s"}
    config = {
        "servers": [
            {
                "default_log_level": "WARN",
                "processor": 1,
                "routers": [
                    {
                        "router_config_name": "r",
                        "virtual_hosts": [
                            {
                                "name": "all",
                                "domains": ["*"],
                                "routers": [{"match": match, "route": {"cluster_name": "backend"}}],
                            }
                        ],
                    }
                ],
                "listeners": [
                    {
                        "name": "bench",
                        "address": f"127.0.0.1:{listen}",
                        "bind_port": True,
                        "filter_chains": [{"filters": [{"type": "proxy", "config": proxy}]}],
                    }
                ],
            }
        ],
        "cluster_manager": {
            "clusters": [
                {
                    "name": "backend",
                    "lb_type": "LB_ROUNDROBIN",
                    "hosts": [{"address": f"127.0.0.1:{backend}"}],
                }
            ]
        },
    }
    return json.dumps(config, indent=1)


def _envoy_cluster(backend: int, http2: bool) -> dict:
    cluster = {
        "name": "backend",
        "type": "STATIC",
        "connect_timeout": "10s",
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": MANY,
                    "max_pending_requests": MANY,
                    "max_requests": MANY,
                    "max_retries": MANY,
                }
            ]
        },
        "load_assignment": {
            "cluster_name": "backend",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": backend}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


def envoy(listen: int, backend: int, mode: str) -> str:
    """An Envoy bootstrap: `tcp_proxy` (L4), `dubbo_proxy` (Dubbo L7),
    `http1` or `http2` (http_connection_manager; `http2` also serves gRPC,
    with an HTTP/2 upstream). No admin listener."""
    if mode == "tcp_proxy":
        network = {
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": "bench",
                "cluster": "backend",
            },
        }
    elif mode == "dubbo_proxy":
        network = {
            "name": "envoy.filters.network.dubbo_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy",
                "stat_prefix": "bench",
                "multiple_route_config": {
                    "name": "bench",
                    "route_config": [
                        {
                            "name": "demo",
                            "interface": "org.apache.dubbo.samples.DemoService",
                            "routes": [
                                {
                                    "match": {"method": {"name": {"safe_regex": {"regex": ".*"}}}},
                                    "route": {"cluster": "backend"},
                                }
                            ],
                        }
                    ],
                },
            },
        }
    else:
        network = {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "bench",
                "codec_type": "AUTO",
                "generate_request_id": False,
                "route_config": {
                    "name": "bench",
                    "virtual_hosts": [
                        {
                            "name": "all",
                            "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}],
                        }
                    ],
                },
                "http_filters": [
                    {
                        "name": "envoy.filters.http.router",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                        },
                    }
                ],
            },
        }
    bootstrap = {
        "static_resources": {
            "listeners": [
                {
                    "name": "bench",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                    "filter_chains": [{"filters": [network]}],
                }
            ],
            "clusters": [_envoy_cluster(backend, http2=mode == "http2")],
        }
    }
    return json.dumps(bootstrap, indent=1)


def nginx(work: str, listen: int, backend: int, mode: str) -> str:
    """nginx, 1 worker: `http1` (proxy_pass with upstream keep-alive) or
    `grpc` (h2c listener, grpc_pass). Keep-alive request caps raised so
    nginx does not close client or upstream connections every 1,000
    requests (the other proxies never do)."""
    if mode == "grpc":
        listen_line = f"listen 127.0.0.1:{listen} http2;"
        location = "grpc_pass grpc://backend;"
    else:
        listen_line = f"listen 127.0.0.1:{listen};"
        location = (
            "proxy_pass http://backend; proxy_http_version 1.1; "
            'proxy_set_header Connection "";'
        )
    return f"""
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  fastcgi_temp_path {work}/nginx-fastcgi;
  uwsgi_temp_path {work}/nginx-uwsgi;
  scgi_temp_path {work}/nginx-scgi;
  keepalive_requests {MANY};
  keepalive_timeout 300s;
  upstream backend {{
    server 127.0.0.1:{backend};
    keepalive 256;
    keepalive_requests {MANY};
  }}
  server {{
    {listen_line}
    location / {{ {location} }}
  }}
}}
"""
