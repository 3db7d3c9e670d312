/* The shared region of a process pool: mapping it, the robust lock, futex
 * wake-ups, named overflow segments, and the parent's arena allocator. */
#include "native_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MIN_ARENA (64ULL << 20)
#define MIN_WINDOW (8ULL << 20)

/* Map the region for nworkers workers.  The arena and windows are only
 * address space until touched; if the kernel refuses that much (strict
 * overcommit), smaller areas are tried, and bigger payloads go to named
 * segments.  Returns -1 with errno set. */
int
ne_region_map(ne_region *r, int nworkers)
{
    uint64_t control = ne_align(sizeof(ne_shm))
                       + ne_align(sizeof(ne_wslot) * (uint64_t)nworkers)
                       + ne_align(sizeof(ne_slot) * NE_SLOTS);
    control = (control + 4095) & ~4095ULL;
    uint64_t arena = NE_ARENA_MAX, window = NE_WINDOW_MAX;
    void *base = MAP_FAILED;
    for (;;) {
        uint64_t size = control + arena + window * (uint64_t)nworkers;
        base = mmap(NULL, size, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base != MAP_FAILED) {
            r->size = size;
            break;
        }
        if (errno != ENOMEM || (arena <= MIN_ARENA && window <= MIN_WINDOW)) {
            return -1;
        }
        arena = arena > MIN_ARENA ? arena / 2 : arena;
        window = window > MIN_WINDOW ? window / 2 : window;
    }
    r->base = base;
    r->nworkers = nworkers;
    r->shm = (ne_shm *)r->base;
    r->workers = (ne_wslot *)(r->base + ne_align(sizeof(ne_shm)));
    r->slots = (ne_slot *)((char *)r->workers + ne_align(sizeof(ne_wslot) * (uint64_t)nworkers));
    r->arena_offset = control;
    r->arena_size = arena;
    for (int w = 0; w < nworkers; w++) {
        r->workers[w].window_offset = control + arena + window * (uint64_t)w;
        r->workers[w].window_size = window;
    }

    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&r->shm->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(r->base, r->size);
        r->base = NULL;
        errno = rc;
        return -1;
    }
    return 0;
}

void
ne_region_unmap(ne_region *r)
{
    if (r->base != NULL) {
        munmap(r->base, r->size);
        r->base = NULL;
    }
}

/* A process that died holding the lock leaves it EOWNERDEAD: every update
 * under it is crash-consistent (see shm.h), so the state is usable as is. */
void
ne_shm_lock(ne_shm *shm)
{
    if (pthread_mutex_lock(&shm->lock) == EOWNERDEAD) {
        pthread_mutex_consistent(&shm->lock);
    }
}

void
ne_shm_unlock(ne_shm *shm)
{
    pthread_mutex_unlock(&shm->lock);
}

int
ne_futex_wait(_Atomic uint32_t *word, uint32_t expected, long timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000L;
        ts.tv_nsec = timeout_ns % 1000000000L;
        tsp = &ts;
    }
    return (int)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tsp, NULL, 0);
}

int64_t
ne_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void
futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, count, NULL, NULL, 0);
}

void
ne_futex_ring(_Atomic uint32_t *word, int count)
{
    atomic_fetch_add(word, 1);
    futex_wake(word, count);
}

/* ------------------------------------------------------ named segments */

void *
ne_named_create(char name[NE_NAME_MAX], size_t size)
{
    static _Atomic unsigned long counter;
    snprintf(name, NE_NAME_MAX, "/native_exec-%ld-%lu", (long)getpid(),
             (unsigned long)atomic_fetch_add(&counter, 1));
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        return NULL;
    }
    void *addr = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) == 0) {
        addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    int saved = errno;
    close(fd);
    if (addr == MAP_FAILED) {
        shm_unlink(name);
        errno = saved;
        return NULL;
    }
    return addr;
}

void *
ne_named_open(const char *name, size_t size)
{
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0) {
        return NULL;
    }
    void *addr = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    int saved = errno;
    close(fd);
    if (addr == MAP_FAILED) {
        errno = saved;
        return NULL;
    }
    return addr;
}

void
ne_named_release(void *addr, size_t size)
{
    munmap(addr, size);
}

void
ne_named_unlink(const char *name)
{
    if (name[0] != '\0') {
        shm_unlink(name);
    }
}

/* ------------------------------------------------------------ the arena */

int
ne_arena_init(ne_arena *a, uint64_t offset, uint64_t size)
{
    a->offset = offset;
    a->size = size;
    a->free = PyMem_RawMalloc(sizeof(ne_extent));
    if (a->free == NULL) {
        return -1;
    }
    a->free->next = NULL;
    a->free->offset = offset;
    a->free->length = size;
    return 0;
}

void
ne_arena_fini(ne_arena *a)
{
    while (a->free != NULL) {
        ne_extent *next = a->free->next;
        PyMem_RawFree(a->free);
        a->free = next;
    }
}

/* First fit: the lowest free offset, so the pages already touched are the
 * ones reused.  Returns -1 when no extent is large enough. */
int
ne_arena_alloc(ne_arena *a, uint64_t length, uint64_t *offset)
{
    length = ne_align(length);
    for (ne_extent **pp = &a->free; *pp != NULL; pp = &(*pp)->next) {
        ne_extent *e = *pp;
        if (e->length < length) {
            continue;
        }
        *offset = e->offset;
        e->offset += length;
        e->length -= length;
        if (e->length == 0) {
            *pp = e->next;
            PyMem_RawFree(e);
        }
        return 0;
    }
    return -1;
}

void
ne_arena_free(ne_arena *a, uint64_t offset, uint64_t length)
{
    length = ne_align(length);
    ne_extent *prev = NULL, *next = a->free;
    while (next != NULL && next->offset < offset) {
        prev = next;
        next = next->next;
    }
    if (prev != NULL && prev->offset + prev->length == offset) {
        prev->length += length;
        if (next != NULL && prev->offset + prev->length == next->offset) {
            prev->length += next->length;
            prev->next = next->next;
            PyMem_RawFree(next);
        }
        return;
    }
    if (next != NULL && offset + length == next->offset) {
        next->offset = offset;
        next->length += length;
        return;
    }
    ne_extent *e = PyMem_RawMalloc(sizeof(ne_extent));
    if (e == NULL) {
        return;  /* the space is lost to this pool, nothing worse */
    }
    e->offset = offset;
    e->length = length;
    e->next = next;
    if (prev != NULL) {
        prev->next = e;
    }
    else {
        a->free = e;
    }
}
