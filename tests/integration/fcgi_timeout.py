#!/usr/bin/python3
"""fcgi_timeout.py: --io-timeout bounds every wait on the web server
(fcgi/serve.c). TAP output.

A request thread blocked on a connection that sends nothing more, or does
not read its answer, is a thread lost: with libfcgi's blocking reads and
writes, for ever. mlfcgi sets SO_RCVTIMEO and SO_SNDTIMEO (on the listening
socket for TCP, which its connections inherit; on each unix-socket
connection, which do not). What the test does, as a stalled web server
would, against one request thread and --io-timeout 1:
- connects and sends nothing, or half the parameters: mlfcgi closes the
  connection after about a second, and answers the next request;
- sends the parameters and part of the body: mlfcgi answers 408 with a
  JSON detail, closes at once (not libfcgi's shut down and read for 2 more
  seconds), and answers the next request;
- asks for an answer larger than the socket's buffer and does not read
  it: the thread gives up the write and answers the next request;
- trickles a body a byte every 0.4 s, each wait under --io-timeout, with
  --body-timeout 2: mlfcgi answers 408 after about 2 s, not when the
  last byte comes (12 s); a body that comes in three pieces within the
  2 s is answered 200;
- the same read cases over TCP.
Without the timeouts each of these holds the one thread, and the next
request gets no answer.

Env: MLFCGI_BIN, SRCDIR, BUILDDIR."""

import json
import os
import select
import shutil
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgi_client as fc  # noqa: E402

SRC, BIN = fc.paths()
MODEL = os.path.join(SRC, 'models', 'iris.json')
POST = {'REQUEST_METHOD': 'POST', 'SCRIPT_NAME': '/predict',
        'CONTENT_TYPE': 'application/json'}
TIMEOUT_S = 1
# How long a stalled connection may take to be let go: the timeout, with
# room for a slow machine (the sanitizer tier runs this too).
LET_GO_S = TIMEOUT_S + 6
BODY_TIMEOUT_S = 2

t = fc.Tap()
tmp = tempfile.mkdtemp(prefix='mlfcgi-timeout.')
procs = []


def params(body_len):
    p = dict(POST)
    p['CONTENT_LENGTH'] = str(body_len)
    return fc._stream(fc.FCGI_PARAMS, fc._params(p))


def closed_within(s, seconds):
    """Seconds until the peer closed (we read its end), or None if it
    did not within seconds. Answers it sends first are read and dropped."""
    start = time.monotonic()
    s.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - start
        if not data:
            return time.monotonic() - start
    return None


def read_answer(s, seconds):
    """Reads one answer up to FCGI_END_REQUEST. Returns (status, headers,
    body), or (0, {}, b'') if none came within seconds."""
    s.settimeout(seconds)
    try:
        return fc.read_answer(s)
    except (OSError, struct.error):
        return 0, {}, b''


def let_go_within(m, base, seconds):
    """Whether m is back to base sockets within seconds."""
    deadline = time.monotonic() + seconds
    while fc.sockets(m.pid) != base:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def next_answers(m, what):
    r = fc.predict(m.addr, timeout=LET_GO_S)
    t.is_(r.status, 200, '%s: ... and the one request thread answers the '
          'next request' % what)


def start(name, addr, args):
    m = fc.Mlfcgi(BIN, ['--model', MODEL, '--threads', '1', '--io-timeout',
                        str(TIMEOUT_S), '--body-timeout',
                        str(BODY_TIMEOUT_S)] + args,
                  os.path.join(tmp, name + '.log'), addr=addr)
    procs.append(m)
    if not m.wait_up():
        t.bail('%s: mlfcgi did not start: %s' % (name, m.log_tail()))
    return m


def read_cases(m, kind):
    base = fc.idle_sockets(m)
    # Silent: connected, nothing sent.
    s = fc.connect(m.addr, 30)
    took = closed_within(s, LET_GO_S)
    t.ok(took is not None and took >= TIMEOUT_S * 0.5,
         '%s: a connection that sends nothing is closed after about the '
         'timeout (%s s)' % (kind, None if took is None else round(took, 2)))
    s.close()
    next_answers(m, kind)

    # Half the parameters, then nothing.
    s = fc.connect(m.addr, 30)
    p = params(len(fc.SETOSA))
    s.sendall(fc.begin_record() + p[:len(p) // 2])
    took = closed_within(s, LET_GO_S)
    t.ok(took is not None, '%s: a connection that stops halfway through '
         'its parameters is closed (%s s)'
         % (kind, None if took is None else round(took, 2)))
    s.close()
    next_answers(m, kind)

    # The parameters and 20 of 100 bytes of body, then nothing.
    s = fc.connect(m.addr, 30)
    s.sendall(fc.begin_record() + params(100) +
              fc._record(fc.FCGI_STDIN, b'{"features": [5.1, 3'))
    status, headers, body = read_answer(s, LET_GO_S)
    try:
        detail = json.loads(body).get('detail', '')
    except ValueError:
        detail = None
    t.ok(status == 408 and isinstance(detail, str) and 'timeout' in detail
         and headers.get('content-type', '').startswith('application/json'),
         '%s: a body that stops arriving is answered 408 with a JSON '
         'detail (%d, %r)' % (kind, status, body[:120]))
    t.ok(let_go_within(m, base, 1.0), '%s: ... and mlfcgi closes the '
         'connection at once, while our end stays open (not libfcgi\'s shut '
         'down and read until we close, up to 2 s more)' % kind)
    s.close()
    next_answers(m, kind)
    trickle_cases(m, kind)


def trickle_cases(m, kind):
    # A byte every 0.4 s: each wait is under --io-timeout, the whole body
    # (30 bytes) would take 12 s.
    body = fc.SETOSA
    s = fc.connect(m.addr, 30)
    s.sendall(fc.begin_record() + params(len(body)))
    began = time.monotonic()
    for i in range(len(body)):
        try:
            s.sendall(fc._record(fc.FCGI_STDIN, body[i:i + 1]))
        except OSError:
            break
        if select.select([s], [], [], 0.4)[0]:
            break
    status, headers, answer = read_answer(s, LET_GO_S)
    took = time.monotonic() - began
    try:
        detail = json.loads(answer).get('detail', '')
    except ValueError:
        detail = None
    t.ok(status == 408 and isinstance(detail, str) and 'body timeout' in
         detail and took < BODY_TIMEOUT_S + 4,
         '%s: a body trickling a byte every 0.4 s is answered 408 after '
         '--body-timeout (%d, %r, %.1f s)' % (kind, status, answer[:120],
                                             took))
    s.close()
    next_answers(m, kind)

    # Slow, but whole within the deadline: three pieces 0.3 s apart.
    s = fc.connect(m.addr, 30)
    s.sendall(fc.begin_record() + params(len(body)))
    for piece in (body[:10], body[10:20], body[20:]):
        time.sleep(0.3)
        s.sendall(fc._record(fc.FCGI_STDIN, piece))
    s.sendall(fc._record(fc.FCGI_STDIN, b''))
    status, headers, answer = read_answer(s, LET_GO_S)
    t.is_(status, 200, '%s: a body in three pieces 0.3 s apart, whole '
          'within --body-timeout, is answered 200' % kind)
    s.close()


def main():
    u = start('unix', os.path.join(tmp, 'mlfcgi.sock'),
              ['--max-batch', '20000'])
    read_cases(u, 'unix socket')

    # An answer far larger than the socket's buffer, never read.
    rows = [[5.1 + i % 7 * 0.1, 3.5, 1.4, 0.2] for i in range(20000)]
    big = json.dumps({'instances': rows}).encode()
    s = fc.connect(u.addr, 30)
    s.sendall(fc.begin_record() + params(len(big)) +
              fc._stream(fc.FCGI_STDIN, big))
    time.sleep(0.5)
    # Room for computing the big answer too: under ThreadSanitizer on a
    # busy machine, 7 s was once not enough. A thread that never gave up
    # the write would never answer, however long we wait: s stays open.
    r = fc.predict(u.addr, timeout=LET_GO_S + 30)
    t.is_(r.status, 200, 'unix socket: while an answer of 20000 predictions '
          'waits, unread, for longer than the timeout, the one request '
          'thread gives up the write and answers the next request')
    s.close()

    tcp = start('tcp', None, [])
    read_cases(tcp, 'TCP')

    # A body that stops arriving shortly before its deadline, with a
    # longer --io-timeout: the last read waits only what is left of the
    # deadline, not the whole I/O timeout.
    late = fc.Mlfcgi(BIN, ['--model', MODEL, '--threads', '1', '--io-timeout',
                           '30', '--body-timeout', '1'],
                     os.path.join(tmp, 'late.log'),
                     addr=os.path.join(tmp, 'late.sock'))
    procs.append(late)
    if not late.wait_up():
        t.bail('late: mlfcgi did not start: %s' % late.log_tail())
    s = fc.connect(late.addr, 30)
    began = time.monotonic()
    s.sendall(fc.begin_record() + params(100) +
              fc._record(fc.FCGI_STDIN, b'{"features": [5.1, 3'))
    status, headers, answer = read_answer(s, 20)
    took = time.monotonic() - began
    t.ok(status == 408 and b'body timeout' in answer and took < 5,
         'unix socket, --io-timeout 30, --body-timeout 1: a body that stops '
         'arriving is answered 408 at the deadline, not after the I/O '
         'timeout (%d, %.1f s)' % (status, took))
    s.close()

    for m in procs:
        t.is_(m.stop(), 0, '%s: mlfcgi exits 0 on SIGTERM'
              % os.path.basename(m.log)[:-4])


try:
    main()
finally:
    for m in procs:
        m.stop()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
