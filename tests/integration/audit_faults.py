#!/usr/bin/python3
"""audit_faults.py: the audit writer under storage faults, driving
`mlfcgi --listen` (issue 5, "Audit durability: Faults"). TAP output.

The policy under test (README section 4): requests keep being answered
200; rows stay queued and are retried; /ready answers 503 while the writer
fails; rows are dropped, and counted, only when the queue is full, or at
exit after 10 s of failure. In each case mlfcgi must not crash, /ready and
/metrics must show the fault, and every queued row must land once the
fault is gone.

F. A full disk: an 8 MB tmpfs, filled, while predictions go on; then space
   is freed and the queued rows land.
R. A read-only database:
   R1 the file and its -wal made immutable (chattr +i, ext4 on a loop
      device) while running, then writable again;
   R2 chmod 0444 of the file, -wal and -shm while running (mlfcgi not
      root): no effect on the open connection, rows keep landing; then a
      start on a 0444 database: mlfcgi serves, /ready 503, rows queued;
      after chmod 0644 the writer's next retry reopens it and they land;
   R3 the file system turned read-only by the kernel (ext4 errors=
      remount-ro, trigger_fs_error) for good: SIGTERM gives the queued
      rows up after 10 s of failure, and says how many.
L. The database write-locked for 10 s by another sqlite3 process:
   requests are answered meanwhile, /ready goes 503 after the 5 s busy
   timeout, every row lands after the lock is released; the same with
   --audit-sync (a request waits at most 10 s for its row; every 200
   answered has its row; what the 503s and the probes get is reported).

Needs root (mount, losetup, chattr, setpriv) for F and R; without it
those parts are skipped. Env: MLFCGI_BIN, SRCDIR, BUILDDIR. Needs:
sqlite3, e2fsprogs (mkfs.ext4, chattr), util-linux (mount, losetup)."""

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgi_client as fc  # noqa: E402

SRC, BIN = fc.paths()
MODEL = os.path.join(SRC, 'models', 'iris.json')

t = fc.Tap()
tmp = tempfile.mkdtemp(prefix='mlfcgi-faults.')
os.chmod(tmp, 0o755)
started = []
mounts = []
loops = []


def start(db, args=(), user=None, name='mlfcgi'):
    m = fc.Mlfcgi(BIN, ['--model', MODEL, '--audit-db', db] + list(args),
                  os.path.join(tmp, name + '.log'), user=user)
    started.append(m)
    return m


def up(m, desc):
    if not m.wait_up():
        t.bail('%s: mlfcgi did not start: %s' % (desc, m.log_tail()))
    return m


def audit_metrics(m):
    met = fc.metrics(m.addr)
    return {k[len('mlfcgi_audit_'):]: v for k, v in met.items()
            if k.startswith('mlfcgi_audit_')}


def wait_for(pred, seconds, step=0.1):
    deadline = time.monotonic() + seconds
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def drained(m):
    return audit_metrics(m).get('queue_depth') == 0


def ready(m):
    return fc.get(m.addr, '/ready')


def send(m, prefix, n, concurrency=4):
    """n predictions, ids PREFIX-1..n; returns the Load (finished)."""
    load = fc.Load(m.addr, prefix, concurrency, n=n)
    load.wait(60)
    return load


def check_landed(db, ids, desc):
    counts = fc.row_counts(db) or {}
    missing = [r for r in ids if r not in counts]
    t.ok(not missing, '%s: every acknowledged row is in the database '
         '(%d of %d)' % (desc, len(ids) - len(missing), len(ids)),
         'missing: %r' % missing[:5])


def check_fault_seen(m, desc, why_pattern=None):
    """/ready 503 and failures in /metrics (each waited for up to 3 s);
    mlfcgi alive."""
    r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(
        ready(m)), 3) or ready(m)
    t.ok(r.status == 503 and b'"ready":false' in r.body and
         (why_pattern is None or why_pattern in r.body),
         '%s: /ready is 503 with the reason (%s)' % (desc, r.body[:100]))
    # The writer's first attempt may still be ahead (it gathers rows for
    # a few ms, or a start on a read-only file had no row to try yet).
    wait_for(lambda: audit_metrics(m).get('commit_failures_total', 0) > 0,
             3)
    a = audit_metrics(m)
    t.ok(a.get('commit_failures_total', 0) > 0 and
         a.get('queue_depth', 0) > 0 and a.get('rows_dropped_total') == 0,
         '%s: /metrics: commit failures %s, %s rows queued, %s dropped' % (
             desc, a.get('commit_failures_total'), a.get('queue_depth'),
             a.get('rows_dropped_total')))
    t.ok(m.alive(), '%s: mlfcgi is alive' % desc)


def check_recovered(m, db, ids, desc, seconds=10):
    ok = wait_for(lambda: drained(m) and ready(m).status == 200, seconds)
    a = audit_metrics(m)
    t.ok(ok, '%s: the queue drains and /ready is 200 again within %d s '
         '(%s rows queued)' % (desc, seconds, a.get('queue_depth')))
    t.is_(a.get('rows_dropped_total'), 0.0, '%s: no row dropped' % desc)
    check_landed(db, ids, desc)
    rc, out = fc.sql(db, 'PRAGMA integrity_check;')
    t.is_(out, 'ok', '%s: PRAGMA integrity_check' % desc)


def all_200(load, desc):
    t.ok(set(load.statuses) == {200}, '%s: all %d predictions answered 200 '
         '(%s)' % (desc, load.sent(), load.statuses))


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def mount_tmpfs(path, size):
    os.makedirs(path)
    r = run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0755' % size,
             'mlfcgi-test', path])
    if r.returncode == 0:
        mounts.append(path)
    return r.returncode == 0


def mount_ext4(path, size_mb=32):
    """An ext4 image on a loop device, errors=remount-ro. Returns the loop
    device name (loopN) or None."""
    img = path + '.img'
    os.makedirs(path)
    with open(img, 'wb') as f:
        f.truncate(size_mb << 20)
    if run(['mkfs.ext4', '-q', '-F', img]).returncode != 0:
        return None
    r = run(['losetup', '-f', '--show', img])
    if r.returncode != 0:
        return None
    dev = r.stdout.strip()
    loops.append(dev)
    if run(['mount', '-o', 'errors=remount-ro', dev, path]).returncode != 0:
        return None
    mounts.append(path)
    return os.path.basename(dev)


def fill(path):
    """Fills the file system of path; returns the bytes written."""
    n = 0
    with open(path, 'wb', buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            block = b'\0' * size
            try:
                while True:
                    n += f.write(block)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    return n


# ---------------------------------------------------------------------------

def part_full():
    d = 'F (full disk)'
    mnt = os.path.join(tmp, 'full')
    # 8 MB: once the filler goes, room for the 3,220 rows' WAL however the
    # commits split them (up to the checkpointer's 4 MiB) and the database.
    # In 2 MB the rows' WAL took 1.84 MB with large commits; smaller ones
    # (ThreadSanitizer on a busy machine) filled it again with 102 rows
    # still queued, which could then never land.
    if not mount_tmpfs(mnt, '8m'):
        t.skip('F: a full disk', 'cannot mount a tmpfs (not root?)')
        return
    db = os.path.join(mnt, 'audit.db')
    m = up(start(db, name='full'), d)
    pre = send(m, 'f-pre', 20)
    wait_for(lambda: drained(m), 5)
    n = fill(os.path.join(mnt, 'fill'))
    t.diag('%s: filled the 8 MB tmpfs with %d bytes' % (d, n))
    load = send(m, 'f', 3000)
    all_200(load, '%s: disk full' % d)
    check_fault_seen(m, d, b'full')
    # Rows keep queueing while the disk is full.
    more = send(m, 'f-more', 200)
    all_200(more, '%s: still full' % d)
    os.unlink(os.path.join(mnt, 'fill'))
    check_recovered(m, db, pre.acked + load.acked + more.acked,
                    '%s: space freed' % d)
    t.is_(m.stop(), 0, '%s: SIGTERM: exit status 0' % d)


def part_readonly_immutable(dev, mnt):
    d = 'R1 (chattr +i)'
    db = os.path.join(mnt, 'r1.db')
    m = up(start(db, name='r1'), d)
    pre = send(m, 'r1-pre', 20)
    wait_for(lambda: drained(m), 5)
    files = [db, db + '-wal']
    r = run(['chattr', '+i'] + files)
    if r.returncode != 0:
        t.skip(d, 'chattr +i failed: ' + r.stderr.strip())
        m.stop()
        return
    try:
        load = send(m, 'r1', 300)
        all_200(load, '%s: database immutable' % d)
        check_fault_seen(m, d)
    finally:
        run(['chattr', '-i'] + files)
    check_recovered(m, db, pre.acked + load.acked, '%s: writable again' % d)
    t.is_(m.stop(), 0, '%s: SIGTERM: exit status 0' % d)


def part_readonly_chmod():
    d = 'R2 (chmod 0444)'
    user = 'www-data'
    if run(['id', user]).returncode != 0 or shutil.which('setpriv') is None:
        t.skip(d, 'no user %s or no setpriv' % user)
        return
    dird = os.path.join(tmp, 'r2')
    os.makedirs(dird)
    shutil.chown(dird, user, user)
    db = os.path.join(dird, 'r2.db')
    m = up(start(db, user=user, name='r2'), d)
    pre = send(m, 'r2-pre', 20)
    wait_for(lambda: drained(m), 5)
    for f in (db, db + '-wal', db + '-shm'):
        os.chmod(f, 0o444)
    load = send(m, 'r2', 100)
    all_200(load, '%s while running' % d)
    ok = wait_for(lambda: drained(m), 5)
    t.ok(ok and ready(m).status == 200, '%s while running: no effect on the '
         'open connection: rows keep landing, /ready 200' % d)
    check_landed(db, pre.acked + load.acked, '%s while running' % d)
    t.is_(m.stop(), 0, '%s: SIGTERM: exit status 0' % d)

    # A start on a read-only database (the -wal and -shm are gone after a
    # clean stop; chmod whatever is left).
    for f in os.listdir(dird):
        os.chmod(os.path.join(dird, f), 0o444)
    d = 'R2 (start on a 0444 database)'
    m = start(db, user=user, name='r2b')
    if not m.wait_up(5):
        t.ok(False, '%s: mlfcgi starts, serving, with the writer retrying '
             '(exit %s: %s)' % (d, m.proc.poll(), m.log_tail(2)))
        return
    load = send(m, 'r2b', 20)
    all_200(load, d)
    check_fault_seen(m, d, b'readonly')
    for f in os.listdir(dird):
        os.chmod(os.path.join(dird, f), 0o644)
    # The writer reopens the database on each retry (backoff up to 1 s).
    check_recovered(m, db, load.acked, '%s: chmod 0644' % d, seconds=8)
    t.ok('rows will be queued until it is writable' in m.log_tail(20),
         '%s: stderr says the rows wait for a writable database' % d,
         m.log_tail(3))
    t.is_(m.stop(), 0, '%s: SIGTERM: exit status 0' % d)


def part_readonly_kernel(dev, mnt):
    d = 'R3 (kernel remount-ro)'
    trigger = '/sys/fs/ext4/%s/trigger_fs_error' % dev
    if not os.path.exists(trigger):
        t.skip(d, 'no ' + trigger)
        return
    db = os.path.join(mnt, 'r3.db')
    m = up(start(db, name='r3'), d)
    pre = send(m, 'r3-pre', 20)
    wait_for(lambda: drained(m), 5)
    with open(trigger, 'w') as f:
        f.write('mlfcgi audit_faults.py R3')
    load = send(m, 'r3', 50)
    all_200(load, '%s: file system read-only' % d)
    check_fault_seen(m, d)
    queued = audit_metrics(m).get('queue_depth')
    t0 = time.monotonic()
    st = m.stop(30)
    took = time.monotonic() - t0
    log = m.log_tail(5)
    t.ok(st != 'timeout' and took < 15, '%s: SIGTERM: mlfcgi exits within '
         '15 s (%.1f s, status %s)' % (d, took, st))
    t.ok('giving up on %d queued rows' % queued in log, '%s: stderr says '
         'how many queued rows were given up (%d)' % (d, queued), log)
    t.diag('%s: exit status after giving rows up: %s' % (d, st))
    counts = fc.row_counts(db) or {}
    t.ok(all(r in counts for r in pre.acked), '%s: the rows committed '
         'before the fault are readable' % d)


def part_readonly():
    mnt = os.path.join(tmp, 'ro')
    dev = mount_ext4(mnt) if os.geteuid() == 0 else None
    if dev is None:
        t.skip('R1, R3: read-only database on ext4', 'no loop device or '
               'not root')
    else:
        part_readonly_immutable(dev, mnt)
    if os.geteuid() == 0:
        part_readonly_chmod()
    else:
        t.skip('R2: chmod 0444', 'not root')
    if dev is not None:
        part_readonly_kernel(dev, mnt)


# ---------------------------------------------------------------------------

class Prober(threading.Thread):
    """Until stop: a prediction every 50 ms (status, latency) and /ready
    every 100 ms (time since start, status)."""

    def __init__(self, m, prefix):
        super().__init__(daemon=True)
        self.m, self.prefix = m, prefix
        self.preds, self.ready, self.acked = [], [], []
        self.stopping = False
        self.t0 = time.monotonic()
        self.start()

    def run(self):
        i = 0
        while not self.stopping:
            i += 1
            rid = '%s-%d' % (self.prefix, i)
            t1 = time.monotonic()
            r = fc.predict(self.m.addr, request_id=rid, timeout=30)
            self.preds.append((r.status, time.monotonic() - t1, t1 - self.t0))
            if r.status == 200:
                self.acked.append(rid)
            r = ready(self.m)
            self.ready.append((time.monotonic() - self.t0, r.status))
            time.sleep(0.05)

    def stop(self):
        self.stopping = True
        self.join(60)


class ReadyPoller(threading.Thread):
    def __init__(self, m):
        super().__init__(daemon=True)
        self.m, self.seen, self.stopping = m, [], False
        self.t0 = time.monotonic()
        self.start()

    def run(self):
        while not self.stopping:
            self.seen.append((time.monotonic() - self.t0,
                              ready(self.m).status))
            time.sleep(0.1)

    def stop(self):
        self.stopping = True
        self.join(30)


def part_lock():
    d = 'L (10 s write lock)'
    db = os.path.join(tmp, 'lock.db')
    m = up(start(db, name='lock'), d)
    sync = '--audit-sync' in fc.mlfcgi_help(BIN)
    dbs = os.path.join(tmp, 'lock-sync.db')
    ms = up(start(dbs, ['--audit-sync', '--threads', '4'],
                  name='lock-sync'), d) if sync else None
    pre = send(m, 'l-pre', 20)
    if ms:
        send(ms, 'ls-pre', 20)
    wait_for(lambda: drained(m), 5)
    lock = fc.Locker(db)
    lock_s = fc.Locker(dbs) if ms else None
    if not lock.ok or (lock_s and not lock_s.ok):
        t.bail('L: sqlite3 could not take the write lock')
    probe = Prober(m, 'l')
    poll = ReadyPoller(m)
    if ms:
        sload = fc.Load(ms.addr, 'ls', 8)
    time.sleep(3)
    if ms:
        # 8 clients, 4 request threads, each waiting for its row.
        t1 = time.monotonic()
        health = fc.get(ms.addr, '/health', timeout=3)
        health_s = time.monotonic() - t1
    time.sleep(max(0, 10 - (time.monotonic() - probe.t0)))
    held = lock.release()
    if lock_s:
        held_s = lock_s.release()
    t_release = time.monotonic() - probe.t0
    time.sleep(1)
    probe.stop()
    poll.stop()
    if ms:
        sload.stop(30)

    during = [p for p in probe.preds if p[2] < t_release]
    slow = [p for p in during if p[0] != 200 or p[1] > 1.0]
    t.ok(len(during) > 50 and not slow, '%s: %d predictions during the lock, '
         'all 200 in under 1 s (slowest %.3f s)' % (
             d, len(during), max([p[1] for p in during] or [0])),
         repr(slow[:5]))
    ready_during = [r for r in poll.seen if r[0] < t_release]
    first503 = next((r[0] for r in ready_during if r[1] == 503), None)
    t.ok(first503 is not None and 4.5 <= first503 <= 10.5,
         '%s: /ready goes 503 after the 5 s busy timeout (first 503 at '
         '%s s)' % (d, '%.1f' % first503 if first503 else 'never'))
    early = [r for r in ready_during if r[0] < 4.5 and r[1] != 200]
    t.ok(not early, '%s: /ready is 200 before the busy timeout runs out'
         % d, repr(early[:5]))
    a = audit_metrics(m)
    t.ok(a.get('commit_failures_total', 0) >= 1, '%s: /metrics counts the '
         'busy commits as failures (%s)' % (d, a.get(
             'commit_failures_total')))
    check_recovered(m, db, pre.acked + probe.acked, '%s: lock released '
                    'after %.1f s' % (d, held))
    t.is_(m.stop(), 0, '%s: SIGTERM: exit status 0' % d)

    if not ms:
        t.skip('L --audit-sync', '--audit-sync not in this mlfcgi')
        return
    d = 'L --audit-sync'
    st = dict(sload.statuses)
    t.ok(set(st) <= {200, 503} and ms.alive(), '%s: during a %.1f s lock, '
         'requests are answered 200 or 503, mlfcgi alive (%s)' % (
             d, held_s, st))
    t.ok(st.get(200, 0) > 0, '%s: requests answered 200 once the lock is '
         'released (%d)' % (d, st.get(200, 0)))
    t.ok(health.status == 200, '%s: /health is answered during the lock, '
         'with more clients than request threads (got %s after %.1f s)' % (
             d, health.status or health.error, health_s))
    wait_for(lambda: drained(ms), 10)
    check_landed(dbs, sload.acked, '%s: every 200' % d)
    counts = fc.row_counts(dbs) or {}
    r503 = [r for r, s in sload.refused.items() if s == 503]
    logged = [r for r in r503 if r in counts]
    t.diag('%s: %d requests answered 503 after waiting 10 s; %d of them '
           'have their rows in the database all the same (committed once '
           'the lock went)' % (d, len(r503), len(logged)))
    t.is_(ms.stop(), 0, '%s: SIGTERM: exit status 0' % d)


try:
    part_full()
    part_readonly()
    part_lock()
finally:
    for m in started:
        if m.alive():
            m.kill9()
    for mnt in reversed(mounts):
        run(['umount', mnt])
    for dev in loops:
        run(['losetup', '-d', dev])
    if os.environ.get('MLFCGI_KEEP_TMP') == '1':
        t.diag('kept ' + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
t.done()
