/* rnnlab._gates — optional compiled kernels for the elementwise gate math of one
 * LSTM or GRU time step, fused into one pass over the batch.
 *
 * The recurrent GEMMs stay in NumPy (BLAS); these functions do what the pure-NumPy
 * kernels in cells.py do with ten or more ufunc calls per step, reading and writing
 * each value once, and the backward derivative factors are recomputed inside the
 * backward step from the saved gates (cheaper than storing them: memory bandwidth,
 * not arithmetic, bounds these loops). The math is the same, written in the same order
 * of operations; only tanh comes from the C library (glibc's vector libmvec where
 * available) instead of NumPy's, so results agree with the NumPy path to a few units
 * in the last place, and the float64 versions are checked against torch.nn.
 *
 * Arguments are Python ints: buffer addresses (0 = absent) and sizes. (B, ·) blocks
 * are C-contiguous rows of the stated width unless a stride is given. The sigmoid
 * gates arrive with their pre-activations halved (cells._Kernel.prepare_weights), so
 * σ = ½·tanh(·) + ½ exactly as in the NumPy path.
 *
 * Input rows: row b of this step's input projection gx is table + ids[b]·G·H when
 * ids (int64, B) is given — a one-hot input read straight from the (V, G·H) table of
 * W_ihᵀ + bias rows — else table + b·G·H (table = this step's (B, G·H) block).
 *
 * LSTM, gates i, f, g, o (G·H = 4H):
 *   lstm_forward(dbl, B, H, act, table, ids, c_prev, c, h)
 *     act (B,4H) in: h_{t−1}·W_hhᵀ (scaled); out: the activated gates i, f, g, o
 *     c = f⊙c_prev + i⊙g,  h = o⊙tanh(c)
 *   lstm_backward(dbl, B, H, dh, dc, dhs, dhs_stride, act, c_prev, c, dgx)
 *     dh ← dh + dhs (dhs: rows dhs_stride apart, or 0);  P = o⊙(1 − tanh²c);
 *     dc ← dc + dh⊙P;  dgx = [g·i(1−i)·dc, c_prev·f(1−f)·dc, i·(1−g²)·dc, tanh c·o(1−o)·dh];
 *     dc ← dc⊙f (= dL/dc_{t−1}). The caller then forms dL/dh_{t−1} = dgx·W_hh.
 *
 * GRU, gates r, z, n (3H):
 *   gru_forward(dbl, B, H, gh, table, ids, b_hn, h_prev, act, ghn, h)
 *     gh (B,3H) h_{t−1}·W_hhᵀ (r, z scaled), b_hn (H) or 0;  r, z = σ(gx + gh),
 *     ghn = gh_n + b_hn, n = tanh(gx_n + r⊙ghn), h = (h_prev − n)⊙z + n
 *   gru_backward(dbl, B, H, dh, dhs, dhs_stride, act, ghn, h_prev, dgx, dgh, carry)
 *     dh ← dh + dhs;  dn = (1−n)(1+n)(1−z)·dh, dz = z(1−z)(h_prev − n)·dh,
 *     dr = r(1−r)·ghn·dn;  dgx = [dr, dz, dn], dgh = [dr, dz, dn⊙r];
 *     carry = dh⊙z (the direct path h_{t−1} → h_t).
 *
 * Both backward functions end with two more arguments, ids and acc: when ids (int64,
 * B) is given, each dgx row b is also added into row ids[b] of acc (V, G·H), so that
 * for one-hot inputs acc ends as dW_ihᵀ (and its row sum as the bias gradient)
 * without a one-hot matrix or a second pass over dgx.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

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

#define SIMD _Pragma("omp simd")
#define ROW(table, ids, b, width) ((table) + ((ids) ? (ids)[b] : (b)) * (width))

#define RNNLAB_KERNELS(T, SUF, TANH)                                                     \
MULTIVERSION static void lstm_forward_##SUF(                                              \
        Py_ssize_t B, Py_ssize_t H, T *restrict act, const T *restrict table,            \
        const int64_t *restrict ids, const T *restrict c_prev, T *restrict c,            \
        T *restrict h)                                                                    \
{                                                                                         \
    const T half = (T)0.5;                                                                \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        T *restrict a = act + b * 4 * H;                                                  \
        const T *restrict x = ROW(table, ids, b, 4 * H);                                  \
        SIMD for (Py_ssize_t j = 0; j < 2 * H; j++) a[j] = TANH(a[j] + x[j]) * half + half; \
        SIMD for (Py_ssize_t j = 2 * H; j < 3 * H; j++) a[j] = TANH(a[j] + x[j]);         \
        SIMD for (Py_ssize_t j = 3 * H; j < 4 * H; j++) a[j] = TANH(a[j] + x[j]) * half + half; \
        const T *restrict cp = c_prev + b * H;                                            \
        T *restrict cb = c + b * H, *restrict hb = h + b * H;                             \
        SIMD for (Py_ssize_t j = 0; j < H; j++) {                                         \
            T cj = a[H + j] * cp[j] + a[j] * a[2 * H + j];                                \
            cb[j] = cj;                                                                   \
            hb[j] = a[3 * H + j] * TANH(cj);                                              \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
MULTIVERSION static void lstm_backward_##SUF(                                             \
        Py_ssize_t B, Py_ssize_t H, T *restrict dh, T *restrict dc,                      \
        const T *restrict dhs, Py_ssize_t dhs_stride, const T *restrict act,              \
        const T *restrict c_prev, const T *restrict c, T *restrict dgx,                  \
        const int64_t *restrict ids, T *restrict acc)                                     \
{                                                                                         \
    const T one = (T)1;                                                                   \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        T *restrict dhb = dh + b * H, *restrict dcb = dc + b * H;                         \
        T *restrict d = dgx + b * 4 * H;                                                  \
        const T *restrict a = act + b * 4 * H;                                            \
        const T *restrict cp = c_prev + b * H, *restrict cb = c + b * H;                  \
        if (dhs) {                                                                        \
            const T *restrict ds = dhs + b * dhs_stride;                                  \
            SIMD for (Py_ssize_t j = 0; j < H; j++) dhb[j] += ds[j];                      \
        }                                                                                 \
        SIMD for (Py_ssize_t j = 0; j < H; j++) {                                         \
            T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];                 \
            T t = TANH(cb[j]), dhj = dhb[j];                                              \
            T dcj = dcb[j] + dhj * ((one - t * t) * o);                                   \
            d[j] = (one - i) * i * g * dcj;                                               \
            d[H + j] = (one - f) * f * cp[j] * dcj;                                       \
            d[2 * H + j] = (one - g) * (g + one) * i * dcj;                               \
            d[3 * H + j] = (one - o) * o * t * dhj;                                       \
            dcb[j] = dcj * f;                                                             \
        }                                                                                 \
        if (ids) {                                                                        \
            T *restrict row = acc + ids[b] * 4 * H;                                       \
            SIMD for (Py_ssize_t j = 0; j < 4 * H; j++) row[j] += d[j];                   \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
MULTIVERSION static void gru_forward_##SUF(                                               \
        Py_ssize_t B, Py_ssize_t H, const T *restrict gh, const T *restrict table,       \
        const int64_t *restrict ids, const T *restrict b_hn, const T *restrict h_prev,   \
        T *restrict act, T *restrict ghn, T *restrict h)                                  \
{                                                                                         \
    const T half = (T)0.5;                                                                \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        const T *restrict g = gh + b * 3 * H, *restrict hp = h_prev + b * H;              \
        const T *restrict x = ROW(table, ids, b, 3 * H);                                  \
        T *restrict a = act + b * 3 * H, *restrict gn = ghn + b * H, *restrict hb = h + b * H; \
        SIMD for (Py_ssize_t j = 0; j < 2 * H; j++) a[j] = TANH(x[j] + g[j]) * half + half; \
        SIMD for (Py_ssize_t j = 0; j < H; j++) {                                         \
            T gnj = b_hn ? g[2 * H + j] + b_hn[j] : g[2 * H + j];                         \
            gn[j] = gnj;                                                                  \
            T n = TANH(a[j] * gnj + x[2 * H + j]);                                        \
            a[2 * H + j] = n;                                                             \
            hb[j] = (hp[j] - n) * a[H + j] + n;                                           \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
MULTIVERSION static void gru_backward_##SUF(                                              \
        Py_ssize_t B, Py_ssize_t H, T *restrict dh, const T *restrict dhs,               \
        Py_ssize_t dhs_stride, const T *restrict act, const T *restrict ghn,             \
        const T *restrict h_prev, T *restrict dgx, T *restrict dgh, T *restrict carry,   \
        const int64_t *restrict ids, T *restrict acc)                                     \
{                                                                                         \
    const T one = (T)1;                                                                   \
    for (Py_ssize_t b = 0; b < B; b++) {                                                  \
        T *restrict dhb = dh + b * H, *restrict cb = carry + b * H;                       \
        T *restrict dx = dgx + b * 3 * H, *restrict dg = dgh + b * 3 * H;                 \
        const T *restrict a = act + b * 3 * H, *restrict gn = ghn + b * H;                \
        const T *restrict hp = h_prev + b * H;                                            \
        if (dhs) {                                                                        \
            const T *restrict ds = dhs + b * dhs_stride;                                  \
            SIMD for (Py_ssize_t j = 0; j < H; j++) dhb[j] += ds[j];                      \
        }                                                                                 \
        SIMD for (Py_ssize_t j = 0; j < H; j++) {                                         \
            T r = a[j], z = a[H + j], n = a[2 * H + j], d = dhb[j];                       \
            T dn = (one - n) * (n + one) * (one - z) * d;                                 \
            T dz = (one - z) * z * (hp[j] - n) * d;                                       \
            T dr = (one - r) * r * gn[j] * dn;                                            \
            dx[j] = dr;  dx[H + j] = dz;  dx[2 * H + j] = dn;                             \
            dg[j] = dr;  dg[H + j] = dz;  dg[2 * H + j] = dn * r;                         \
            cb[j] = d * z;                                                                \
        }                                                                                 \
        if (ids) {                                                                        \
            T *restrict row = acc + ids[b] * 3 * H;                                       \
            SIMD for (Py_ssize_t j = 0; j < 3 * H; j++) row[j] += dx[j];                  \
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
    Py_ssize_t a[9];
    if (read_ints(args, nargs, 9, "lstm_forward", a) < 0)
        return NULL;
    if (a[0])
        lstm_forward_f64(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), PTR(a[6]), PTR(a[7]), PTR(a[8]));
    else
        lstm_forward_f32(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), PTR(a[6]), PTR(a[7]), PTR(a[8]));
    Py_RETURN_NONE;
}

static PyObject *py_lstm_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t a[13];
    if (read_ints(args, nargs, 13, "lstm_backward", a) < 0)
        return NULL;
    if (a[0])
        lstm_backward_f64(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), a[6], PTR(a[7]),
                          PTR(a[8]), PTR(a[9]), PTR(a[10]), PTR(a[11]), PTR(a[12]));
    else
        lstm_backward_f32(a[1], a[2], PTR(a[3]), PTR(a[4]), PTR(a[5]), a[6], PTR(a[7]),
                          PTR(a[8]), PTR(a[9]), PTR(a[10]), PTR(a[11]), PTR(a[12]));
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
    Py_ssize_t a[14];
    if (read_ints(args, nargs, 14, "gru_backward", a) < 0)
        return NULL;
    if (a[0])
        gru_backward_f64(a[1], a[2], PTR(a[3]), PTR(a[4]), a[5], PTR(a[6]), PTR(a[7]),
                         PTR(a[8]), PTR(a[9]), PTR(a[10]), PTR(a[11]), PTR(a[12]), PTR(a[13]));
    else
        gru_backward_f32(a[1], a[2], PTR(a[3]), PTR(a[4]), a[5], PTR(a[6]), PTR(a[7]),
                         PTR(a[8]), PTR(a[9]), PTR(a[10]), PTR(a[11]), PTR(a[12]), PTR(a[13]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"lstm_forward", (PyCFunction)(void (*)(void))py_lstm_forward, METH_FASTCALL,
     "lstm_forward(dbl, B, H, act, table, ids, c_prev, c, h): one fused LSTM step"},
    {"lstm_backward", (PyCFunction)(void (*)(void))py_lstm_backward, METH_FASTCALL,
     "lstm_backward(dbl, B, H, dh, dc, dhs, dhs_stride, act, c_prev, c, dgx, ids, acc): one fused LSTM backward step"},
    {"gru_forward", (PyCFunction)(void (*)(void))py_gru_forward, METH_FASTCALL,
     "gru_forward(dbl, B, H, gh, table, ids, b_hn, h_prev, act, ghn, h): one fused GRU step"},
    {"gru_backward", (PyCFunction)(void (*)(void))py_gru_backward, METH_FASTCALL,
     "gru_backward(dbl, B, H, dh, dhs, dhs_stride, act, ghn, h_prev, dgx, dgh, carry, ids, acc): one fused GRU backward step"},
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
