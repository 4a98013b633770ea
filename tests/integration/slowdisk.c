/* slowdisk.c: an LD_PRELOAD library that makes the disk slow, for
 * tests/integration/audit_slowdisk.py.
 *
 * fsync() and fdatasync() of a regular file first sleep for the bytes
 * written to that file (through any descriptor: write(), pwrite(),
 * pwrite64()) since its last sync, at SLOWDISK_MBPS megabytes a second
 * (default 10): a disk whose sync costs what it flushes. Each sync is then
 * appended to the file SLOWDISK_LOG, when set, as one line: the calling
 * thread's name, the bytes, the file's path. Built by the test with cc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define FILES 256
/* Bytes written to each file (by any descriptor) since its last sync. */
static struct {
	dev_t			dev;
	ino_t			ino;
	unsigned long long	dirty;
} files[FILES];
static int nfiles;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Adds n to fd's file's count and returns the new count; with reset, sets
 * it to 0 and returns the old one. Caller holds mu. */
static unsigned long long
file_bytes(int fd, unsigned long long n, int reset)
{
	struct stat st;
	unsigned long long old;
	int i;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	for (i = 0; i < nfiles; i++)
		if (files[i].dev == st.st_dev && files[i].ino == st.st_ino)
			break;
	if (i == nfiles) {
		if (nfiles == FILES)
			return 0;
		files[nfiles].dev = st.st_dev;
		files[nfiles].ino = st.st_ino;
		files[nfiles++].dirty = 0;
	}
	old = files[i].dirty;
	files[i].dirty = reset ? 0 : old + n;
	return reset ? old : old + n;
}

static void
account(int fd, ssize_t n)
{
	if (n > 0) {
		pthread_mutex_lock(&mu);
		file_bytes(fd, (unsigned long long)n, 0);
		pthread_mutex_unlock(&mu);
	}
}

static void
slow(int fd)
{
	unsigned long long bytes = 0;
	const char *r = getenv("SLOWDISK_MBPS"), *log = getenv("SLOWDISK_LOG");
	double mbps = r ? atof(r) : 10;
	char name[32] = "", link[64], path[PATH_MAX] = "";
	ssize_t k;

	pthread_mutex_lock(&mu);
	bytes = file_bytes(fd, 0, 1);
	pthread_mutex_unlock(&mu);
	if (mbps > 0 && bytes > 0) {
		double s = (double)bytes / (mbps * 1e6);
		struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
		nanosleep(&ts, NULL);
	}
	if (log != NULL) {
		FILE *f;

		prctl(PR_GET_NAME, name, 0, 0, 0);
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		if ((k = readlink(link, path, sizeof(path) - 1)) > 0)
			path[k] = '\0';
		if ((f = fopen(log, "a")) != NULL) {
			fprintf(f, "%s %llu %s\n", name, bytes, path);
			fclose(f);
		}
	}
}

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*sync_fn)(int);

/* The next definition of name (libc's), looked up once into *slot. */
static void *
next_fn(void **slot, const char *name)
{
	if (*slot == NULL)
		*slot = dlsym(RTLD_NEXT, name);
	return *slot;
}

static ssize_t
pwrite_counted(void **slot, const char *name, int fd, const void *b,
    size_t n, off_t o)
{
	ssize_t r = ((pwrite_fn)next_fn(slot, name))(fd, b, n, o);

	account(fd, r);
	return r;
}

static int
sync_slowly(void **slot, const char *name, int fd)
{
	slow(fd);
	return ((sync_fn)next_fn(slot, name))(fd);
}

ssize_t
pwrite64(int fd, const void *b, size_t n, off_t o)
{
	static void *next;

	return pwrite_counted(&next, "pwrite64", fd, b, n, o);
}

ssize_t
pwrite(int fd, const void *b, size_t n, off_t o)
{
	static void *next;

	return pwrite_counted(&next, "pwrite", fd, b, n, o);
}

ssize_t
write(int fd, const void *b, size_t n)
{
	static void *next;
	ssize_t r = ((write_fn)next_fn(&next, "write"))(fd, b, n);

	account(fd, r);
	return r;
}

int
fsync(int fd)
{
	static void *next;

	return sync_slowly(&next, "fsync", fd);
}

int
fdatasync(int fd)
{
	static void *next;

	return sync_slowly(&next, "fdatasync", fd);
}
