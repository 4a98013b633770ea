#!/usr/bin/python3
"""audit_retain.py: --audit-retain-days N, the audit log's growth policy
(issue 5, "Growth"): the writer deletes rows older than N days, in small
batches, at start and then at most once a minute. TAP output.

A database made beforehand holds 12,000 rows 30 days old (more than two
delete batches), rows just over and just under 7 days old, and rows a day
old. mlfcgi --audit-retain-days 7 deletes exactly the rows over 7 days
within a few seconds of starting, answering predictions meanwhile; rows
inserted 30 days old while it runs stay (no second pass within the
minute); new predictions are logged. Without the option nothing is
deleted. Bad values are refused.

Env: MLFCGI_BIN, SRCDIR, BUILDDIR. Needs: sqlite3."""

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

t = fc.Tap()
tmp = tempfile.mkdtemp(prefix='mlfcgi-retain.')
started = []


def insert(db, prefix, n, age):
    """n rows PREFIX-1..n with ts = now - age (an SQLite modifier)."""
    rc, out = fc.sql(db, """
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c
                                WHERE i < %d)
        INSERT INTO predictions (ts, request_id, model, version, input,
                                 output, latency_us, cached, pid)
        SELECT strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', 'now', '%s'),
               '%s-' || i, 'iris', '1.0.0', '{}', '{}', 1, 0, 1 FROM c;""" % (
        n, age, prefix))
    if rc != 0:
        t.bail('cannot insert test rows: ' + out)


def count(db, prefix):
    rc, out = fc.sql(db, "SELECT count(*) FROM predictions WHERE "
                     "request_id LIKE '%s-%%';" % prefix)
    return int(out) if rc == 0 else out


def make_db(path):
    with open(SCHEMA) as f:
        subprocess.run(['sqlite3', path], stdin=f, check=True)
    insert(path, 'old', 12000, '-30 days')
    insert(path, 'over7', 10, '-169 hours')     # 7 days + 1 hour
    insert(path, 'under7', 10, '-167 hours')    # 7 days - 1 hour
    insert(path, 'recent', 10, '-1 day')


def start(db, args, name):
    m = fc.Mlfcgi(BIN, ['--model', MODEL, '--audit-db', db] + args,
                  os.path.join(tmp, name + '.log'))
    started.append(m)
    if not m.wait_up():
        t.bail('%s: mlfcgi did not start: %s' % (name, m.log_tail()))
    return m


def main():
    if '--audit-retain-days' not in fc.mlfcgi_help(BIN):
        t.skip('--audit-retain-days', 'not in this mlfcgi')
        return
    db = os.path.join(tmp, 'keep.db')
    make_db(db)

    # No retention: nothing is deleted.
    m = start(db, [], 'keep')
    r = fc.predict(m.addr, request_id='keep-1')
    time.sleep(2)
    t.is_(count(db, 'old'), 12000, 'without --audit-retain-days, 30-day-old '
          'rows stay')
    t.is_(m.stop(), 0, 'SIGTERM: exit status 0')

    db = os.path.join(tmp, 'retain.db')
    make_db(db)
    m = start(db, ['--audit-retain-days', '7'], 'retain')
    t0 = time.monotonic()
    load = fc.Load(m.addr, 'new', 2, n=200)
    deadline = t0 + 10
    while time.monotonic() < deadline and count(db, 'old') != 0:
        time.sleep(0.1)
    took = time.monotonic() - t0
    load.wait(30)
    t.is_(count(db, 'old'), 0, '--audit-retain-days 7: the 12,000 rows 30 '
          'days old are deleted (%.1f s after the start)' % took)
    t.is_(count(db, 'over7'), 0, 'rows 7 days and 1 hour old are deleted')
    t.is_(count(db, 'under7'), 10, 'rows 7 days less 1 hour old stay')
    t.is_(count(db, 'recent'), 10, 'rows a day old stay')
    t.ok(load.statuses == {200: 200}, 'predictions during the deletion '
         'are answered 200 (%s)' % load.statuses)
    r = fc.get(m.addr, '/ready')
    t.is_(r.status, 200, '/ready is 200')

    # A second pass comes at most once a minute.
    insert(db, 'late', 100, '-30 days')
    more = fc.Load(m.addr, 'more', 2, n=100)
    more.wait(30)
    time.sleep(2)
    t.is_(count(db, 'late'), 100, 'rows 30 days old inserted while running '
          'stay for now (at most one pass a minute)')
    t.is_(m.stop(), 0, 'SIGTERM: exit status 0')
    t.is_(count(db, 'new') + count(db, 'more'), 300, 'every prediction was '
          'logged')
    rc, out = fc.sql(db, 'PRAGMA integrity_check;')
    t.is_(out, 'ok', 'PRAGMA integrity_check')

    # At the next start, those go too.
    m = start(db, ['--audit-retain-days', '7'], 'retain2')
    gone = False
    for _ in range(50):
        if count(db, 'late') == 0:
            gone = True
            break
        time.sleep(0.1)
    t.ok(gone, 'at the next start they are deleted')
    t.is_(m.stop(), 0, 'SIGTERM: exit status 0')

    for bad in ('x', '-1', '36501'):
        r = subprocess.run([BIN, '--model', MODEL, '--audit-db', db,
                            '--audit-retain-days', bad, '--check'],
                           capture_output=True, text=True,
                           env=fc.clean_env())
        t.ok(r.returncode == 2 and '--audit-retain-days' in r.stderr,
             '--audit-retain-days %s is refused, naming the option' % bad,
             r.stderr)


try:
    main()
finally:
    for m in started:
        if m.alive():
            m.kill9()
    if os.environ.get('MLFCGI_KEEP_TMP') == '1':
        t.diag('kept ' + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
t.done()
