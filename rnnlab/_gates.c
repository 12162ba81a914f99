/* rnnlab._gates — optional compiled kernels for the elementwise gate math of one
 * LSTM or GRU time step, fused into one pass over the batch.
 *
 * The recurrent GEMMs stay in NumPy (BLAS); these functions do what the pure-NumPy
 * kernels in kernels/lstm.py and kernels/gru.py do with ten or more ufunc calls per
 * step, reading and writing each value once, and the backward derivative factors are
 * recomputed inside the backward step from the saved gates (cheaper than storing them:
 * memory bandwidth, not arithmetic, bounds these loops). The math is the same, written
 * in the same order of operations; only tanh comes from the C library (glibc's vector
 * libmvec where available) instead of NumPy's, so results agree with the NumPy path to
 * a few units in the last place, and the float64 versions are checked against torch.nn.
 *
 * Calling convention. Each step entry point takes two Python ints:
 *
 *     lstm_forward(args, t)   lstm_backward(args, t)   gru_forward(args, t)   gru_backward(args, t)
 *
 * (the two others — transpose, the loops' transposed copy of W_hh, and decayed_step,
 * dynamic evaluation's update — take the arguments given where they are defined.)
 *
 * args is the address of a step_args record (below: named int64 fields, mirrored field
 * for field by the NumPy dtype STEP_ARGS in kernels/compiled.py, which fills one per
 * loop), t the step. A field holds a size, a flag, or a buffer address (0 = absent).
 * Buffers that hold one block per step — (T, B, ·) arrays — are given as the address
 * of step 0's block plus a byte stride between steps, and each call finds step t's
 * block itself: act + t·gate_step, h + t·state_step, and so on. Blocks of one step
 * are C-contiguous (B, width) rows unless a row stride is given. The module attribute
 * STEP_ARGS is the tuple of field names, in order, so that Python can check it.
 *
 * The weights arrive as they are (no copies: kernels/compiled.py, FusedKernel), and the
 * forward steps halve the sigmoid gates' pre-activations themselves: σ(x) = ½·tanh(½x) + ½.
 * The NumPy kernels fold that ½ into copies of the weights instead
 * (kernels.base.Kernel.prepare_weights); halving is exact in binary floating point, so
 * ½·(gx + gh) is bit for bit the sum of the halved terms, and both paths form the same
 * pre-activations.
 *
 * Input rows: with ids, row b of step t's input projection is gx + ids_t[b]·G·H, a
 * one-hot input read straight from the (V, G·H) table of W_ihᵀ + bias rows (gx_step
 * = 0); without, it is row b of the block gx + t·gx_step.
 *
 * LSTM, gates i, f, g, o (G·H = 4H); at step t, with c_prev = c[t], c_new = c[t + 1]:
 *   lstm_forward:  act[t] (B,4H) in: h_{t−1}·W_hhᵀ; out: the activated gates
 *     i, f, g, o;  c_new = f⊙c_prev + i⊙g,  h[t + 1] = o⊙tanh(c_new)
 *   lstm_backward: dh ← dh + dhs[t] (if dhs);  P = o⊙(1 − tanh²c_new);  dc ← dc + dh⊙P;
 *     dgx[t] = [g·i(1−i)·dc, c_prev·f(1−f)·dc, i·(1−g²)·dc, tanh c_new·o(1−o)·dh];
 *     dc ← dc⊙f (= dL/dc_{t−1}). The caller then forms dL/dh_{t−1} = dgx[t]·W_hh.
 *
 * GRU, gates r, z, n (3H); at step t, with h_prev = h[t]:
 *   gru_forward:   gh (B,3H) h_{t−1}·W_hhᵀ, b_hn (H) or 0;
 *     r, z = σ(gx + gh), ghn[t] = gh_n + b_hn, n = tanh(gx_n + r⊙ghn[t]),
 *     h[t + 1] = (h_prev − n)⊙z + n;  act[t] = r, z, n
 *   gru_backward:  dh ← dh + dhs[t];  dn = (1−n)(1+n)(1−z)·dh, dz = z(1−z)(h_prev − n)·dh,
 *     dr = r(1−r)·ghn[t]·dn;  dgx[t] = [dr, dz, dn], dgh[t] = [dr, dz, dn⊙r];
 *     carry = dh⊙z (the direct path h_{t−1} → h_t). The caller then forms
 *     dL/dh_{t−1} = dgh[t]·W_hh + carry.
 *
 * The recurrent GEMMs' orientation. Each step's GEMM has B rows on one side; at the small
 * B of these models, multi-threaded BLAS splits the G·H (or H) side across its threads
 * far better than the B side (OpenBLAS, 2 threads, G·H = 768, H = 256: the GEMM 1.2-1.3×
 * as fast at B = 32, 1.6-1.8× at B = 6). So the looped callers, up to a batch size
 * (kernels/compiled.py: COLS_MAX_BATCH), form the transposed products — rec_T
 * (G·H, B) = W_hh·h_{t−1}ᵀ and dh_T (H, B) = W_hhᵀ·dgh[t+1]ᵀ — and each step first copies
 * its block into the row layout the kernels read: rec_T into act[t] (LSTM) or gh (GRU);
 * dh_T into dh, then (GRU) dh += carry, the caller's old addition in the same order. The
 * copies are exact, so only the GEMM's own summation order differs from the row
 * orientation. With rec_T = dh_T = 0 a step reads act[t] / gh / dh as they are.
 *
 * Both backward functions scatter when ids is given: each dgx[t] row b is also added
 * into row ids_t[b] of acc (V, G·H), so that for one-hot inputs acc ends as dW_ihᵀ (and
 * its row sum as the bias gradient) without a one-hot matrix or a second pass over dgx.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* ---- The step_args record: every entry point's arguments, by name ----------------- */

/* Everything one loop's calls share. All fields are int64_t (no padding); "per step"
 * buffers are (T, B, ·) arrays given as step 0's address and a byte stride, so step t's
 * block is at base + t·stride. A field a function does not use is ignored (0). */
typedef struct {
    int64_t dbl;         /* 1: the buffers are float64; 0: float32 */
    int64_t B, H;        /* batch size; hidden width (a gate block is H wide, a gate row G·H) */
    /* the saved per-step buffers of the forward pass, read again by the backward pass */
    int64_t act;         /* (T, B, G·H) activated gates; the LSTM forward finds h_{t−1}·W_hhᵀ there */
    int64_t gate_step;   /* bytes between steps of act, dgx and dgh: B·G·H·itemsize */
    int64_t h;           /* (T+1, B, H) hidden states: step t reads h[t], the forward writes h[t + 1] */
    int64_t c;           /* LSTM: (T+1, B, H) cell states, as h; GRU: 0 */
    int64_t ghn;         /* GRU: (T, B, H) W_hn·h_{t−1} + b_hn, written forward, read backward */
    int64_t state_step;  /* bytes between steps of h, c and ghn: B·H·itemsize */
    /* forward inputs */
    int64_t gx;          /* step 0's (B, G·H) input projections; with ids, the (V, G·H) table */
    int64_t gx_step;     /* bytes between steps of gx (0 with ids: every step reads the table) */
    int64_t ids;         /* int64 (B) ids of step 0 (one-hot inputs), or 0 */
    int64_t ids_step;    /* bytes between steps of ids: B·8 */
    int64_t gh;          /* GRU forward: (B, 3H) h_{t−1}·W_hhᵀ, one block reused by every step */
    int64_t b_hn;        /* GRU forward: (H) the bias b_hn added inside the step, or 0 */
    /* backward */
    int64_t dh, dc;      /* (B, H) dL/dh_t, dL/dc_t (dc: LSTM only), updated in place every step */
    int64_t carry;       /* GRU: (B, H) out: dh⊙z, added by the caller after the GEMM */
    int64_t dhs;         /* step 0's gradient arriving at the output h (rows dhs_row apart), or 0 */
    int64_t dhs_step;    /* bytes between steps of dhs (negative for a time-reversed view) */
    int64_t dhs_row;     /* elements between rows b of dhs */
    int64_t dgx, dgh;    /* (T, B, G·H) out: pre-activation gradients w.r.t. gx and gh (GRU) */
    int64_t acc;         /* with ids: (V, G·H) accumulator, row ids_t[b] += dgx[t] row b */
    /* the recurrent GEMMs in the orientation BLAS runs fastest at small B (see the header) */
    int64_t rec_T;       /* forward: (G·H, B) W_hh·h_{t−1}ᵀ, one block, or 0 */
    int64_t dh_T;        /* backward: (H, B) W_hhᵀ·dgh[t+1]ᵀ, one block, or 0 */
} step_args;

/* The field names in order: exported as the module attribute STEP_ARGS, against which
 * kernels/compiled.py checks its dtype (a stale build would read the wrong fields). */
static const char *const step_args_names[] = {
    "dbl", "B", "H", "act", "gate_step", "h", "c", "ghn", "state_step",
    "gx", "gx_step", "ids", "ids_step", "gh", "b_hn",
    "dh", "dc", "carry", "dhs", "dhs_step", "dhs_row", "dgx", "dgh", "acc", "rec_T", "dh_T",
};
#define N_FIELDS ((Py_ssize_t)(sizeof(step_args_names) / sizeof(step_args_names[0])))
/* compile-time check that the list names as many fields as the struct has */
typedef char step_args_names_complete[sizeof(step_args) == N_FIELDS * sizeof(int64_t) ? 1 : -1];

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
        SIMD for (Py_ssize_t j = 0; j < 2 * H; j++) a[j] = TANH((a[j] + x[j]) * half) * half + half; \
        SIMD for (Py_ssize_t j = 2 * H; j < 3 * H; j++) a[j] = TANH(a[j] + x[j]);         \
        SIMD for (Py_ssize_t j = 3 * H; j < 4 * H; j++) a[j] = TANH((a[j] + x[j]) * half) * half + half; \
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
        SIMD for (Py_ssize_t j = 0; j < 2 * H; j++) a[j] = TANH((x[j] + g[j]) * half) * half + half; \
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

/* ---- Transposed copies ------------------------------------------------------------ */

/* dst (cols, rows) = src (rows, cols)ᵀ: the steps' rec_T and dh_T copies, and the
 * loops' W_hhᵀ (from COPY_MIN_STEPS steps: kernels/compiled.py). The copy goes by 16×16 tiles, so the rows read and the rows written
 * both stay in cache (NumPy's strided transpose copy of a 768×256 float32 matrix takes
 * ~2.5× as long). */
#define RNNLAB_TRANSPOSE(T, SUF)                                                          \
static void transpose_##SUF(const T *restrict src, T *restrict dst, Py_ssize_t rows,     \
                            Py_ssize_t cols)                                              \
{                                                                                         \
    const Py_ssize_t tile = 16;                                                           \
    for (Py_ssize_t i0 = 0; i0 < rows; i0 += tile) {                                      \
        const Py_ssize_t i1 = i0 + tile < rows ? i0 + tile : rows;                        \
        for (Py_ssize_t j0 = 0; j0 < cols; j0 += tile) {                                  \
            const Py_ssize_t j1 = j0 + tile < cols ? j0 + tile : cols;                    \
            for (Py_ssize_t j = j0; j < j1; j++)                                          \
                for (Py_ssize_t i = i0; i < i1; i++)                                      \
                    dst[j * rows + i] = src[i * cols + j];                         \
        }                                                                                 \
    }                                                                                     \
}

RNNLAB_TRANSPOSE(float, f32)
RNNLAB_TRANSPOSE(double, f64)

/* a (n) += b (n): the GRU's carry, added to dh after the dh_T copy */
#define RNNLAB_ADD(T, SUF)                                                                \
static void add_into_##SUF(T *restrict a, const T *restrict b, Py_ssize_t n)              \
{                                                                                         \
    SIMD for (Py_ssize_t i = 0; i < n; i++) a[i] += b[i];                                 \
}

RNNLAB_ADD(float, f32)
RNNLAB_ADD(double, f64)

/* ---- Dynamic evaluation's update ------------------------------------------------- */

/* p ← p − step⊙g;  p ← p + rate⊙(θ₀ − p): models/scoring.py's update of one parameter
 * (step and rate per weight, θ₀ the trained weights), one pass over five arrays where
 * NumPy makes five passes. Each value is rounded where NumPy rounds it (no FMA: see
 * setup.py), so the result is NumPy's bit for bit. */
#define RNNLAB_DECAYED_STEP(T, SUF)                                                       \
static void decayed_step_##SUF(T *restrict p, const T *restrict g, const T *restrict step, \
                               const T *restrict rate, const T *restrict theta0, Py_ssize_t n) \
{                                                                                         \
    SIMD for (Py_ssize_t i = 0; i < n; i++) {                                             \
        T q = p[i] - step[i] * g[i];                                                      \
        p[i] = q + rate[i] * (theta0[i] - q);                                             \
    }                                                                                     \
}

RNNLAB_DECAYED_STEP(float, f32)
RNNLAB_DECAYED_STEP(double, f64)

/* Copy a transposed block into place: dst (cols, rows) = src (rows, cols)ᵀ. */
static void transpose_in(int64_t dbl, int64_t src, void *dst, Py_ssize_t rows, Py_ssize_t cols)
{
    if (dbl)
        transpose_f64((const double *)(intptr_t)src, dst, rows, cols);
    else
        transpose_f32((const float *)(intptr_t)src, dst, rows, cols);
}

/* ---- Python glue: (args, t) → step t's pointers → the kernel above ---------------- */

/* Step t's block of a per-step buffer; AT_OPT: NULL for an absent (0) buffer. */
#define AT(base, step, t) ((void *)(intptr_t)((base) + (int64_t)(t) * (step)))
#define AT_OPT(base, step, t) ((base) ? AT(base, step, t) : NULL)
#define PTR(v) ((void *)(intptr_t)(v))

/* The two arguments (args, t): the record, or NULL with an exception set. */
static const step_args *read_args(PyObject *const *args, Py_ssize_t nargs, const char *name,
                                  Py_ssize_t *t)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes 2 arguments (args, t) (%zd given)", name, nargs);
        return NULL;
    }
    const step_args *a = PyLong_AsVoidPtr(args[0]);
    if (a == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s(): args is a null address", name);
        return NULL;
    }
    *t = PyLong_AsSsize_t(args[1]);
    if (*t == -1 && PyErr_Occurred())
        return NULL;
    return a;
}

static PyObject *py_lstm_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t t;
    const step_args *a = read_args(args, nargs, "lstm_forward", &t);
    if (a == NULL)
        return NULL;
    void *act = AT(a->act, a->gate_step, t), *table = AT(a->gx, a->gx_step, t);
    void *ids = AT_OPT(a->ids, a->ids_step, t);
    void *c_prev = AT(a->c, a->state_step, t), *c = AT(a->c, a->state_step, t + 1);
    void *h = AT(a->h, a->state_step, t + 1);
    if (a->rec_T)
        transpose_in(a->dbl, a->rec_T, act, 4 * a->H, a->B);
    if (a->dbl)
        lstm_forward_f64(a->B, a->H, act, table, ids, c_prev, c, h);
    else
        lstm_forward_f32(a->B, a->H, act, table, ids, c_prev, c, h);
    Py_RETURN_NONE;
}

static PyObject *py_lstm_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t t;
    const step_args *a = read_args(args, nargs, "lstm_backward", &t);
    if (a == NULL)
        return NULL;
    void *dhs = AT_OPT(a->dhs, a->dhs_step, t), *act = AT(a->act, a->gate_step, t);
    void *c_prev = AT(a->c, a->state_step, t), *c = AT(a->c, a->state_step, t + 1);
    void *dgx = AT(a->dgx, a->gate_step, t), *ids = AT_OPT(a->ids, a->ids_step, t);
    if (a->dh_T)
        transpose_in(a->dbl, a->dh_T, PTR(a->dh), a->H, a->B);
    if (a->dbl)
        lstm_backward_f64(a->B, a->H, PTR(a->dh), PTR(a->dc), dhs, a->dhs_row, act, c_prev, c,
                          dgx, ids, PTR(a->acc));
    else
        lstm_backward_f32(a->B, a->H, PTR(a->dh), PTR(a->dc), dhs, a->dhs_row, act, c_prev, c,
                          dgx, ids, PTR(a->acc));
    Py_RETURN_NONE;
}

static PyObject *py_gru_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t t;
    const step_args *a = read_args(args, nargs, "gru_forward", &t);
    if (a == NULL)
        return NULL;
    void *table = AT(a->gx, a->gx_step, t), *ids = AT_OPT(a->ids, a->ids_step, t);
    void *h_prev = AT(a->h, a->state_step, t), *h = AT(a->h, a->state_step, t + 1);
    void *act = AT(a->act, a->gate_step, t), *ghn = AT(a->ghn, a->state_step, t);
    if (a->rec_T)
        transpose_in(a->dbl, a->rec_T, PTR(a->gh), 3 * a->H, a->B);
    if (a->dbl)
        gru_forward_f64(a->B, a->H, PTR(a->gh), table, ids, PTR(a->b_hn), h_prev, act, ghn, h);
    else
        gru_forward_f32(a->B, a->H, PTR(a->gh), table, ids, PTR(a->b_hn), h_prev, act, ghn, h);
    Py_RETURN_NONE;
}

static PyObject *py_gru_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t t;
    const step_args *a = read_args(args, nargs, "gru_backward", &t);
    if (a == NULL)
        return NULL;
    void *dhs = AT_OPT(a->dhs, a->dhs_step, t), *act = AT(a->act, a->gate_step, t);
    void *ghn = AT(a->ghn, a->state_step, t), *h_prev = AT(a->h, a->state_step, t);
    void *dgx = AT(a->dgx, a->gate_step, t), *dgh = AT(a->dgh, a->gate_step, t);
    void *ids = AT_OPT(a->ids, a->ids_step, t);
    if (a->dh_T) {                       /* dh = dh_Tᵀ + carry (the carry of step t + 1) */
        transpose_in(a->dbl, a->dh_T, PTR(a->dh), a->H, a->B);
        if (a->dbl)
            add_into_f64(PTR(a->dh), PTR(a->carry), a->B * a->H);
        else
            add_into_f32(PTR(a->dh), PTR(a->carry), a->B * a->H);
    }
    if (a->dbl)
        gru_backward_f64(a->B, a->H, PTR(a->dh), dhs, a->dhs_row, act, ghn, h_prev, dgx, dgh,
                         PTR(a->carry), ids, PTR(a->acc));
    else
        gru_backward_f32(a->B, a->H, PTR(a->dh), dhs, a->dhs_row, act, ghn, h_prev, dgx, dgh,
                         PTR(a->carry), ids, PTR(a->acc));
    Py_RETURN_NONE;
}

/* The arguments of the two array functions below: n_ptr addresses (each non-zero),
 * then n_size sizes (each >= 0), then the
 * flag dbl — nargs = n_ptr + n_size + 1. Returns 0, or -1 with an exception set. */
static int read_array_args(PyObject *const *args, Py_ssize_t nargs, const char *name,
                           const char *signature, int n_ptr, void **ptr,
                           int n_size, Py_ssize_t *size, int *dbl)
{
    if (nargs != n_ptr + n_size + 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes %d arguments %s (%zd given)", name,
                     n_ptr + n_size + 1, signature, nargs);
        return -1;
    }
    for (int k = 0; k < n_ptr; k++) {
        ptr[k] = PyLong_AsVoidPtr(args[k]);
        if (ptr[k] == NULL && PyErr_Occurred())
            return -1;
        if (ptr[k] == NULL) {
            PyErr_Format(PyExc_ValueError, "%s(): a null address", name);
            return -1;
        }
    }
    for (int k = 0; k < n_size; k++) {
        size[k] = PyLong_AsSsize_t(args[n_ptr + k]);
        if (size[k] == -1 && PyErr_Occurred())
            return -1;
        if (size[k] < 0) {
            PyErr_Format(PyExc_ValueError, "%s(): negative size", name);
            return -1;
        }
    }
    *dbl = PyObject_IsTrue(args[n_ptr + n_size]);
    return *dbl < 0 ? -1 : 0;
}

/* transpose(src, dst, rows, cols, dbl): five ints — the addresses of two C-contiguous
 * arrays of one dtype (float64 if dbl, else float32), src (rows, cols) and dst (cols,
 * rows), and the sizes. */
static PyObject *py_transpose(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *ptr[2];
    Py_ssize_t size[2];
    int dbl;
    if (read_array_args(args, nargs, "transpose", "(src, dst, rows, cols, dbl)",
                        2, ptr, 2, size, &dbl) < 0)
        return NULL;
    if (dbl)
        transpose_f64(ptr[0], ptr[1], size[0], size[1]);
    else
        transpose_f32(ptr[0], ptr[1], size[0], size[1]);
    Py_RETURN_NONE;
}

/* decayed_step(p, g, step, rate, theta0, n, dbl): five addresses of C-contiguous arrays
 * of n values of one dtype (float64 if dbl, else float32), p updated in place. */
static PyObject *py_decayed_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    void *ptr[5];
    Py_ssize_t n;
    int dbl;
    if (read_array_args(args, nargs, "decayed_step", "(p, g, step, rate, theta0, n, dbl)",
                        5, ptr, 1, &n, &dbl) < 0)
        return NULL;
    if (dbl)
        decayed_step_f64(ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], n);
    else
        decayed_step_f32(ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], n);
    Py_RETURN_NONE;
}

/* The calling convention's version: raised whenever an entry point's arguments or their
 * meaning change; kernels/compiled.py refuses a build whose ABI is not its own (a stale
 * extension left by an older install would read the arguments wrongly). */
#define RNNLAB_GATES_ABI 2

static PyMethodDef methods[] = {
    {"lstm_forward", (PyCFunction)(void (*)(void))py_lstm_forward, METH_FASTCALL,
     "lstm_forward(args, t): fused LSTM step t; args = address of a step_args record"},
    {"lstm_backward", (PyCFunction)(void (*)(void))py_lstm_backward, METH_FASTCALL,
     "lstm_backward(args, t): fused LSTM backward step t; args = address of a step_args record"},
    {"gru_forward", (PyCFunction)(void (*)(void))py_gru_forward, METH_FASTCALL,
     "gru_forward(args, t): fused GRU step t; args = address of a step_args record"},
    {"gru_backward", (PyCFunction)(void (*)(void))py_gru_backward, METH_FASTCALL,
     "gru_backward(args, t): fused GRU backward step t; args = address of a step_args record"},
    {"transpose", (PyCFunction)(void (*)(void))py_transpose, METH_FASTCALL,
     "transpose(src, dst, rows, cols, dbl): dst = src.T, a tiled copy"},
    {"decayed_step", (PyCFunction)(void (*)(void))py_decayed_step, METH_FASTCALL,
     "decayed_step(p, g, step, rate, theta0, n, dbl): p -= step*g; p += rate*(theta0 - p)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gates",
    "Fused LSTM/GRU gate kernels (optional; rnnlab falls back to NumPy without them).",
    -1, methods
};

PyMODINIT_FUNC PyInit__gates(void)
{
    PyObject *m = PyModule_Create(&module), *names = PyTuple_New(N_FIELDS);
    if (m == NULL || names == NULL)
        goto fail;
    for (Py_ssize_t k = 0; k < N_FIELDS; k++) {
        PyObject *s = PyUnicode_FromString(step_args_names[k]);
        if (s == NULL)
            goto fail;
        PyTuple_SET_ITEM(names, k, s);
    }
    if (PyModule_AddObject(m, "STEP_ARGS", names) < 0)
        goto fail;
    names = NULL;                            /* the module holds it now */
    if (PyModule_AddIntConstant(m, "ABI", RNNLAB_GATES_ABI) < 0)
        goto fail;
    return m;
fail:
    Py_XDECREF(names);
    Py_XDECREF(m);
    return NULL;
}
