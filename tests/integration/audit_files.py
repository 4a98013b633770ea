#!/usr/bin/python3
"""audit_files.py: the audit database file deleted, rotated (renamed) or
replaced while `mlfcgi --listen` runs (issue 5, "Audit durability:
Faults"). TAP output.

What must hold: requests keep being answered 200, mlfcgi does not crash
and exits 0 on SIGTERM; and the policy (README, "Guarantees"): before
each transaction the writer checks whether the file at the path is still
the one it has open; if not, it checkpoints its WAL into the old file
(which keeps every row committed before), closes it, and goes on in a
database at the path (created with the schema if needed):
D. deleted (the file, -wal and -shm): rows written afterwards are in a
   new database at the path;
M. moved (mv audit.db audit.db.1, as logrotate does) before any
   checkpoint: the rotated file holds the rows committed before the move,
   the rows after it are at the path, and none is lost after a restart at
   the path;
P. replaced (another database renamed over the path) after checkpoints
   ran: the database at the path passes PRAGMA integrity_check and holds
   the rows written after the replacement.

Env: MLFCGI_BIN, SRCDIR, BUILDDIR. Needs: sqlite3."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgi_client as fc  # noqa: E402

SRC, BIN = fc.paths()
MODEL = os.path.join(SRC, 'models', 'iris.json')
SCHEMA = os.path.join(SRC, 'sql', 'schema.sql')
BATCH = json.dumps({'instances': [[5.1, 3.5, 1.4, 0.2]] * 1000}).encode()

t = fc.Tap()
tmp = tempfile.mkdtemp(prefix='mlfcgi-files.')
started = []


def start(db, name):
    m = fc.Mlfcgi(BIN, ['--model', MODEL, '--audit-db', db],
                  os.path.join(tmp, name + '.log'))
    started.append(m)
    if not m.wait_up():
        t.bail('%s: mlfcgi did not start: %s' % (name, m.log_tail()))
    return m


def send(m, prefix, n, body=fc.SETOSA):
    load = fc.Load(m.addr, prefix, 4, n=n, body=body)
    load.wait(60)
    return load


def drain(m):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if fc.metrics(m.addr).get('mlfcgi_audit_queue_depth') == 0:
            return True
        time.sleep(0.05)
    return False


def listing(d, prefix):
    return sorted('%s (%d B)' % (f, os.path.getsize(os.path.join(d, f)))
                  for f in os.listdir(d) if f.startswith(prefix))


def rows(db, prefix):
    """Rows whose request_id starts with prefix, or an error string."""
    if not os.path.exists(db):
        return 'no file'
    counts = fc.row_counts(db, "request_id LIKE '%s%%'" % prefix)
    if counts is None:
        return 'unreadable: ' + fc.sql(db, 'SELECT 1 FROM predictions')[1]
    return sum(counts.values())


def serving(m, load, desc):
    t.ok(load.statuses == {200: load.sent()} and m.alive(), '%s: %d '
         'predictions answered 200, mlfcgi alive (%s)' % (
             desc, load.sent(), load.statuses))
    r = fc.get(m.addr, '/ready')
    met = fc.metrics(m.addr)
    t.diag('%s: /ready %d %s; /metrics: %d rows written, %d failures' % (
        desc, r.status, r.body[:80].decode(errors='replace'),
        met.get('mlfcgi_audit_rows_written_total', -1),
        met.get('mlfcgi_audit_commit_failures_total', -1)))


def stop(m, desc):
    t.is_(m.stop(), 0, '%s: SIGTERM: exit status 0' % desc)


def part_deleted():
    d = 'D (deleted)'
    dd = os.path.join(tmp, 'D')
    os.makedirs(dd)
    db = os.path.join(dd, 'audit.db')
    m = start(db, 'D')
    send(m, 'd-pre', 20)
    drain(m)
    for f in (db, db + '-wal', db + '-shm'):
        os.unlink(f)
    post = send(m, 'd-post', 20)
    drain(m)
    serving(m, post, d)
    t.ok(rows(db, 'd-post') == 20, '%s: the 20 rows written after the '
         'deletion are in a database at the path (got: %s)' % (
             d, rows(db, 'd-post')))
    stop(m, d)
    t.diag('%s: after the stop, at the path: %s' % (d, listing(dd, 'audit')
                                                    or 'nothing'))


def part_moved():
    d = 'M (moved)'
    dd = os.path.join(tmp, 'M')
    os.makedirs(dd)
    db = os.path.join(dd, 'audit.db')
    m = start(db, 'M')
    send(m, 'm-pre', 20)
    drain(m)
    os.rename(db, db + '.1')
    post = send(m, 'm-post', 20)
    drain(m)
    serving(m, post, d)
    reopens = fc.metrics(m.addr).get('mlfcgi_audit_reopens_total', -1)
    t.ok(reopens >= 1, '%s: /metrics counts the reopening '
         '(mlfcgi_audit_reopens_total %s)' % (d, reopens))
    stop(m, d)
    files = listing(dd, 'audit')
    t.diag('%s: after the stop: %s' % (d, files))
    got = rows(db + '.1', 'm-pre')
    t.ok(got == 20, '%s: the rotated file holds the 20 rows committed '
         'before the move (got: %s)' % (d, got))
    got = (rows(db, 'm-post'), rows(db + '.1', 'm-post'))
    t.ok(got == (20, 0), '%s: the 20 rows written after the move are in '
         'a new database at the path, none in the rotated file (got: %s, '
         '%s)' % ((d,) + got))
    t.ok('was moved, deleted or replaced' in m.log_tail(20), '%s: stderr '
         'says the file was moved and where the rows go' % d, m.log_tail(3))

    # A restart at the path, as a service manager would do.
    m = start(db, 'M2')
    again = send(m, 'm-again', 1)
    drain(m)
    serving(m, again, '%s, restarted at the path' % d)
    stop(m, '%s, restarted' % d)
    kept = sum(n for n in (rows(db, 'm-p'), rows(db + '.1', 'm-p'))
               if isinstance(n, int))
    t.ok(kept == 40, '%s: after the restart, the 40 committed rows are '
         'all in audit.db or audit.db.1 (found %d; files now: %s)' % (
             d, kept, listing(dd, 'audit')))


def part_replaced():
    d = 'P (replaced)'
    dd = os.path.join(tmp, 'P')
    os.makedirs(dd)
    db = os.path.join(dd, 'audit.db')
    m = start(db, 'P')
    pre = send(m, 'p-pre', 12, body=BATCH)
    drain(m)
    t.ok(pre.statuses == {200: 12}, '%s: 12,000 rows written first (so that '
         'checkpoints run): %s' % (d, listing(dd, 'audit')))
    new = os.path.join(dd, 'new.db')
    with open(SCHEMA) as f:
        subprocess.run(['sqlite3', new], stdin=f, check=True)
    os.rename(new, db)
    post = send(m, 'p-post', 20)
    drain(m)
    serving(m, post, d)
    stop(m, d)
    rc, out = fc.sql(db, 'PRAGMA integrity_check;')
    t.ok(out == 'ok', '%s: the database now at the path passes PRAGMA '
         'integrity_check (got: %s)' % (d, out[:80]))
    got = rows(db, 'p-post')
    t.ok(got == 20, '%s: the 20 rows written after the replacement are '
         'in the database at the path (got: %s)' % (d, got))


if shutil.which('sqlite3') is None:
    t.bail('sqlite3 not found (Debian package: sqlite3)')
try:
    part_deleted()
    part_moved()
    part_replaced()
finally:
    for m in started:
        if m.alive():
            m.kill9()
    if os.environ.get('MLFCGI_KEEP_TMP') == '1':
        t.diag('kept ' + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
t.done()
