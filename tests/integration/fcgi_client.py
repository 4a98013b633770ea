"""fcgi_client: a small FastCGI client and TAP helpers for the integration
tests that drive `mlfcgi --listen` directly (audit_*.py, hostile.py).

As a module:
    request(addr, params, body)  -> Response(status, headers, body)
    Tap                          -> plan-less TAP output (ok/skip/done)
    Mlfcgi                       -> start/stop an `mlfcgi --listen` by PID
    Load                         -> background prediction load by threads
Not a test itself (not in INTEGRATION_TESTS)."""

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, \
    FCGI_STDERR = 1, 3, 4, 5, 6, 7
FCGI_RESPONDER = 1
SETOSA = b'{"features":[5.1,3.5,1.4,0.2]}'


def _record(rtype, content, req_id=1):
    """One FastCGI record (content up to 65535 bytes), padded to 8."""
    pad = (8 - len(content) % 8) % 8
    return struct.pack('>BBHHBx', 1, rtype, req_id, len(content), pad) + \
        content + b'\0' * pad


def _stream(rtype, data):
    """A whole stream: records of at most 65535 bytes, then the empty one."""
    out = [_record(rtype, data[i:i + 65535])
           for i in range(0, len(data), 65535)]
    out.append(_record(rtype, b''))
    return b''.join(out)


def _length(n):
    return bytes([n]) if n < 128 else struct.pack('>I', n | 0x80000000)


def _params(params):
    return b''.join(_length(len(k)) + _length(len(v)) + k + v
                    for k, v in ((k.encode(), v.encode() if isinstance(v, str)
                                  else v) for k, v in params.items()))


class Response:
    """status (int, 0 when no complete answer), headers (lower-case name ->
    value), body (bytes), error (str, when status is 0)."""

    def __init__(self, status=0, headers=None, body=b'', error=''):
        self.status, self.headers, self.body, self.error = \
            status, headers or {}, body, error

    def __repr__(self):
        return 'Response(%d, %r, %.300r%s)' % (
            self.status, self.headers, self.body,
            ', error=%r' % self.error if self.error else '')


def connect(addr, timeout):
    if '/' in addr:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(addr)
    else:
        host, port = addr.rsplit(':', 1)
        s = socket.create_connection((host, int(port)), timeout=timeout)
    return s


def _read_exact(s, n):
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError('connection closed mid-record')
        buf += chunk
    return buf


def _parse_cgi(out):
    head, sep, body = out.partition(b'\r\n\r\n')
    if not sep:
        head, sep, body = out.partition(b'\n\n')
    headers = {}
    for line in head.split(b'\n'):
        name, colon, value = line.decode('latin-1').partition(':')
        if colon:
            headers[name.strip().lower()] = value.strip()
    status = headers.get('status', '200').split(' ')[0]
    return int(status) if status.isdigit() else 0, headers, body


def begin_record():
    """FCGI_BEGIN_REQUEST for a responder, the connection not kept."""
    return _record(FCGI_BEGIN_REQUEST, struct.pack('>HB5x', FCGI_RESPONDER, 0))


def read_answer(s):
    """Reads one answer from socket s up to FCGI_END_REQUEST. Returns
    (status, headers, body); raises OSError, ConnectionError or
    struct.error when the connection fails or ends first."""
    out = []
    while True:
        _, rtype, _, clen, pad = struct.unpack('>BBHHBx', _read_exact(s, 8))
        content = _read_exact(s, clen + pad)[:clen]
        if rtype == FCGI_STDOUT:
            out.append(content)
        elif rtype == FCGI_END_REQUEST:
            return _parse_cgi(b''.join(out))


def request(addr, params, body=b'', timeout=30, content_length=None):
    """One FastCGI request. params: dict of CGI variables (REQUEST_METHOD,
    SCRIPT_NAME, ... as str); CONTENT_LENGTH is len(body) for a POST or a
    body, unless content_length is given: an int or str (it may then lie),
    or False for none."""
    p = dict(params)
    if content_length is False:
        p.pop('CONTENT_LENGTH', None)
    elif body or content_length is not None or \
            p.get('REQUEST_METHOD') == 'POST':
        p['CONTENT_LENGTH'] = str(len(body) if content_length is None
                                  else content_length)
    try:
        s = connect(addr, timeout)
    except OSError as e:
        return Response(error='connect: %s' % e)
    try:
        s.sendall(begin_record() + _stream(FCGI_PARAMS, _params(p)) +
                  _stream(FCGI_STDIN, body))
        return Response(*read_answer(s))
    except (OSError, ConnectionError, struct.error) as e:
        return Response(error='%s: %s' % (type(e).__name__, e))
    finally:
        s.close()


def predict(addr, body=SETOSA, request_id=None, path='/predict',
            content_type='application/json', timeout=30, extra=None):
    """POST body to path; X-Request-Id request_id when given."""
    p = {'REQUEST_METHOD': 'POST', 'SCRIPT_NAME': path,
         'CONTENT_TYPE': content_type, 'SERVER_PROTOCOL': 'HTTP/1.1'}
    if request_id:
        p['HTTP_X_REQUEST_ID'] = request_id
    if extra:
        p.update(extra)
    return request(addr, p, body, timeout)


def get(addr, path, timeout=10):
    return request(addr, {'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': path,
                          'SERVER_PROTOCOL': 'HTTP/1.1'}, b'', timeout)


def metrics(addr):
    """/metrics as {name: value summed over labels}; {} if unavailable."""
    r = get(addr, '/metrics')
    out = {}
    if r.status != 200:
        return out
    for line in r.body.decode('utf-8', 'replace').splitlines():
        if not line or line.startswith('#'):
            continue
        name, _, value = line.rpartition(' ')
        name = name.split('{')[0]
        try:
            out[name] = out.get(name, 0) + float(value)
        except ValueError:
            pass
    return out


# ---------------------------------------------------------------------------
# TAP

def _desc(desc):
    """A test description on one line, '#' escaped (not a directive)."""
    return ' '.join(str(desc).split()).replace('#', '\\#')


class Tap:
    """Numbered ok/not ok lines; done() prints the plan and exits 1 on any
    failure."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, *diag):
        self.n += 1
        print('%sok %d - %s' % ('' if cond else 'not ', self.n, _desc(desc)))
        if not cond:
            self.failed += 1
            for d in diag:
                self.diag(d)
        sys.stdout.flush()
        return cond

    def is_(self, got, want, desc):
        return self.ok(got == want, desc, 'got: %r' % (got,),
                       'expected: %r' % (want,))

    def todo(self, cond, desc, reason, *diag):
        """A test of something not done yet: reported, never a failure
        (automake counts an unexpected pass, XPASS, as a failure: then
        make it a plain test)."""
        self.n += 1
        print('%sok %d - %s # TODO %s' % ('' if cond else 'not ', self.n,
                                          _desc(desc), reason))
        if not cond:
            for d in diag:
                self.diag(d)
        sys.stdout.flush()
        return cond

    def skip(self, desc, reason):
        self.n += 1
        print('ok %d - %s # SKIP %s' % (self.n, _desc(desc), reason))
        sys.stdout.flush()

    def diag(self, msg):
        for line in str(msg).splitlines() or ['']:
            print('# ' + line)
        sys.stdout.flush()

    def bail(self, msg):
        print('Bail out! ' + msg)
        sys.stdout.flush()
        sys.exit(1)

    def done(self):
        print('1..%d' % self.n)
        if self.failed:
            self.diag('%d of %d tests failed' % (self.failed, self.n))
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


# ---------------------------------------------------------------------------
# Processes and environment

def paths():
    """(srcdir, mlfcgi binary) from SRCDIR, BUILDDIR, MLFCGI_BIN."""
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.environ.get('SRCDIR') or os.path.normpath(
        os.path.join(here, '..', '..'))
    build = os.environ.get('BUILDDIR') or src
    return os.path.abspath(src), os.environ.get('MLFCGI_BIN') or \
        os.path.join(os.path.abspath(build), 'mlfcgi')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def clean_env():
    """This environment without MLFCGI_* settings (mlfcgi reads them)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith('MLFCGI_')}


def mlfcgi_help(binary):
    try:
        return subprocess.run([binary, '--help'], capture_output=True,
                              text=True, timeout=10).stdout
    except OSError:
        return ''


class Mlfcgi:
    """`mlfcgi --listen 127.0.0.1:PORT ARGS...` (or --listen addr: a unix
    socket path), stderr to log, env added to the environment. Stopped by
    its PID only."""

    def __init__(self, binary, args, log, user=None, addr=None, env=None):
        self.port = None if addr else free_port()
        self.addr = addr or '127.0.0.1:%d' % self.port
        self.log = log
        cmd = [binary, '--listen', self.addr] + list(args)
        if user:
            cmd = ['setpriv', '--reuid=' + user, '--regid=' + user,
                   '--clear-groups'] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(log, 'ab'),
                                     stderr=subprocess.STDOUT,
                                     env=dict(clean_env(), **(env or {})))
        self.pid = self.proc.pid

    def wait_up(self, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                connect(self.addr, 1).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, seconds=30):
        """SIGTERM, wait; SIGKILL on timeout. Returns the exit status or
        'timeout'."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.kill9()
            return 'timeout'

    def log_tail(self, n=15):
        try:
            with open(self.log, 'rb') as f:
                return b'\n'.join(f.read().splitlines()[-n:]).decode(
                    'utf-8', 'replace')
        except OSError:
            return ''


def sockets(pid):
    """How many sockets process pid has open (its FastCGI connections,
    its listening socket and any others)."""
    n = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            n += os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith(
                'socket:')
        except OSError:
            pass
    return n


def idle_sockets(m, seconds=1.0):
    """The sockets Mlfcgi m holds with no connection: the fewest seen over
    seconds (wait_up()'s probe connection may still be open at first)."""
    least = sockets(m.pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
        least = min(least, sockets(m.pid))
    return least


# ---------------------------------------------------------------------------
# The audit database, seen from outside (the sqlite3 program)

def sql(db, query, timeout=60):
    """Runs query with the sqlite3 program on an existing database (never
    creating one), waiting up to 10 s for a lock that mlfcgi's writer holds
    (a commit, a checkpoint, a retention pass). Returns (exit status,
    stdout + stderr stripped)."""
    r = subprocess.run(['sqlite3', '-batch', '-cmd', '.timeout 10000',
                        'file:%s?mode=rw' % db, query],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).strip()


def row_counts(db, where='1'):
    """{request_id: rows} of the predictions table, or None on error."""
    rc, out = sql(db, 'SELECT request_id, count(*) FROM predictions WHERE '
                  '%s GROUP BY request_id;' % where)
    if rc != 0:
        return None
    counts = {}
    for line in out.splitlines():
        rid, _, n = line.rpartition('|')
        counts[rid] = int(n)
    return counts


class Locker:
    """Another process, the sqlite3 program, holding the database's write
    lock (BEGIN IMMEDIATE) from construction until release(). ok is False
    if it could not take the lock."""

    def __init__(self, db):
        self.p = subprocess.Popen(['sqlite3', '-batch', db],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.pid = self.p.pid
        self.p.stdin.write(".timeout 10000\nBEGIN IMMEDIATE;\n"
                           "SELECT 'locked';\n")
        self.p.stdin.flush()
        self.ok = self.p.stdout.readline().strip() == 'locked'
        self.since = time.monotonic()

    def release(self):
        """Commits (nothing) and ends the sqlite3 process; returns the
        seconds the lock was held."""
        if self.p.poll() is None:
            try:
                self.p.stdin.write('COMMIT;\n.quit\n')
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return time.monotonic() - self.since


# ---------------------------------------------------------------------------
# Load

class Load:
    """Background load: threads sending predictions with X-Request-Id
    PREFIX-i until stop() (or n requests). acked: ids answered 200, in
    order; acked_at: id -> time.monotonic() of its answer; refused: {id:
    status} of the other answers; statuses: {status: count}."""

    def __init__(self, addr, prefix, concurrency, n=None, body=SETOSA):
        self.addr, self.prefix, self.body, self.n = addr, prefix, body, n
        self.lock = threading.Lock()
        self.next = 0
        self.acked = []
        self.acked_at = {}
        self.refused = {}
        self.statuses = {}
        self.stopping = False
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(concurrency)]
        for t in self.threads:
            t.start()

    def _take(self):
        with self.lock:
            if self.stopping or (self.n is not None and self.next >= self.n):
                return None
            self.next += 1
            return self.next

    def _run(self):
        while True:
            i = self._take()
            if i is None:
                return
            rid = '%s-%d' % (self.prefix, i)
            r = predict(self.addr, self.body, rid, timeout=60)
            now = time.monotonic()
            with self.lock:
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                if r.status == 200:
                    self.acked.append(rid)
                    self.acked_at[rid] = now
                else:
                    self.refused[rid] = r.status

    def count(self, status=200):
        with self.lock:
            return self.statuses.get(status, 0)

    def sent(self):
        with self.lock:
            return self.next

    def stop(self, timeout=60):
        with self.lock:
            self.stopping = True
        deadline = time.time() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.time()))
        return not any(t.is_alive() for t in self.threads)

    def wait(self, timeout=60):
        deadline = time.time() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.time()))
        return not any(t.is_alive() for t in self.threads)
