#!/usr/bin/python3
"""audit_slowdisk.py: the audit log on a slow disk, driving `mlfcgi
--listen` (issue 6, the write path). TAP output.

A WAL checkpoint syncs the WAL, copies it into the database and syncs the
database: on a slow disk, the long part of the audit's writes. mlfcgi runs
checkpoints in their own thread (mlfcgi-ckpt), so that the writer's
commits never wait for those syncs, and the requests never wait for the
writer behind them. slowdisk.c, built here and preloaded into mlfcgi,
makes each fsync()/fdatasync() sleep for the bytes written to its file
since the last one, at 40 MB/s, and logs the thread, the bytes and the
file of each sync. The load is paced at 10,000 rows a second, which such a
disk keeps up with (about 5 MB/s to the WAL, and as much to the database).

S. Default mode: 10,000 rows (100 requests of 100 instances, 4 clients,
   1 s). That is 300-900 WAL frames of 16 KiB (the rows, and a few pages
   rewritten by each commit): past the 256 that wake the checkpointer, and
   short of the 1,024 where the writer would checkpoint itself even if the
   WAL never started over:
   every request is answered 200; after SIGTERM every row is in the
   database, which passes integrity_check; the syncs of 1 MiB or more (the
   checkpoints') were all made by mlfcgi-ckpt, and there were some; the
   writer thread (mlfcgi-audit) made none; /metrics counted the
   checkpointer's checkpoints and none by the writer.
D. The same with --audit-sync, 10,000 rows: the writer syncs each
   commit (that is the mode), the checkpoints stay in mlfcgi-ckpt.

Requests held by the backpressure and the slowest answer are reported,
not asserted (timings). Env: MLFCGI_BIN, SRCDIR. Needs: cc, sqlite3."""

import json
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
BIG = 1 << 20                   # a sync this large is a checkpoint's
BATCH = 100
BODY = json.dumps({'instances': [[5.1, 3.5, 1.4, 0.2],
                                 [6.3, 3.3, 6.0, 2.5]] * (BATCH // 2)}
                  ).encode()

t = fc.Tap()
tmp = tempfile.mkdtemp(prefix='mlfcgi-slowdisk.')
started = []


def build_shim():
    """cc slowdisk.c -> tmp/slowdisk.so; returns its path, or None."""
    so = os.path.join(tmp, 'slowdisk.so')
    r = subprocess.run([os.environ.get('CC', 'cc'), '-O2', '-shared',
                        '-fPIC', '-o', so,
                        os.path.join(SRC, 'tests', 'integration',
                                     'slowdisk.c'), '-ldl'],
                       capture_output=True, text=True)
    if r.returncode != 0:
        t.diag(r.stderr.strip())
        return None
    return so


def preload(so):
    """LD_PRELOAD for so: after the sanitizer runtime when mlfcgi is built
    with one (its runtime must come first)."""
    first = []
    try:
        out = subprocess.run(['ldd', BIN], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            if ('libasan' in line or 'libubsan' in line or
                    'libtsan' in line) and '=>' in line:
                first.append(line.split('=>')[1].split()[0])
    except OSError:
        pass
    return ':'.join(first + [so])


def syncs(log):
    """[(thread, bytes, path)] from the shim's log."""
    out = []
    if os.path.exists(log):
        for line in open(log, errors='replace'):
            f = line.rstrip('\n').split(' ', 2)
            if len(f) == 3 and f[1].isdigit():
                out.append((f[0], int(f[1]), f[2]))
    return out


def load(addr, requests, clients, rate):
    """requests POSTs of BODY from clients threads, at most rate a second
    in all; returns (statuses, slowest seconds)."""
    lock = threading.Lock()
    state = {'next': 0, 'statuses': {}, 'slowest': 0.0}
    start = time.monotonic()

    def run():
        while True:
            with lock:
                if state['next'] >= requests:
                    return
                state['next'] += 1
                i = state['next']
            # One reading of the clock: read twice, the second could
            # pass due, and a negative sleep raises (and ends the thread).
            ahead = start + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            t0 = time.monotonic()
            r = fc.predict(addr, BODY, 'slow-%d' % i, timeout=60)
            dt = time.monotonic() - t0
            with lock:
                state['statuses'][r.status] = \
                    state['statuses'].get(r.status, 0) + 1
                state['slowest'] = max(state['slowest'], dt)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return state['statuses'], state['slowest']


def wait_checkpoint(addr, seconds=30):
    """/metrics once the checkpointer has completed a checkpoint (or after
    seconds)."""
    deadline = time.time() + seconds
    while True:
        met = fc.metrics(addr)
        if met.get('mlfcgi_audit_checkpoints_total', 0) >= 1 or \
                time.time() > deadline:
            return met
        time.sleep(0.1)


def scenario(tag, args, requests, so):
    db = os.path.join(tmp, tag + '.db')
    log = os.path.join(tmp, tag + '.syncs')
    m = fc.Mlfcgi(BIN, ['--model', MODEL, '--audit-db', db] + args,
                  os.path.join(tmp, tag + '.log'),
                  env={'LD_PRELOAD': preload(so), 'SLOWDISK_MBPS': '40',
                       'SLOWDISK_LOG': log})
    started.append(m)
    if not t.ok(m.wait_up(), '%s: mlfcgi starts with the slow disk' % tag,
                *m.log_tail()):
        return
    statuses, slowest = load(m.addr, requests, 4, 100)
    t.is_(statuses, {200: requests},
          '%s: all %d requests answered 200' % (tag, requests))
    met = wait_checkpoint(m.addr)
    wal = os.path.getsize(db + '-wal') if os.path.exists(db + '-wal') else 0
    status = m.stop()
    t.is_(status, 0, '%s: mlfcgi exits 0 on SIGTERM' % tag)
    rc, out = fc.sql(db, 'SELECT count(*) FROM predictions;')
    t.is_(out, str(requests * BATCH),
          '%s: every row is in the database after the stop' % tag)
    rc, out = fc.sql(db, 'PRAGMA integrity_check;')
    t.is_(out, 'ok', '%s: the database passes integrity_check' % tag)

    s = syncs(log)
    big = [x for x in s if x[1] >= BIG]
    by_ckpt = [x for x in big if x[0] == 'mlfcgi-ckpt']
    by_writer = [x for x in s if x[0] == 'mlfcgi-audit']
    t.ok(len(by_ckpt) > 0,
         '%s: checkpoints ran in the checkpointer thread (%d syncs of '
         '1 MiB or more)' % (tag, len(by_ckpt)), *map(str, s[:20]))
    t.is_([x for x in big if x[0] != 'mlfcgi-ckpt' and x[0] != 'mlfcgi'],
          [], '%s: no other thread made a sync of 1 MiB or more (the stop '
          'itself, in the main thread, may)' % tag)
    most = max([x[1] for x in by_writer] or [0])
    t.ok(most < BIG, '%s: the writer thread made no checkpoint: %d syncs, '
         'the largest %d bytes' % (tag, len(by_writer), most))
    t.ok(met.get('mlfcgi_audit_checkpoints_total', 0) >= 1 and
         met.get('mlfcgi_audit_writer_checkpoints_total', -1) == 0,
         '%s: /metrics: %d checkpoints by the checkpointer, %d by the '
         'writer' % (tag, met.get('mlfcgi_audit_checkpoints_total', 0),
                     met.get('mlfcgi_audit_writer_checkpoints_total', -1)))
    t.diag('%s: requests held by the backpressure: %d; slowest answer '
           '%.0f ms; syncs %d, %d bytes; -wal %d bytes (%d frames)' % (
               tag, met.get('mlfcgi_audit_backpressure_waits_total', 0),
               slowest * 1000, len(s), sum(x[1] for x in s), wal,
               wal // (16384 + 24)))


try:
    so = build_shim()
    if not t.ok(so is not None, 'slowdisk.c builds'):
        t.bail('no LD_PRELOAD library')
    scenario('S', [], 100, so)
    scenario('D', ['--audit-sync'], 100, so)
finally:
    for m in started:
        if m.alive():
            m.kill9()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
