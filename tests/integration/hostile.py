#!/usr/bin/python3
"""hostile.py: hostile request bodies through a real web server (lighttpd,
fcgi/lighttpd-external.conf, in front of `mlfcgi --listen`), and straight
over FastCGI where the web server would hide the case (a CONTENT_LENGTH
that lies, no CONTENT_LENGTH). Each gets a clean 4xx (JSON {"detail": ...}
when mlfcgi answers) and mlfcgi is still alive and healthy afterwards; no
hostile request leaves an audit row. Issue 5, "Hostile input". TAP output.

Two mlfcgi: A with the defaults, B with --max-body 64 MiB (for the 1 MB
field name, the million fields and the million-row batch).

Env: MLFCGI_BIN, SRCDIR, BUILDDIR. Needs: lighttpd, sqlite3."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgi_client as fc  # noqa: E402

SRC, BIN = fc.paths()
MODEL = os.path.join(SRC, 'models', 'iris.json')
CONF = os.path.join(SRC, 'fcgi', 'lighttpd-external.conf')
JSON_CT = 'application/json'
FORM_CT = 'application/x-www-form-urlencoded'
OK_JSON = b'{"features":[5.1,3.5,1.4,0.2]}'
OK_FORM = b'sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2'
BIG_BODY = 64 << 20

t = fc.Tap()
tmp = tempfile.mkdtemp(prefix='mlfcgi-hostile.')
os.chmod(tmp, 0o755)
procs = []


class Pair:
    """An mlfcgi --listen with an audit log, and a lighttpd in front."""

    def __init__(self, name, args):
        self.name = name
        self.dir = os.path.join(tmp, name)
        os.makedirs(os.path.join(self.dir, 'www'))
        self.db = os.path.join(self.dir, 'audit.db')
        self.m = fc.Mlfcgi(BIN, ['--model', MODEL, '--audit-db', self.db] +
                           args, os.path.join(self.dir, 'mlfcgi.log'))
        procs.append(self.m)
        if not self.m.wait_up():
            t.bail('%s: mlfcgi did not start: %s' % (name, self.m.log_tail()))
        self.port = fc.free_port()
        env = fc.clean_env()
        env.update(MLFCGI_PORT=str(self.port), MLFCGI_STATE_DIR=self.dir,
                   MLFCGI_WWW=os.path.join(self.dir, 'www'), MLFCGI_PREFIX='',
                   MLFCGI_BACKEND=self.m.addr)
        self.web = subprocess.Popen(
            ['lighttpd', '-D', '-f', CONF], env=env,
            stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            stdout=open(os.path.join(self.dir, 'lighttpd.out'), 'ab'))
        procs.append(self)
        deadline = time.time() + 10
        while time.time() < deadline:
            if http(self.port, 'GET', '/health')[0] == 200:
                break
            time.sleep(0.1)
        else:
            t.bail('%s: lighttpd did not answer /health' % name)
        self.ok200 = 0

    def stop(self):
        if self.web.poll() is None:
            self.web.terminate()
            try:
                self.web.wait(15)
            except subprocess.TimeoutExpired:
                self.web.kill()
                self.web.wait()
        return self.m.stop()

    alive = property(lambda self: self.m.alive())


def http(port, method, path, body=b'', headers=None, timeout=60):
    """A request on a fresh connection (Connection: close); returns
    (status, headers dict lower-case, body). status 0 on no answer."""
    h = {'Host': '127.0.0.1', 'Connection': 'close'}
    if method == 'POST' and 'Transfer-Encoding' not in (headers or {}):
        h['Content-Length'] = str(len(body))
    h.update(headers or {})
    head = '%s %s HTTP/1.1\r\n' % (method, path) + ''.join(
        '%s: %s\r\n' % kv for kv in h.items()) + '\r\n'
    return raw(port, head.encode() + body, timeout=timeout)[0]


def raw(port, data, shut_wr=False, timeout=30):
    """Sends data as is; reads until the server closes. Returns the list of
    responses [(status, headers, body)], or [(0, {}, error)]."""
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    except OSError as e:
        return [(0, {}, str(e).encode())]
    out = b''
    try:
        s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError as e:
        if not out:
            return [(0, {}, ('%s' % e).encode())]
    finally:
        s.close()
    return parse_responses(out) or [(0, {}, b'no response')]


def parse_responses(out):
    res = []
    while out.startswith(b'HTTP/'):
        head, _, rest = out.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split(' ')[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(':')
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get('content-length', len(rest)))
        res.append((status, hdrs, rest[:n]))
        out = rest[n:]
    return res


def detail(body):
    """The JSON error's detail (list or str), or None."""
    try:
        return json.loads(body).get('detail')
    except (ValueError, AttributeError):
        return None


def detail_types(body):
    d = detail(body)
    return sorted({e.get('type') for e in d}) if isinstance(d, list) else d


def still_alive(p, desc):
    """mlfcgi runs and answers /health through lighttpd."""
    st = http(p.port, 'GET', '/health')[0]
    t.ok(p.alive and st == 200, '%s: mlfcgi still alive and healthy' % desc,
         'alive: %s, /health: %s' % (p.alive, st), p.m.log_tail())


def expect(p, desc, body, ct=JSON_CT, status=422, types=None, mlfcgi=True,
           headers=None, via='http'):
    """POST /predict through lighttpd; checks the status, the JSON error
    (with the detail types when given), then that mlfcgi is alive."""
    h = {'Content-Type': ct}
    h.update(headers or {})
    t0 = time.time()
    st, rh, rb = http(p.port, 'POST', '/predict', body, h)
    dt = time.time() - t0
    if st == 200:
        p.ok200 += 1
    want = status if isinstance(status, tuple) else (status,)
    t.ok(st in want, '%s: status %s (%.2f s)' % (desc, '/'.join(
        map(str, want)), dt), 'got %s: %.400r' % (st, rb))
    if mlfcgi:
        d = detail(rb)
        good = d is not None and (types is None or detail_types(rb) == types)
        t.ok(good, '%s: JSON detail%s' % (
            desc, ' of type %s' % ','.join(types) if types else ''),
            'got %.400r' % rb)
    still_alive(p, desc)
    return st, rh, rb


def peak_rss(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return '?'


def check_tools():
    for cmd in ('lighttpd', 'sqlite3'):
        if shutil.which(cmd) is None:
            t.bail('%s not found (Debian package: %s)' % (cmd, cmd))
    if not os.access(BIN, os.X_OK):
        t.bail('mlfcgi binary not found: ' + BIN)


def main():
    check_tools()
    a = Pair('A', [])
    b = Pair('B', ['--max-body', str(BIG_BODY)])

    st, _, rb = http(a.port, 'POST', '/predict', OK_JSON,
                     {'Content-Type': JSON_CT})
    a.ok200 += st == 200
    t.ok(st == 200 and b'setosa' in rb, 'A: a sane prediction answers 200')

    # 100,000 nested '[' (and '{').
    expect(a, 'A: 100,000 nested [', b'{"features":' + b'[' * 100000,
           types=['json_invalid'])
    expect(a, 'A: 100,000 nested [ at the top', b'[' * 100000,
           types=['json_invalid'])
    expect(a, 'A: 100,000 nested {', b'{"a":' * 100000,
           types=['json_invalid'])

    # Numbers with 10,000 digits: an integer that overflows a double, a
    # decimal that does not, an exponent of 10,000 digits.
    expect(a, 'A: an integer of 10,000 digits',
           b'{"features":[1' + b'0' * 9999 + b',3.5,1.4,0.2]}',
           types=['json_invalid'])
    expect(a, 'A: a decimal of 10,000 digits',
           b'{"features":[5.1' + b'0' * 9997 + b'1,3.5,1.4,0.2]}',
           types=['json_invalid'])
    expect(a, 'A: an exponent of 10,000 digits',
           b'{"features":[5.1e' + b'0' * 9997 + b'1,3.5,1.4,0.2]}',
           types=['json_invalid'])
    expect(a, 'A: 1e999 (not a finite double)',
           b'{"features":[1e999,3.5,1.4,0.2]}')

    # Numbers written as strings are not numbers (strict, documented).
    expect(a, 'A: features as strings',
           b'{"features":["5.1","3.5","1.4","0.2"]}', types=['float_type'])
    expect(a, 'A: a named field as a string',
           b'{"sepal_length":"5.1","sepal_width":3.5,"petal_length":1.4,'
           b'"petal_width":0.2}', types=['float_type'])

    # Duplicate keys: refused, whichever value comes first.
    expect(a, 'A: a duplicate key',
           b'{"sepal_length":5.1,"sepal_length":9,"sepal_width":3.5,'
           b'"petal_length":1.4,"petal_width":0.2}', types=['duplicate_field'])
    expect(a, 'A: "features" twice',
           b'{"features":[5.1,3.5,1.4,0.2],"features":[6.7,3,5.2,2.3]}',
           types=['duplicate_field'])

    # Invalid UTF-8 and NUL bytes.
    expect(a, 'A: invalid UTF-8 in a key',
           b'{"sepal_length\xc3":5.1,"sepal_width":3.5,"petal_length":1.4,'
           b'"petal_width":0.2}', types=['json_invalid'])
    expect(a, 'A: invalid UTF-8 in a string value',
           b'{"features":[5.1,3.5,1.4,0.2],"x":"\xff\xfe"}',
           types=['json_invalid'])
    expect(a, 'A: an overlong UTF-8 encoding of "/"',
           b'{"features":[5.1,3.5,1.4,0.2],"x":"\xc0\xaf"}',
           types=['json_invalid'])
    expect(a, 'A: a UTF-16 surrogate encoded in UTF-8',
           b'{"features":[5.1,3.5,1.4,0.2],"x":"\xed\xa0\x80"}',
           types=['json_invalid'])
    expect(a, 'A: a NUL byte after the JSON', OK_JSON + b'\0',
           types=['json_invalid'])
    expect(a, 'A: a NUL byte inside a key',
           b'{"sepal_length\0":5.1,"sepal_width":3.5,"petal_length":1.4,'
           b'"petal_width":0.2}', types=['json_invalid'])
    expect(a, 'A: \\u0000 inside a key',
           b'{"sepal_length\\u0000":5.1,"sepal_width":3.5,'
           b'"petal_length":1.4,"petal_width":0.2}', types=['json_invalid'])
    expect(a, 'A: a NUL byte in a form value',
           b'sepal_length=5.1\0&sepal_width=3.5&petal_length=1.4'
           b'&petal_width=0.2', ct=FORM_CT)
    expect(a, 'A: %00 in a form value',
           b'sepal_length=5.1%00&sepal_width=3.5&petal_length=1.4'
           b'&petal_width=0.2', ct=FORM_CT)
    expect(a, 'A: invalid UTF-8 via %ff in a form name',
           b'sepal_length%ff=5.1&sepal_width=3.5&petal_length=1.4'
           b'&petal_width=0.2', ct=FORM_CT)

    # A field name of 1 MB (JSON and form), with a body limit above it.
    key = b'k' * (1 << 20)
    _, _, rb = expect(b, 'B: a JSON field name of 1 MB',
                      b'{"' + key + b'":1,"features":[5.1,3.5,1.4,0.2]}',
                      types=['extra_forbidden'])
    t.ok(len(rb) < 4096, 'B: ... the error does not echo the 1 MB name '
         '(%d bytes)' % len(rb))
    _, _, rb = expect(b, 'B: a form field name of 1 MB',
                      key + b'=1&' + OK_FORM, ct=FORM_CT,
                      types=['extra_forbidden'])
    t.ok(len(rb) < 4096, 'B: ... the error does not echo the 1 MB name '
         '(%d bytes)' % len(rb))
    expect(a, 'A: a JSON field name of 1 MB over the default --max-body',
           b'{"' + key + b'":1}', status=413)

    # 1,000,000 fields.
    many = b'{' + b','.join(b'"f%d":0' % i for i in range(1000000)) + \
        b',"features":[5.1,3.5,1.4,0.2]}'
    _, _, rb = expect(b, 'B: 1,000,000 JSON fields (%.1f MB)' % (
        len(many) / 1e6), many, types=['extra_forbidden'])
    t.ok(len(rb) < 65536, 'B: ... the error lists a bounded number of '
         'entries (%d bytes)' % len(rb))
    many = b'&'.join(b'f%d=0' % i for i in range(1000000)) + b'&' + OK_FORM
    expect(b, 'B: 1,000,000 form fields (%.1f MB)' % (len(many) / 1e6),
           many, ct=FORM_CT, types=['extra_forbidden'])
    del many

    # A wrong charset; an empty body.
    expect(a, 'A: charset=latin1', OK_JSON,
           ct='application/json; charset=latin1', status=415)
    expect(a, 'A: charset=utf-16 on a form', OK_FORM,
           ct=FORM_CT + '; charset=utf-16', status=415)
    st, _, _ = http(a.port, 'POST', '/predict', OK_JSON,
                    {'Content-Type': 'application/json; charset="UTF-8"'})
    a.ok200 += st == 200
    t.is_(st, 200, 'A: charset="UTF-8" (quoted, upper case) is accepted')
    expect(a, 'A: an empty JSON body', b'', types=['missing'])
    expect(a, 'A: an empty form body', b'', ct=FORM_CT, types=['missing'])
    expect(a, 'A: a body of spaces', b'   ')
    expect(a, 'A: text/plain', OK_JSON, ct='text/plain', status=415)

    # Forms: %zz, a truncated escape, repeated fields.
    expect(a, 'A: form %zz', b'sepal_length=5.1%zz&sepal_width=3.5'
           b'&petal_length=1.4&petal_width=0.2', ct=FORM_CT,
           types=['form_invalid'])
    expect(a, 'A: form ending in %4', OK_FORM + b'%4', ct=FORM_CT,
           types=['form_invalid'])
    expect(a, 'A: a repeated form field', b'sepal_length=5.1&sepal_length=9'
           b'&sepal_width=3.5&petal_length=1.4&petal_width=0.2', ct=FORM_CT,
           types=['duplicate_field'])
    expect(a, 'A: a repeated unknown form field', OK_FORM + b'&x=1&x=2',
           ct=FORM_CT)

    # A batch of a million rows.
    batch = b'{"instances":[' + b','.join([b'[5.1,3.5,1.4,0.2]'] * 1000000) \
        + b']}'
    expect(a, 'A: a batch of 1,000,000 rows (%.0f MB) over the default '
           '--max-body' % (len(batch) / 1e6), batch, status=413)
    expect(b, 'B: a batch of 1,000,000 rows under --max-body: too_long '
           '(--max-batch 1000)', batch, types=['too_long'])
    del batch
    t.diag('B: mlfcgi peak memory after these cases: %s' % peak_rss(b.m.pid))

    # Content-Length shorter than the body: lighttpd takes Content-Length
    # bytes as the body (mlfcgi: invalid JSON) and the rest as the next
    # request (lighttpd: 400).
    req = (b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: '
           b'application/json\r\nContent-Length: 12\r\n\r\n' + OK_JSON)
    res = raw(a.port, req, shut_wr=True)
    t.ok(res[0][0] == 422 and detail_types(res[0][2]) == ['json_invalid'],
         'A: Content-Length shorter than the body: 422 json_invalid on the '
         'first 12 bytes', repr(res))
    t.ok(all(400 <= r[0] < 500 for r in res[1:]),
         'A: ... the rest is not part of that request (any further answer, '
         'to the rest read as a request, is a 4xx: %s)' %
         [r[0] for r in res[1:]], repr(res))
    still_alive(a, 'A: Content-Length shorter than the body')

    # Content-Length longer than the body, then the client stops sending:
    # lighttpd never forwards a partial body.
    req = (b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: '
           b'application/json\r\nContent-Length: 100\r\n\r\n' + OK_JSON)
    res = raw(a.port, req, shut_wr=True, timeout=20)
    t.ok(res[0][0] == 0 or 400 <= res[0][0] < 500,
         'A: Content-Length longer than the body, then EOF: no answer or a '
         '4xx (got %s)' % res[0][0], repr(res))
    still_alive(a, 'A: Content-Length longer than the body')
    res = raw(a.port, b'POST /predict HTTP/1.1\r\nHost: x\r\n'
              b'Content-Length: -1\r\n\r\n', shut_wr=True)
    t.ok(400 <= res[0][0] < 500, 'A: Content-Length: -1 is a 4xx (%s)'
         % res[0][0], repr(res))
    res = raw(a.port, b'POST /predict HTTP/1.1\r\nHost: x\r\n'
              b'Content-Length: 99999999999999999999999\r\n\r\n',
              shut_wr=True)
    t.ok(400 <= res[0][0] < 500, 'A: a 23-digit Content-Length is a 4xx '
         '(%s)' % res[0][0], repr(res))
    still_alive(a, 'A: bad Content-Length values')

    # Chunked bodies: lighttpd de-chunks and sends CONTENT_LENGTH.
    def chunked(body, size=7):
        return b''.join(b'%x\r\n%s\r\n' % (len(body[i:i + size]),
                                           body[i:i + size])
                        for i in range(0, len(body), size)) + b'0\r\n\r\n'
    te = {'Transfer-Encoding': 'chunked', 'Content-Type': JSON_CT}
    st, _, rb = http(a.port, 'POST', '/predict', chunked(OK_JSON), te)
    a.ok200 += st == 200
    t.ok(st == 200 and b'setosa' in rb, 'A: a valid chunked body is '
         'predicted (200)', '%s %.300r' % (st, rb))
    expect(a, 'A: chunked, with invalid JSON inside', chunked(b'{"features'),
           headers=te, types=['json_invalid'])
    expect(a, 'A: a malformed chunk size (zz)',
           b'zz\r\n' + OK_JSON + b'\r\n0\r\n\r\n', headers=te, status=400,
           mlfcgi=False)
    expect(a, 'A: a chunk longer than its size',
           b'4\r\n' + OK_JSON + b'\r\n0\r\n\r\n', headers=te, status=400,
           mlfcgi=False)
    expect(a, 'A: a chunked body of 2 MB, over --max-body',
           chunked(b' ' * (2 << 20), 65536), headers=te, status=413)
    expect(a, 'A: chunked and a Content-Length both',
           chunked(OK_JSON), headers=dict(te, **{'Content-Length': '5'}),
           status=400, mlfcgi=False)

    # Straight over FastCGI: a CONTENT_LENGTH that lies, none at all.
    params = {'REQUEST_METHOD': 'POST', 'SCRIPT_NAME': '/predict',
              'CONTENT_TYPE': FORM_CT}
    r = fc.request(a.m.addr, params, b'sepal_length=5.1&sepal_width=3.5&'
                   b'petal_length=1.4&petal_width=0.2', content_length=200)
    t.ok(400 <= r.status < 500, 'FastCGI: a body shorter than CONTENT_LENGTH '
         '(a truncated upload) is a 4xx, not a prediction on what arrived '
         '(got %d)' % r.status, repr(r))
    a.ok200 += r.status == 200
    r = fc.request(a.m.addr, dict(params, CONTENT_TYPE=JSON_CT), OK_JSON,
                   content_length=12)
    t.ok(r.status == 422 and detail_types(r.body) == ['json_invalid'],
         'FastCGI: a body longer than CONTENT_LENGTH: only CONTENT_LENGTH '
         'bytes are read (422 json_invalid)', repr(r))
    p = dict(params, CONTENT_TYPE=JSON_CT)
    r = fc.request(a.m.addr, p, b' ' * ((1 << 20) + 1))
    t.is_(r.status, 413, 'FastCGI: a body of --max-body + 1 is 413')
    s = fc.connect(a.m.addr, 30)
    s.sendall(fc._record(fc.FCGI_BEGIN_REQUEST, b'\0\1\0\0\0\0\0\0') +
              fc._stream(fc.FCGI_PARAMS, fc._params(p)) +
              fc._stream(fc.FCGI_STDIN, OK_JSON))
    s.close()
    a.ok200 += 1    # answered (and logged), though nobody read the answer
    t.ok(fc.get(a.m.addr, '/health').status == 200, 'FastCGI: a client that '
         'hangs up before reading the answer leaves mlfcgi healthy')

    # No CONTENT_LENGTH (a server passing a chunked body through): read to
    # the end of the stream, at most --max-body.
    r = fc.request(a.m.addr, p, OK_JSON, content_length=False)
    t.is_(r.status, 200, 'FastCGI without CONTENT_LENGTH: a valid body is '
          'predicted')
    a.ok200 += r.status == 200
    r = fc.request(a.m.addr, p, b' ' * ((1 << 20) + 1), content_length=False)
    t.is_(r.status, 413, 'FastCGI without CONTENT_LENGTH: a body of '
          '--max-body + 1 is 413')
    r = fc.request(a.m.addr, p, b'', content_length=False)
    t.ok(r.status == 422 and detail_types(r.body) == ['missing'],
         'FastCGI without CONTENT_LENGTH: no body is 422 missing', repr(r))

    # After all that: both alive, stop cleanly, one audit row per 200.
    for p in (a, b):
        t.ok(p.alive, '%s: mlfcgi survived every case' % p.name,
             p.m.log_tail())
        st = p.stop()
        t.is_(st, 0, '%s: mlfcgi exits 0 on SIGTERM' % p.name)
        rows = subprocess.run(['sqlite3', p.db,
                               'SELECT count(*) FROM predictions'],
                              capture_output=True, text=True).stdout.strip()
        t.is_(rows, str(p.ok200), '%s: audit rows = the 200s (%d): hostile '
              'requests leave no row' % (p.name, p.ok200))


try:
    main()
finally:
    for p in procs:
        try:
            p.stop()
        except Exception:
            pass
    if os.environ.get('MLFCGI_KEEP_TMP') == '1':
        t.diag('kept ' + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
t.done()
