/*
 * spanline._accel.random64 / seed_random: the default source of random 64-bit id
 * parts (spanline.core.ids), xoshiro256** (Blackman and Vigna).
 *
 * Ids must be unique, not unpredictable, as with the random.Random this replaces;
 * a draw is a few shifts instead of a Python call into random.getrandbits.  The
 * state is seeded from os.urandom by spanline.core.ids at import and again in
 * every child after fork.  Every call runs under the GIL.
 */
#include "accel.h"

static uint64_t state[4] = {
    /* until seed_random() runs: any non-zero state works */
    0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL, 0x94D049BB133111EBULL, 0x2545F4914F6CDD1DULL,
};

PyObject *accel_random_fn;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t accel_random64(void) {
    uint64_t result = rotl(state[1] * 5, 7) * 9;
    uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
}

const char random64_doc[] = "random64() -> int\n\nA random integer below 2**64.";

PyObject *random64(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromUnsignedLongLong(accel_random64());
}

const char seed_random_doc[] =
    "seed_random(seed: bytes) -> None\n\nSeed random64() from 32 bytes (os.urandom(32)).";

PyObject *seed_random(PyObject *self, PyObject *seed) {
    (void)self;
    if (!PyBytes_Check(seed) || PyBytes_GET_SIZE(seed) != 32) {
        PyErr_SetString(PyExc_ValueError, "seed_random() takes 32 bytes");
        return NULL;
    }
    uint64_t next[4];
    memcpy(next, PyBytes_AS_STRING(seed), sizeof next);
    if ((next[0] | next[1] | next[2] | next[3]) == 0) {
        PyErr_SetString(PyExc_ValueError, "seed_random() needs a non-zero seed");
        return NULL;
    }
    memcpy(state, next, sizeof state);
    Py_RETURN_NONE;
}
