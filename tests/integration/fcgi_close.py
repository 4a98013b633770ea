#!/usr/bin/python3
"""fcgi_close.py: how mlfcgi ends a FastCGI connection (fcgi/serve.c,
serve_thread()). TAP output.

libfcgi closes a connection by shutting down its side, then reading until
the web server closes, for up to 2 seconds: unread input must not make TCP
reset the connection and lose the answer. mlfcgi keeps that where it
matters and skips it where it cannot: on a unix socket, once the request
was read to its end, it closes at once, so the thread does not wait for the
web server to close first. What the test sees, as a web server would:
- unix socket, request read to its end: mlfcgi's end is closed (POLLHUP on
  ours, which we keep open) right after the answer, and it holds no socket
  for it any more;
- unix socket, input left unread (more bytes than CONTENT_LENGTH): mlfcgi
  does not close at once but reads the rest, as libfcgi does;
- TCP: mlfcgi keeps libfcgi's close: the connection stays open on its side
  while ours is.
libfcgi's own close cannot pass the first: it waits for our close, or
2 seconds, before closing.

Env: MLFCGI_BIN, SRCDIR, BUILDDIR."""

import json
import os
import select
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgi_client as fc  # noqa: E402

SRC, BIN = fc.paths()
MODEL = os.path.join(SRC, 'models', 'iris.json')
POST = {'REQUEST_METHOD': 'POST', 'SCRIPT_NAME': '/predict',
        'CONTENT_TYPE': 'application/json'}
# Well under libfcgi's 2 seconds, well over a close that follows the answer.
PROMPT_S = 1.5

t = fc.Tap()
tmp = tempfile.mkdtemp(prefix='mlfcgi-close.')
procs = []


def send_request(addr, params, body, content_length=None):
    """Sends one request and reads its answer up to FCGI_END_REQUEST,
    leaving our end open. Returns (socket, status, body)."""
    p = dict(params)
    if body or p.get('REQUEST_METHOD') == 'POST':
        p['CONTENT_LENGTH'] = str(len(body) if content_length is None
                                  else content_length)
    s = fc.connect(addr, 60)
    s.sendall(fc.begin_record() + fc._stream(fc.FCGI_PARAMS, fc._params(p)) +
              fc._stream(fc.FCGI_STDIN, body))
    status, _, rbody = fc.read_answer(s)
    return s, status, rbody


def hangup_within(s, seconds):
    """Whether the peer closed its end (POLLHUP on ours) within seconds.
    A shutdown of its sending side alone is not a hangup."""
    p = select.poll()
    p.register(s, 0)        # POLLHUP is always reported
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        for _, ev in p.poll(left * 1000):
            if ev & select.POLLHUP:
                return True


def start(name, addr, args):
    m = fc.Mlfcgi(BIN, ['--model', MODEL] + args,
                  os.path.join(tmp, name + '.log'), addr=addr)
    procs.append(m)
    if not m.wait_up():
        t.bail('%s: mlfcgi did not start: %s' % (name, m.log_tail()))
    return m


def settle(m, want, seconds=5):
    """Waits until m has want sockets open; returns how many it has."""
    deadline = time.monotonic() + seconds
    n = fc.sockets(m.pid)
    while n != want and time.monotonic() < deadline:
        time.sleep(0.02)
        n = fc.sockets(m.pid)
    return n


def main():
    # One request thread: a thread held by a connection would show.
    u = start('unix', os.path.join(tmp, 'mlfcgi.sock'),
              ['--threads', '1', '--max-batch', '5000'])
    base = fc.idle_sockets(u)

    s, st, body = send_request(u.addr, POST, fc.SETOSA)
    t.ok(st == 200 and b'setosa' in body,
         'unix socket: /predict answers 200 (%d)' % st, body[:200])
    t.ok(hangup_within(s, PROMPT_S), 'unix socket: mlfcgi closes its end '
         'right after the answer, while ours stays open (POLLHUP within '
         '%.1f s; libfcgi would wait for our close, up to 2 s)' % PROMPT_S)
    t.is_(settle(u, base), base, 'unix socket: ... and holds no socket for '
          'that connection any more')
    s.close()

    s, st, body = send_request(u.addr, {'REQUEST_METHOD': 'GET',
                                        'SCRIPT_NAME': '/health'}, b'')
    t.is_(st, 200, 'unix socket: GET /health (no body) answers 200')
    t.ok(hangup_within(s, PROMPT_S), 'unix socket: ... and mlfcgi closes at '
         'once after it too')
    s.close()

    # A body of several records, larger than the socket's buffer.
    rows = [[5.1 + i % 7 * 0.1, 3.5, 1.4, 0.2] for i in range(5000)]
    big = json.dumps({'instances': rows}).encode()
    s, st, body = send_request(u.addr, POST, big)
    try:
        n = len(json.loads(body)['predictions'])
    except (ValueError, KeyError, TypeError):
        n = -1
    t.ok(st == 200 and n == 5000, 'unix socket: a batch of 5000 instances '
         '(%d bytes, %d records) answers 200 with 5000 predictions (%d, %d)'
         % (len(big), (len(big) + 65534) // 65535, st, n), body[:200])
    t.ok(hangup_within(s, PROMPT_S), 'unix socket: ... and mlfcgi closes at '
         'once after it')
    s.close()

    # Input left unread: the web server sent more than CONTENT_LENGTH.
    s, st, body = send_request(u.addr, POST, fc.SETOSA + b' ' * 200000,
                               content_length=12)
    t.is_(st, 422, 'unix socket: a body longer than CONTENT_LENGTH is read '
          'up to CONTENT_LENGTH only (422)')
    t.ok(not hangup_within(s, 1.0), 'unix socket: ... and with input left '
         'unread, mlfcgi does not close at once: it reads the rest, as '
         'libfcgi does, while our end is open')
    s.close()
    t.is_(settle(u, base), base, 'unix socket: ... and lets the connection '
          'go once we close')
    r = fc.predict(u.addr)
    t.is_(r.status, 200, 'unix socket: the one request thread answers the '
          'next request')

    # TCP: libfcgi's close, unchanged.
    tcp = start('tcp', None, ['--threads', '1'])
    tbase = fc.idle_sockets(tcp)
    s, st, body = send_request(tcp.addr, POST, fc.SETOSA)
    t.ok(st == 200 and b'setosa' in body, 'TCP: /predict answers 200 (%d)'
         % st)
    time.sleep(0.3)
    t.is_(fc.sockets(tcp.pid), tbase + 1, 'TCP: mlfcgi keeps libfcgi\'s '
          'close: the connection stays open on its side while ours is (0.3 s '
          'after the answer)')
    s.close()
    t.is_(settle(tcp, tbase), tbase, 'TCP: ... and is closed once we close')

    for m in procs:
        t.is_(m.stop(), 0, '%s: mlfcgi exits 0 on SIGTERM' % os.path.basename(
            m.log)[:-4])


try:
    main()
finally:
    for m in procs:
        m.stop()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
