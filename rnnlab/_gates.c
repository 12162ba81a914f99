/* rnnlab._gates — optional compiled kernels for the elementwise gate math of one
 * LSTM or GRU time step, fused into one pass over the batch.
 *
 * The recurrent GEMM stays in NumPy (BLAS); these functions do what the pure-NumPy
 * kernels in cells.py do with ten or more ufunc calls per step, reading and writing
 * each value once. The math is the same, written in the same order; only tanh comes
 * from the C library (glibc's vector libmvec where available) instead of NumPy's own,
 * so results agree with the NumPy path to a few units in the last place, and the
 * float64 versions are checked against torch.nn like the NumPy path.
 *
 * Arguments are passed as Python ints: buffer addresses (0 = absent) and sizes.
 * All (B, ·) blocks are C-contiguous rows of the stated width unless a stride is
 * given. The sigmoid gates arrive with their pre-activations already halved
 * (cells._Kernel.prepare_weights), so σ = ½·tanh(·) + ½ as in the NumPy path.
 *
 * LSTM, gates i, f, g, o (width G·H = 4H):
 *   lstm_forward(dbl, B, H, act, gx, c_prev, c, tanh_c, h, fac, P)
 *     act   (B,4H) in: h_{t−1}·W_hhᵀ (scaled); out: activated gates i, f, g, o
 *     gx    (B,4H) input projection of this step, bias included
 *     c = f⊙c_prev + i⊙g, tanh_c = tanh c, h = o⊙tanh_c
 *     fac   (B,4H) or 0: backward factors [g·i(1−i), c_prev·f(1−f), i·(1−g²), tanh_c·o(1−o)]
 *     P     (B,H)  or 0: o⊙(1 − tanh_c²)
 *   lstm_backward(dbl, B, H, dh, dc, dhs, dhs_stride, fac, P, act)
 *     dh ← dh + dhs (dhs: (B,H) rows dhs_stride apart, or 0);  dc ← dc + dh⊙P;
 *     fac[i,f,g] *= dc, fac[o] *= dh (fac becomes dL/d pre-activations);  dc ← dc⊙f.
 *     dh is left holding dh + dhs; the caller then forms dL/dh_{t−1} = fac·W_hh.
 *
 * GRU, gates r, z, n (width 3H):
 *   gru_forward(dbl, B, H, gh, gx, b_hn, h_prev, act, ghn, h, fac)
 *     gh (B,3H) h_{t−1}·W_hhᵀ (r, z scaled), b_hn (H) or 0;
 *     r, z = σ(gx + gh), ghn = gh_n + b_hn, n = tanh(gx_n + r⊙ghn), h = (h_prev − n)⊙z + n
 *     fac (B,3H) or 0: [ghn·r(1−r), (h_prev − n)·z(1−z), (1 − z)(1 − n²)]
 *   gru_backward(dbl, B, H, dh, dhs, dhs_stride, fac, dgh, act, carry)
 *     dh ← dh + dhs; dn = fac_n⊙dh, dz = fac_z⊙dh, dr = fac_r⊙dn → fac = [dr, dz, dn];
 *     dgh = [dr, dz, dn⊙r]; carry = dh⊙z (the direct path h_{t−1} → h_t).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(RNNLAB_LIBMVEC)
/* glibc's libmvec has SIMD tanh/tanhf; declaring them "simd" lets GCC call the vector
 * versions inside the loops marked "omp simd" below. */
#pragma omp declare simd notinbranch
extern float tanhf(float);
#pragma omp declare simd notinbranch
extern double tanh(double);
#define MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MULTIVERSION
#endif

#define RNNLAB_KERNELS(T, SUF, TANH)                                                     \
MULTIVERSION static void lstm_forward_##SUF(                                              \
        Py_ssize_t B, Py_ssize_t H, T *restrict act, const T *restrict gx,               \
        const T *restrict c_prev, T *restrict c, T *restrict tanh_c, T *restrict h,      \
        T *restrict fac, T *restrict P)                                                   \
{                                                                                         \
    const T half = (T)0.5, one = (T)1;                                                    \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        T *a = act + b * 4 * H;                                                           \
        const T *x = gx + b * 4 * H;                                                      \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 0; j < 2 * H; j++) a[j] = TANH(a[j] + x[j]) * half + half;    \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 2 * H; j < 3 * H; j++) a[j] = TANH(a[j] + x[j]);              \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 3 * H; j < 4 * H; j++) a[j] = TANH(a[j] + x[j]) * half + half;\
        const T *cp = c_prev + b * H;                                                     \
        T *cb = c + b * H, *tc = tanh_c + b * H, *hb = h + b * H;                         \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 0; j < H; j++) {                                              \
            T cj = a[H + j] * cp[j] + a[j] * a[2 * H + j];                                \
            cb[j] = cj;                                                                   \
            T t = TANH(cj);                                                               \
            tc[j] = t;                                                                    \
            hb[j] = a[3 * H + j] * t;                                                     \
        }                                                                                 \
        if (fac) {                                                                        \
            T *fb = fac + b * 4 * H, *pb = P + b * H;                                     \
            _Pragma("omp simd")                                                           \
            for (Py_ssize_t j = 0; j < H; j++) {                                          \
                T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], t = tc[j];  \
                fb[j] = (one - i) * i * g;                                                \
                fb[H + j] = (one - f) * f * cp[j];                                        \
                fb[2 * H + j] = (one - g) * (g + one) * i;                                \
                fb[3 * H + j] = (one - o) * o * t;                                        \
                pb[j] = (one - t * t) * o;                                                \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
MULTIVERSION static void lstm_backward_##SUF(                                             \
        Py_ssize_t B, Py_ssize_t H, T *restrict dh, T *restrict dc,                      \
        const T *restrict dhs, Py_ssize_t dhs_stride, T *restrict fac,                    \
        const T *restrict P, const T *restrict act)                                       \
{                                                                                         \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        T *dhb = dh + b * H, *dcb = dc + b * H, *fb = fac + b * 4 * H;                    \
        const T *pb = P + b * H, *f = act + b * 4 * H + H;                                \
        const T *ds = dhs ? dhs + b * dhs_stride : NULL;                                  \
        if (ds) {                                                                         \
            _Pragma("omp simd")                                                           \
            for (Py_ssize_t j = 0; j < H; j++) dhb[j] += ds[j];                           \
        }                                                                                 \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 0; j < H; j++) {                                              \
            T d = dhb[j];                                                                 \
            T c = dcb[j] + d * pb[j];                                                     \
            fb[j] *= c;                                                                   \
            fb[H + j] *= c;                                                               \
            fb[2 * H + j] *= c;                                                           \
            fb[3 * H + j] *= d;                                                           \
            dcb[j] = c * f[j];                                                            \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
MULTIVERSION static void gru_forward_##SUF(                                               \
        Py_ssize_t B, Py_ssize_t H, const T *restrict gh, const T *restrict gx,          \
        const T *restrict b_hn, const T *restrict h_prev, T *restrict act,               \
        T *restrict ghn, T *restrict h, T *restrict fac)                                  \
{                                                                                         \
    const T half = (T)0.5, one = (T)1;                                                    \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        const T *g = gh + b * 3 * H, *x = gx + b * 3 * H, *hp = h_prev + b * H;          \
        T *a = act + b * 3 * H, *gn = ghn + b * H, *hb = h + b * H;                       \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 0; j < 2 * H; j++) a[j] = TANH(x[j] + g[j]) * half + half;    \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 0; j < H; j++) {                                              \
            T gnj = b_hn ? g[2 * H + j] + b_hn[j] : g[2 * H + j];                         \
            gn[j] = gnj;                                                                  \
            T n = TANH(a[j] * gnj + x[2 * H + j]);                                        \
            a[2 * H + j] = n;                                                             \
            hb[j] = (hp[j] - n) * a[H + j] + n;                                           \
        }                                                                                 \
        if (fac) {                                                                        \
            T *fb = fac + b * 3 * H;                                                      \
            _Pragma("omp simd")                                                           \
            for (Py_ssize_t j = 0; j < H; j++) {                                          \
                T r = a[j], z = a[H + j], n = a[2 * H + j];                               \
                fb[j] = (one - r) * r * gn[j];                                            \
                fb[H + j] = (one - z) * z * (hp[j] - n);                                  \
                fb[2 * H + j] = (one - n) * (n + one) * (one - z);                        \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
MULTIVERSION static void gru_backward_##SUF(                                              \
        Py_ssize_t B, Py_ssize_t H, T *restrict dh, const T *restrict dhs,               \
        Py_ssize_t dhs_stride, T *restrict fac, T *restrict dgh,                          \
        const T *restrict act, T *restrict carry)                                         \
{                                                                                         \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        T *dhb = dh + b * H, *fb = fac + b * 3 * H, *gb = dgh + b * 3 * H;                \
        T *cb = carry + b * H;                                                            \
        const T *a = act + b * 3 * H;                                                     \
        const T *ds = dhs ? dhs + b * dhs_stride : NULL;                                  \
        if (ds) {                                                                         \
            _Pragma("omp simd")                                                           \
            for (Py_ssize_t j = 0; j < H; j++) dhb[j] += ds[j];                           \
        }                                                                                 \
        _Pragma("omp simd")                                                               \
        for (Py_ssize_t j = 0; j < H; j++) {                                              \
            T d = dhb[j];                                                                 \
            T dn = fb[2 * H + j] * d;                                                     \
            T dz = fb[H + j] * d;                                                         \
            T dr = fb[j] * dn;                                                            \
            fb[j] = dr;  fb[H + j] = dz;  fb[2 * H + j] = dn;                             \
            gb[j] = dr;  gb[H + j] = dz;  gb[2 * H + j] = dn * a[j];                      \
            cb[j] = d * a[H + j];                                                         \
        }                                                                                 \
    }                                                                                     \
}

RNNLAB_KERNELS(float, f32, tanhf)
RNNLAB_KERNELS(double, f64, tanh)

/* ---- Python glue: every argument is an int (address, size or flag) ---------------- */

static int read_ints(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want,
                     const char *name, Py_ssize_t *out)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
        return -1;
    }
    for (Py_ssize_t k = 0; k < want; k++) {
        out[k] = PyLong_AsSsize_t(args[k]);
        if (out[k] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

#define PTR(v) ((void *)(v))

static PyObject *py_lstm_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t a[11];
    if (read_ints(args, nargs, 11, "lstm_forward", a) < 0)
        return NULL;
    if (a[0])
        lstm_forward_f64(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), PTR(a[6]), PTR(a[7]),
                         PTR(a[8]), PTR(a[9]), PTR(a[10]));
    else
        lstm_forward_f32(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), PTR(a[6]), PTR(a[7]),
                         PTR(a[8]), PTR(a[9]), PTR(a[10]));
    Py_RETURN_NONE;
}

static PyObject *py_lstm_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t a[10];
    if (read_ints(args, nargs, 10, "lstm_backward", a) < 0)
        return NULL;
    if (a[0])
        lstm_backward_f64(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), a[6], PTR(a[7]),
                          PTR(a[8]), PTR(a[9]));
    else
        lstm_backward_f32(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), a[6], PTR(a[7]),
                          PTR(a[8]), PTR(a[9]));
    Py_RETURN_NONE;
}

static PyObject *py_gru_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t a[11];
    if (read_ints(args, nargs, 11, "gru_forward", a) < 0)
        return NULL;
    if (a[0])
        gru_forward_f64(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), PTR(a[6]), PTR(a[7]),
                        PTR(a[8]), PTR(a[9]), PTR(a[10]));
    else
        gru_forward_f32(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), PTR(a[6]), PTR(a[7]),
                        PTR(a[8]), PTR(a[9]), PTR(a[10]));
    Py_RETURN_NONE;
}

static PyObject *py_gru_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t a[10];
    if (read_ints(args, nargs, 10, "gru_backward", a) < 0)
        return NULL;
    if (a[0])
        gru_backward_f64(a[1], a[2], PTR(a[3]), PTR(a[4]), a[5], PTR(a[6]), PTR(a[7]),
                         PTR(a[8]), PTR(a[9]));
    else
        gru_backward_f32(a[1], a[2], PTR(a[3]), PTR(a[4]), a[5], PTR(a[6]), PTR(a[7]),
                         PTR(a[8]), PTR(a[9]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"lstm_forward", (PyCFunction)(void (*)(void))py_lstm_forward, METH_FASTCALL,
     "lstm_forward(dbl, B, H, act, gx, c_prev, c, tanh_c, h, fac, P): one fused LSTM step"},
    {"lstm_backward", (PyCFunction)(void (*)(void))py_lstm_backward, METH_FASTCALL,
     "lstm_backward(dbl, B, H, dh, dc, dhs, dhs_stride, fac, P, act): one fused LSTM backward step"},
    {"gru_forward", (PyCFunction)(void (*)(void))py_gru_forward, METH_FASTCALL,
     "gru_forward(dbl, B, H, gh, gx, b_hn, h_prev, act, ghn, h, fac): one fused GRU step"},
    {"gru_backward", (PyCFunction)(void (*)(void))py_gru_backward, METH_FASTCALL,
     "gru_backward(dbl, B, H, dh, dhs, dhs_stride, fac, dgh, act, carry): one fused GRU backward step"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gates",
    "Fused LSTM/GRU gate kernels (optional; rnnlab falls back to NumPy without them).",
    -1, methods
};

PyMODINIT_FUNC PyInit__gates(void)
{
    return PyModule_Create(&module);
}
