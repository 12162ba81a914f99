/* rnnlab explore: the page's script. Reads the JSON in #rnnlab-data (written by
   rnnlab/explore/page.py) and fills the five panels. No libraries, nothing fetched. */
"use strict";
(function () {
  const T0 = performance.now();
  const D = JSON.parse(document.getElementById("rnnlab-data").textContent);
  // characters as Python counts them (code points): a JS string indexes UTF-16 units, and
  // a character outside the BMP (an emoji) is two of them
  const M = D.model, TEXT = Array.from(D.text), N = TEXT.length;
  M.vocab = Array.from(M.vocab);
  const SVGNS = "http://www.w3.org/2000/svg";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const role = (name, root) => $('[data-role="' + name + '"]', root);

  function b64bytes(s) {
    const bin = atob(s), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const visible = ch => ch === " " ? "\u2423" : ch === "\n" ? "\u21b5" : ch === "\t" ? "\u21e5" : ch;
  const fmt = (v, d) => v === null || v === undefined ? "n/a" : Number(v).toFixed(d);

  // -- summary ---------------------------------------------------------------------------
  $("#summary").textContent = M.type + " " + M.layers + "\u00d7" + M.hidden + ", " +
    M.parameters.toLocaleString("en") + " parameters, vocabulary " + M.vocab.length + " \u2014 " +
    N.toLocaleString("en") + " characters of " + (D.source || "the text") +
    (D.mean_bits !== null ? ", " + fmt(D.mean_bits, 3) + " bits/char" : "");

  // -- the text, as spans ---------------------------------------------------------------------
  function textSpans(box) {
    const frag = document.createDocumentFragment(), spans = new Array(N);
    for (let i = 0; i < N; i++) {
      const ch = TEXT[i];
      const s = el("span", {"data-char-index": i}, ch === "\n" ? "\u21b5\n" : ch);
      if (ch === "\n") s.className = "nl";
      spans[i] = frag.appendChild(s);
    }
    box.appendChild(frag);
    return spans;
  }
  const tip = role("predictions");
  function showTip(span, html) {
    tip.innerHTML = html;
    tip.hidden = false;
    const r = span.getBoundingClientRect();
    const left = Math.min(r.left + window.scrollX, window.scrollX + document.documentElement.clientWidth - 200);
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = (r.bottom + window.scrollY + 4) + "px";
  }
  function hideTip() { tip.hidden = true; }
  const esc = s => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  function legend(box, css, lo, hi) {
    box.appendChild(el("span", {}, lo));
    const bar = box.appendChild(el("span", {"class": "bar"}));
    bar.style.background = css;
    box.appendChild(el("span", {}, hi));
  }

  // -- surprisal ------------------------------------------------------------------------------
  const heat = t => { const g = Math.round(255 - 215 * t), b = Math.round(255 - 235 * t); return "rgb(255," + g + "," + b + ")"; };
  const sText = role("surprisal-text"), sSpans = textSpans(sText);
  legend(role("surprisal-legend"), "linear-gradient(to right," + heat(0) + "," + heat(0.5) + "," + heat(1) + ")",
         "0 bits", "\u2265 8 bits");
  for (let i = 0; i < N; i++) {
    const b = D.bits[i];
    sSpans[i].style.backgroundColor = b === null ? "#eee" : heat(Math.min(b / 8, 1));
  }
  function predictions(i) {
    if (i === 0) return "<b>the first character</b>: nothing before it to predict from";
    const actual = D.bits[i];
    let h = "<div>expected at " + i + ": <b>" + esc(visible(TEXT[i])) + "</b> cost " + fmt(actual, 2) + " bits</div><table>";
    for (let j = 0; j < D.top_k; j++) {
      const id = D.top[(i - 1) * D.top_k + j], p = D.top_p[(i - 1) * D.top_k + j];
      const ch = M.vocab[id];
      h += '<tr class="' + (ch === TEXT[i] ? "actual" : "") + '" data-role="prediction"><td>' + esc(visible(ch)) +
           '</td><td class="p">' + fmt(p, 3) + '</td><td><span class="pbar" style="width:' +
           Math.round(p * 80) + 'px"></span></td></tr>';
    }
    return h + "</table>";
  }
  function hoverText(box, spans, html) {
    box.addEventListener("mouseover", e => {
      const i = e.target.dataset ? e.target.dataset.charIndex : undefined;
      if (i === undefined) return;
      showTip(spans[+i], html(+i));
    });
    box.addEventListener("mouseleave", hideTip);
  }
  hoverText(sText, sSpans, predictions);

  // -- units ----------------------------------------------------------------------------------
  const A = D.acts, SER = A.series, raw = new Array(SER.length);
  function unitValues(si, u) {
    if (!raw[si]) raw[si] = b64bytes(SER[si].b64);
    const q = raw[si], out = new Float32Array(N), s = SER[si].scale[u];
    if (A.bits === 8) {
      for (let t = 0, o = u * N; t < N; t++) out[t] = (q[o + t] - 127) / 127 * s;
    } else {
      const o = u * Math.ceil(N / 2);
      for (let t = 0; t < N; t++) {
        const byte = q[o + (t >> 1)];
        out[t] = (((t & 1) ? byte & 15 : byte >> 4) - 7) / 7 * s;
      }
    }
    return out;
  }
  const diverge = v => {
    const t = Math.max(-1, Math.min(1, v)), k = Math.round(255 - 200 * Math.abs(t));
    return t >= 0 ? "rgb(255," + k + "," + k + ")" : "rgb(" + k + "," + k + ",255)";
  };
  const kindName = {h: "hidden h", c: "cell c"};
  const unitSel = role("unit"), uText = role("unit-text"), uSpans = textSpans(uText);
  legend(role("unit-legend"), "linear-gradient(to right," + diverge(-1) + ",#fff," + diverge(1) + ")", "\u22121", "+1");
  SER.forEach((s, si) => {
    const g = unitSel.appendChild(el("optgroup", {label: "layer " + (s.layer + 1) + " \u00b7 " + kindName[s.kind]}));
    for (let u = 0; u < s.units; u++) g.appendChild(el("option", {value: si + ":" + u}, "layer " + (s.layer + 1) + " " + s.kind + "[" + u + "]"));
  });
  let current = null;
  function showUnit() {
    const [si, u] = unitSel.value.split(":").map(Number);
    // h of tanh units lies in (−1, 1); a cell c and a ReLU unit's h are unbounded: their own scale
    const bounded = SER[si].kind === "h" && M.nonlinearity !== "relu";
    const v = unitValues(si, u), scale = bounded ? 1 : SER[si].scale[u];
    for (let t = 0; t < N; t++) uSpans[t].style.backgroundColor = diverge(v[t] / scale);
    current = v;
    document.querySelectorAll(".ranking tr").forEach(tr => tr.classList.toggle("sel", tr.dataset.value === unitSel.value));
  }
  unitSel.addEventListener("change", showUnit);
  hoverText(uText, uSpans, i => unitSel.selectedOptions[0].textContent + " after <b>" + esc(visible(TEXT[i])) +
            "</b>: " + fmt(current[i], 3));
  const ranking = role("ranking");
  ranking.className = "ranking";
  const seriesOf = (layer, kind) => SER.findIndex(s => s.layer === layer && s.kind === kind);
  let first = null;
  for (const [name, label] of D.features) {
    ranking.appendChild(el("h4", {}, label));
    const rows = (D.ranked[name] || []).filter(r => r[3] !== 0).slice(0, 8);
    if (!rows.length) { ranking.appendChild(el("div", {"class": "empty"}, "not in this text")); continue; }
    const table = ranking.appendChild(el("table"));
    for (const [layer, kind, u, r] of rows) {
      const value = seriesOf(layer, kind) + ":" + u;
      const tr = table.appendChild(el("tr", {"data-value": value, "data-feature": name}));
      tr.appendChild(el("td", {}, "layer " + (layer + 1) + " " + kind + "[" + u + "]"));
      tr.appendChild(el("td", {"class": "r"}, "r = " + (r >= 0 ? "+" : "\u2212") + Math.abs(r).toFixed(2)));
      tr.addEventListener("click", () => { unitSel.value = value; showUnit(); });
      if (first === null) first = value;
    }
  }
  unitSel.value = first || "0:0";
  showUnit();

  // -- axes and charts ----------------------------------------------------------------------------
  function ticks(lo, hi, n) {
    const span = hi - lo || 1, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => span / s <= n) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function frame(box, w, h, pad, xs, ys, xlab, ylab, xfmt) {
    const s = box.appendChild(svg("svg", {width: w, height: h, viewBox: "0 0 " + w + " " + h}));
    const X = v => pad.l + (v - xs[0]) / ((xs[1] - xs[0]) || 1) * (w - pad.l - pad.r);
    const Y = v => h - pad.b - (v - ys[0]) / ((ys[1] - ys[0]) || 1) * (h - pad.t - pad.b);
    s.appendChild(svg("rect", {x: pad.l, y: pad.t, width: w - pad.l - pad.r, height: h - pad.t - pad.b, fill: "none", stroke: "#ccc"}));
    for (const v of ticks(xs[0], xs[1], 6)) {
      s.appendChild(svg("line", {x1: X(v), x2: X(v), y1: h - pad.b, y2: h - pad.b + 4, stroke: "#888"}));
      s.appendChild(svg("text", {x: X(v), y: h - pad.b + 15, "text-anchor": "middle", fill: "#555"}, (xfmt || String)(v)));
    }
    for (const v of ticks(ys[0], ys[1], 5)) {
      s.appendChild(svg("line", {x1: pad.l - 4, x2: w - pad.r, y1: Y(v), y2: Y(v), stroke: "#eee"}));
      s.appendChild(svg("text", {x: pad.l - 6, y: Y(v) + 4, "text-anchor": "end", fill: "#555"}, String(v)));
    }
    s.appendChild(svg("text", {x: (w + pad.l - pad.r) / 2, y: h - 4, "text-anchor": "middle", fill: "#333"}, xlab));
    s.appendChild(svg("text", {x: 12, y: (h - pad.b + pad.t) / 2, "text-anchor": "middle", fill: "#333",
                               transform: "rotate(-90 12 " + (h - pad.b + pad.t) / 2 + ")"}, ylab));
    return {s, X, Y};
  }
  const clock = v => { v = Math.round(v); const m = Math.floor(v / 60), s = v % 60; return m ? m + ":" + String(s).padStart(2, "0") : s + " s"; };

  // -- curves ---------------------------------------------------------------------------------------
  const chart = role("curves-chart"), R = D.metrics;
  function drawCurves(xkey) {
    chart.textContent = "";
    const rows = R.filter(r => r[xkey] !== null);
    if (!rows.length) { chart.appendChild(el("p", {"class": "empty"}, "no metrics.jsonl for this checkpoint")); return; }
    const series = [["train_bits", "training loss", "#4a78c2"], ["val_bpc", "validation", "#e07020"]];
    const vals = rows.flatMap(r => series.map(s => r[s[0]]).filter(v => v !== null));
    const xs = [Math.min(0, rows[0][xkey]), rows[rows.length - 1][xkey]];
    const ys = [Math.max(0, Math.min(...vals) - 0.2), Math.max(...vals) + 0.1];
    const f = frame(chart, 860, 300, {l: 56, r: 150, t: 10, b: 40}, xs, ys, xkey === "step" ? "step" : "time (elapsed)",
                    "bits / char", xkey === "step" ? String : clock);
    series.forEach(([key, label, colour], j) => {
      const pts = rows.filter(r => r[key] !== null).map(r => f.X(r[xkey]).toFixed(1) + "," + f.Y(r[key]).toFixed(1));
      if (pts.length) {
        f.s.appendChild(svg("polyline", {points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 2, "data-series": key}));
        if (pts.length === 1) { const [x, y] = pts[0].split(","); f.s.appendChild(svg("circle", {cx: x, cy: y, r: 3, fill: colour})); }
      }
      const last = rows.filter(r => r[key] !== null).pop();
      f.s.appendChild(svg("line", {x1: 720, x2: 740, y1: 24 + 18 * j, y2: 24 + 18 * j, stroke: colour, "stroke-width": 2}));
      f.s.appendChild(svg("text", {x: 746, y: 28 + 18 * j, fill: "#333"}, label + (last ? " " + fmt(last[key], 3) : "")));
    });
  }
  document.querySelectorAll('[data-role="x-axis"]').forEach(r => r.addEventListener("change", () => drawCurves(r.value)));
  drawCurves("step");

  // -- gates ------------------------------------------------------------------------------------------
  const scat = role("scatters"), gateColour = {input: "#2a9d4b", forget: "#d0453a", output: "#3a6fd0", reset: "#8a4fc0", update: "#d08a1a"};
  if (!D.saturation.length || !Object.keys(D.saturation[0]).length) {
    scat.appendChild(el("p", {"class": "empty"}, "The Elman RNN has no gates."));
  }
  D.saturation.forEach((layer, k) => {
    for (const gate in layer) {
      const fig = scat.appendChild(el("figure", {"data-gate": gate, "data-layer": k}));
      const f = frame(fig, 200, 200, {l: 40, r: 8, t: 8, b: 36}, [0, 1], [0, 1], "left-saturated", "right-saturated");
      const [left, right] = layer[gate];
      f.s.appendChild(svg("line", {x1: f.X(0), y1: f.Y(1), x2: f.X(1), y2: f.Y(0), stroke: "#ddd", "stroke-dasharray": "3 3"}));
      for (let u = 0; u < left.length; u++) {
        const c = f.s.appendChild(svg("circle", {cx: f.X(left[u]).toFixed(1), cy: f.Y(right[u]).toFixed(1), r: 2.5,
                                                fill: gateColour[gate] || "#333", "fill-opacity": 0.55}));
        c.appendChild(svg("title", {}, "unit " + u + ": left " + fmt(left[u], 2) + ", right " + fmt(right[u], 2)));
      }
      fig.appendChild(el("figcaption", {}, "layer " + (k + 1) + " \u00b7 " + gate + " gate"));
    }
  });

  // -- the model, in JavaScript (float64) ---------------------------------------------------------------
  function Net() {
    const P = {};
    for (const name in M.params) {
      const bytes = b64bytes(M.params[name][1]);      // little-endian, as every browser's typed arrays
      const a = M.dtype === "float64" ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
      P[name] = Float64Array.from(a);                // exact: every float32 is a float64
    }
    const L = M.layers, H = M.hidden, V = M.vocab.length, G = {LSTM: 4, GRU: 3, RNN: 1}[M.type], GH = G * H;
    const h = [], c = [], gx = new Float64Array(GH), gh = new Float64Array(GH), logits = new Float64Array(V);
    const sig = x => 0.5 * Math.tanh(0.5 * x) + 0.5;            // as rnnlab computes the sigmoid
    const act = M.nonlinearity === "relu" ? x => Math.max(x, 0) : Math.tanh;
    function reset() { for (let k = 0; k < L; k++) { h[k] = new Float64Array(H); c[k] = new Float64Array(H); } }
    function matvec(W, cols, x, b, out) {
      for (let r = 0, o = 0; r < out.length; r++, o += cols) {
        let s = 0;
        for (let j = 0; j < cols; j++) s += W[o + j] * x[j];
        out[r] = b ? s + b[r] : s;
      }
    }
    function step(id) {                 // feed one character id; the logits of the next one
      let x = null;
      for (let k = 0; k < L; k++) {
        const Wih = P["rnn.weight_ih_l" + k], bih = P["rnn.bias_ih_l" + k], bhh = P["rnn.bias_hh_l" + k];
        if (k === 0) for (let r = 0; r < GH; r++) gx[r] = Wih[r * V + id] + (bih ? bih[r] : 0);
        else matvec(Wih, H, x, bih, gx);
        matvec(P["rnn.weight_hh_l" + k], H, h[k], bhh, gh);
        const hk = h[k], ck = c[k];
        for (let u = 0; u < H; u++) {
          if (G === 4) {
            const i = sig(gx[u] + gh[u]), f = sig(gx[H + u] + gh[H + u]);
            const g = Math.tanh(gx[2 * H + u] + gh[2 * H + u]), o = sig(gx[3 * H + u] + gh[3 * H + u]);
            ck[u] = f * ck[u] + i * g;
            hk[u] = o * Math.tanh(ck[u]);
          } else if (G === 3) {
            const r = sig(gx[u] + gh[u]), z = sig(gx[H + u] + gh[H + u]);
            const n = Math.tanh(gx[2 * H + u] + r * gh[2 * H + u]);
            hk[u] = n + z * (hk[u] - n);
          } else {
            hk[u] = act(gx[u] + gh[u]);
          }
        }
        x = hk;
      }
      matvec(P["head.weight"], H, x, P["head.bias"], logits);
      return logits;
    }
    reset();
    return {step, reset, V};
  }
  let net = null;

  function pick(logits, temperature) {
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;   // first maximum, as np.argmax
    if (temperature === 0) return best;
    const cdf = new Float64Array(logits.length);
    let total = 0;
    for (let v = 0; v < logits.length; v++) { total += Math.exp((logits[v] - logits[best]) / temperature); cdf[v] = total; }
    const u = Math.random() * total;
    for (let v = 0; v < cdf.length; v++) if (cdf[v] > u) return v;
    return cdf.length - 1;
  }

  // -- sample -----------------------------------------------------------------------------------------------
  const primeBox = role("prime"), out = role("sample-output"), err = role("sample-error");
  const index = new Map(Array.from(M.vocab, (ch, i) => [ch, i]));
  primeBox.value = TEXT.slice(0, Math.min(N, 24)).join("");
  let run = 0;
  function generate() {
    const prime = primeBox.value, temperature = Number(role("temperature").value), length = Number(role("length").value);
    err.textContent = "";
    const unknown = [...new Set(Array.from(prime).filter(ch => !index.has(ch)))];
    if (unknown.length) { err.textContent = "not in the model's vocabulary: " + unknown.map(ch => JSON.stringify(ch)).join(", "); return; }
    if (!(temperature >= 0) || !isFinite(temperature)) { err.textContent = "temperature must be a number >= 0"; return; }
    if (!(Number.isInteger(length) && length >= 1)) { err.textContent = "length must be an integer >= 1"; return; }
    net = net || Net();
    net.reset();
    const me = ++run, ids = Array.from(prime, ch => index.get(ch));
    out.textContent = "";
    out.appendChild(el("span", {"class": "prime"}, prime));
    const body = out.appendChild(document.createTextNode(""));
    let nxt, left = length, chunk = "";
    if (!ids.length) {                                    // no prime: the first character uniformly (as the CLI)
      nxt = Math.floor(Math.random() * net.V);
      chunk = M.vocab[nxt];
      left -= 1;
    } else {
      for (let i = 0; i < ids.length - 1; i++) net.step(ids[i]);
      nxt = ids[ids.length - 1];
    }
    out.dataset.state = "running";
    (function work() {
      if (me !== run) return;
      const until = performance.now() + 30;
      while (left > 0 && performance.now() < until) {
        nxt = pick(net.step(nxt), temperature);
        chunk += M.vocab[nxt];
        left--;
      }
      body.appendData(chunk);
      chunk = "";
      if (left > 0) setTimeout(work, 0); else out.dataset.state = "done";
    })();
  }
  role("generate").addEventListener("click", generate);
  document.body.dataset.scriptMs = Math.round(performance.now() - T0);   // the page's own set-up time
  document.body.dataset.ready = "1";
})();
