#!/usr/bin/env python3
"""Serve a MapProxy configuration on loopback with Python's WSGI reference server (threads).

  mapproxy-serve.py <mapproxy.yaml> <port>

One process (no reloader), so the tests stop it by its PID. MapProxy is the WMTS server; this
file only hosts it.
"""
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mapproxy.wsgiapp import make_wsgi_app


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


app = make_wsgi_app(sys.argv[1])
server = make_server('127.0.0.1', int(sys.argv[2]), app, server_class=ThreadingServer, handler_class=QuietHandler)
print('serving', flush=True)
server.serve_forever()
