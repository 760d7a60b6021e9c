// latentstudio gallery: runs, one run (grids, GIF, losses, samples, play), favourites.
// Plain DOM code, no build step. Text from the server goes in through textContent only.
"use strict";

const view = document.getElementById("view");
let timers = [];      // polling timers of the current page, cleared on navigation
let pageToken = 0;    // increases on navigation so late answers for an old page are dropped

// ----- small helpers
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, options = {}) {
  const opts = { ...options, headers: { ...(options.headers || {}) } };
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers["Content-Type"] = "application/json";
    delete opts.json;
  }
  const res = await fetch(path, opts);
  if (!res.ok) {
    let msg = res.statusText;
    try { const body = await res.json(); msg = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch (e) { /* not JSON */ }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  return type.includes("json") ? res.json() : res.blob();
}

let toastTimer = null;
function toast(msg, isError = false) {
  const el = document.getElementById("toast");
  el.textContent = msg;
  el.className = isError ? "error" : "";
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, isError ? 6000 : 2500);
}

function fmt(v) {
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3);
}

function badge(status) {
  return h("span", { class: "badge " + status.replace(/\s+/g, "-"), "data-status": status }, status);
}

// The training health monitor's states other than "ok", in words (as web/runs.py's HEALTH_WORDS).
const HEALTH_WORDS = { collapse: "samples all alike (mode collapse)", d_won: "discriminator has won", ema_warming: "EMA still warming up" };

function healthLine(health, id) {
  if (!health || health.state === "ok") return null;
  return h("div", { class: "health " + health.state, id, title: health.message || "" }, HEALTH_WORDS[health.state] || health.state);
}

function every(ms, fn) { timers.push(setInterval(fn, ms)); }

const enc = encodeURIComponent;
// What a favourite shows: a grid cell (by epoch or step), a projected image, or a seed.
function favCaption(i, withStep = false) {
  if (i.source === "grid") return `${i.epoch !== null && i.epoch !== undefined ? "epoch " + i.epoch : "step " + i.step} · #${i.index}`;
  if (i.source === "projected") return `projected ${i.target}`;
  return `seed ${i.seed}` + (withStep ? ` · step ${i.step}` : "");
}

// ----- theme
(function theme() {
  const saved = localStorage.getItem("latentstudio-theme");
  if (saved) document.documentElement.dataset.theme = saved;
  document.getElementById("theme").addEventListener("click", () => {
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    const now = document.documentElement.dataset.theme || (dark ? "dark" : "light");
    const next = now === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("latentstudio-theme", next);
  });
})();

// ----- router
function route() {
  timers.forEach(clearInterval);
  timers = [];
  pageToken += 1;
  const hash = location.hash || "#/";
  document.querySelectorAll("header nav a").forEach((a) => a.classList.remove("active"));
  let m;
  if ((m = hash.match(/^#\/run\/(.+)$/))) {
    runPage(decodeURIComponent(m[1]), pageToken);
  } else if (hash === "#/curated") {
    document.querySelector('[data-nav="curated"]').classList.add("active");
    curatedPage(pageToken);
  } else {
    document.querySelector('[data-nav="runs"]').classList.add("active");
    runsPage(pageToken);
  }
  window.scrollTo(0, 0);
}
window.addEventListener("hashchange", route);

// ----- runs page
function runCard(r) {
  const pct = r.total_steps ? Math.min(100, (100 * r.step) / r.total_steps) : 0;
  const metrics = Object.entries(r.metrics)
    .filter(([k]) => k.startsWith("loss") || ["recon", "kl"].includes(k))
    .map(([k, v]) => `${k} ${fmt(v)}`).join(" · ");
  return h("a", { class: "card", href: "#/run/" + enc(r.name), "data-run": r.name },
    h("div", { class: "thumb" },
      r.thumbnail ? h("img", { class: "pix", src: r.thumbnail, alt: "latest samples of " + r.name, loading: "lazy" })
        : h("span", { class: "muted small" }, "no pictures yet")),
    h("div", { class: "body" },
      h("div", { class: "name" }, r.name, badge(r.status)),
      h("div", { class: "meta" }, [r.model, r.data, r.resolution ? r.resolution + " px" : null].filter(Boolean).join(" · ")),
      r.parent ? h("div", { class: "meta lineage" }, (r.parent.grown_from ? "grown from " : "from ") + r.parent.name)
        : r.grows_into ? h("div", { class: "meta lineage" }, "grows into " + r.grows_into.name) : null,
      h("div", { class: "progress", title: `step ${r.step} of ${r.total_steps ?? "?"}` }, h("div", { style: `width:${pct}%` })),
      h("div", { class: "meta" }, `step ${r.step}${r.total_steps ? " / " + r.total_steps : ""}`),
      r.scores.length ? h("div", { class: "scores", title: "from eval.json" }, r.scores.map((s) => `${s.label} ${fmt(s.value)}`).join(" · ")) : null,
      metrics ? h("div", { class: "metrics" }, metrics) : null,
      healthLine(r.health),
      r.problems.length ? h("div", { class: "problems" }, r.problems.join("; ")) : null));
}

async function runsPage(token) {
  // The server's first paint (index.html with the cards in it) stays until fresh data arrives.
  if (!document.getElementById("cards")) {
    view.replaceChildren(h("div", { class: "pagehead" }, h("h1", {}, "Runs"), h("div", { class: "meta", id: "root" }, "loading…")),
      h("div", { class: "cards", id: "cards" }));
  }
  let last = "";
  async function refresh() {
    let data;
    try { data = await api("/api/runs"); } catch (e) { return toast("cannot list runs: " + e.message, true); }
    if (token !== pageToken) return;
    const text = JSON.stringify(data);
    if (text === last) return;  // unchanged: keep the DOM (and the images) as they are
    last = text;
    document.getElementById("root").textContent = `${data.runs.length} run(s) in ${data.root}`;
    const cards = document.getElementById("cards");
    if (!data.runs.length) {
      cards.replaceChildren(h("div", { class: "empty" }, "No runs here yet. Train one with ", h("code", {}, "latentstudio demo"), "."));
      return;
    }
    cards.replaceChildren(...data.runs.map(runCard));
  }
  await refresh();
  every(3000, refresh);
}

// ----- loss chart (inline SVG)
const COLORS = ["#e0a040", "#6fa8dc", "#6cc38a", "#e06c6c", "#b48ee0", "#5cc6c0", "#d0d070", "#e08cc0"];

function lossChart(curves) {
  const keys = Object.keys(curves).filter((k) => /^loss|^recon$|^kl$|^gp$|^d_real$|^d_fake$/.test(k));
  if (!keys.length) return h("div", { class: "muted small" }, "no losses logged yet");
  const W = 600, H = 220, L = 44, R = 8, T = 8, B = 22;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const k of keys) for (const [x, y] of curves[k]) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += 1; y0 -= 1; }
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("id", "loss-chart");
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" });
  add("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" });
  add("text", { x: L - 4, y: T + 9, "text-anchor": "end" }, fmt(y1));
  add("text", { x: L - 4, y: H - B, "text-anchor": "end" }, fmt(y0));
  add("text", { x: L, y: H - 6 }, `step ${x0}`);
  add("text", { x: W - R, y: H - 6, "text-anchor": "end" }, `step ${x1}`);
  keys.forEach((k, i) => {
    const pts = curves[k].map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    add("polyline", { points: pts, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5 });
  });
  const legend = h("div", { class: "legend" },
    keys.map((k, i) => h("span", {}, h("i", { style: `background:${COLORS[i % COLORS.length]}` }), k)));
  return h("div", {}, svg, legend);
}

// ----- run page
async function runPage(name, token) {
  const state = { name, detail: null, curated: [], epochIndex: null, info: null, play: null, samplesSeed: 0 };
  view.replaceChildren(h("div", { class: "empty" }, "loading ", name, "…"));
  let detail;
  try { detail = await api("/api/runs/" + enc(name)); } catch (e) {
    if (token === pageToken) view.replaceChildren(h("div", { class: "empty" }, e.message, " · ", h("a", { href: "#/" }, "back to runs")));
    return;
  }
  if (token !== pageToken) return;
  state.detail = detail;
  state.curated = detail.curated;

  const head = h("div", { class: "pagehead" },
    h("a", { href: "#/", class: "small" }, "← Runs"),
    h("h1", { id: "run-name" }, name, h("span", { id: "run-status" }, badge(detail.status))),
    h("div", { class: "meta", id: "run-meta" }),
    h("div", { class: "meta", id: "run-parent", hidden: true }));
  const banner = h("div", { class: "banner", id: "problems", hidden: true });
  const healthBanner = h("div", { class: "banner health-banner", id: "health", hidden: true });
  const gridImg = h("img", { class: "pix", id: "grid-image", alt: "preview grid" });
  const gridBox = h("div", { class: "gridview", id: "grid-view", title: "click a picture to star it" }, gridImg);
  const legend = h("div", { class: "grid-legend", id: "grid-legend", hidden: true });
  const labelledLink = h("a", { id: "grid-labelled", class: "small", target: "_blank", hidden: true }, "labelled copy");
  const slider = h("input", { type: "range", id: "epoch-slider", min: 0, max: 0, value: 0, "aria-label": "epoch" });
  const epochLabel = h("span", { id: "epoch-label", class: "muted small" });
  const gifBox = h("div", { id: "gif-box" });
  const chartBox = h("div", { id: "chart-box" });
  const samplesBox = h("div", { class: "tiles", id: "samples" });
  const favBox = h("div", { class: "tiles", id: "favourites" });
  const playBox = h("div", { id: "play-box" }, h("div", { class: "muted small" }, "loading the model…"));
  const configBox = h("div", { id: "config-box" });
  const video = videoPanel(name, token);

  view.replaceChildren(head, banner, healthBanner,
    h("div", { class: "cols" },
      h("section", { class: "panel", id: "grids-panel" }, h("h2", {}, "Preview grids"),
        h("div", { class: "gridwrap" }, legend, gridBox),
        h("div", { class: "row" }, slider), h("div", { class: "row" }, epochLabel,
          h("span", { class: "muted small", id: "grid-hint" }, " · click a picture to star it"), labelledLink)),
      h("section", { class: "panel" }, h("h2", {}, "Progress"), gifBox, h("h2", { style: "margin-top:1rem" }, "Losses"), chartBox)),
    h("section", { class: "panel", id: "samples-panel" }, h("h2", {}, "Samples"),
      h("div", { class: "row" },
        h("label", { for: "samples-seed" }, "first seed"),
        h("input", { type: "number", id: "samples-seed", min: 0, value: 0, onchange: (e) => { state.samplesSeed = Math.max(0, parseInt(e.target.value || "0", 10)); loadSamples(); } }),
        h("button", { type: "button", id: "samples-shuffle", onclick: () => { state.samplesSeed = Math.floor(Math.random() * 1e6); document.getElementById("samples-seed").value = state.samplesSeed; loadSamples(); } }, "Shuffle"),
        h("span", { class: "muted small" }, "click a picture to star it")),
      samplesBox),
    h("section", { class: "panel", id: "play-panel" }, h("h2", {}, "Play"), playBox),
    h("section", { class: "panel", id: "favourites-panel" }, h("h2", {}, "Favourites of this run"), favBox),
    h("section", { class: "panel", id: "video-panel" }, h("h2", {}, "Make a video"), video.el),
    h("section", { class: "panel" }, h("details", {}, h("summary", {}, "Configuration and metrics"), configBox)));

  // --- stars
  const starredKeys = () => new Map(state.curated.map((i) => [i.key, i.id]));
  async function toggleStar(key, body) {
    const id = starredKeys().get(key);
    try {
      if (id) {
        await api(`/api/runs/${enc(name)}/curated/${id}`, { method: "DELETE" });
        state.curated = state.curated.filter((i) => i.id !== id);
        toast("removed from favourites");
      } else {
        const item = await api(`/api/runs/${enc(name)}/curated`, { method: "POST", json: body });
        state.curated = state.curated.filter((i) => i.id !== item.id).concat([item]);
        toast("added to favourites");
      }
    } catch (e) { toast("could not save: " + e.message, true); }
    renderStars();
  }
  function renderStars() {
    const keys = starredKeys();
    document.querySelectorAll("[data-key]").forEach((el) => {
      const on = keys.has(el.dataset.key);
      el.querySelectorAll(".star").forEach((b) => { b.setAttribute("aria-pressed", on); b.textContent = on ? "★" : "☆"; });
      el.classList.toggle("starred", on);
    });
    drawGridMarks();
    renderFavourites();
    renderInterpChoices();
    video.update(state.curated);
  }

  // --- grids
  // The grid a starred cell came from (favourites of earlier versions name only the epoch).
  const gridName = (item) => item.grid || (item.epoch !== null && item.epoch !== undefined ? `epoch_${String(item.epoch).padStart(4, "0")}` : null);
  function showEpoch(i) {
    const grids = state.detail.grids;
    gridBox.hidden = slider.hidden = !grids.length;
    const hint = document.getElementById("grid-hint");
    if (hint) hint.hidden = !grids.length;
    const rows = (state.detail.layout && state.detail.layout.rows) || [];
    const named = rows.some((r) => r !== "sample");  // VAEs: real / reconstruction / sample rows
    legend.hidden = labelledLink.hidden = !grids.length || !named;
    if (!grids.length) { gridImg.removeAttribute("src"); epochLabel.textContent = "no preview grids yet"; return; }
    state.epochIndex = Math.max(0, Math.min(i, grids.length - 1));
    slider.value = state.epochIndex;
    const g = grids[state.epochIndex];
    if (gridImg.getAttribute("src") !== g.url) gridImg.src = g.url;
    gridImg.dataset.epoch = g.epoch;
    if (named) {
      legend.style.gridTemplateRows = `repeat(${rows.length}, 1fr)`;
      legend.replaceChildren(...rows.map((r) => h("span", { class: "row-" + r }, r)));
      labelledLink.href = `/api/runs/${enc(name)}/grids/${enc(g.name)}/labelled.png`;
    }
    const shown = g.epoch !== null && g.epoch !== undefined ? `epoch ${g.epoch}` : `step ${g.step}`;
    epochLabel.textContent = `${shown} (${state.epochIndex + 1} of ${grids.length})`;
    drawGridMarks();
  }
  slider.addEventListener("input", () => showEpoch(parseInt(slider.value, 10)));
  gridImg.addEventListener("load", drawGridMarks);
  function cellGeometry() {
    const lay = state.detail.layout;
    if (!lay || !gridImg.naturalWidth) return null;
    return { ...lay, W: gridImg.naturalWidth, H: gridImg.naturalHeight };
  }
  function drawGridMarks() {
    gridBox.querySelectorAll(".mark").forEach((m) => m.remove());
    const g = cellGeometry();
    if (!g || state.epochIndex === null) return;
    const shown = state.detail.grids[state.epochIndex].name;
    for (const item of state.curated) {
      if (item.source !== "grid" || gridName(item) !== shown) continue;
      const r = Math.floor(item.index / g.per_row), c = item.index % g.per_row;
      const x = g.padding + c * (g.cell + g.padding), y = g.padding + r * ((g.cell_height ?? g.cell) + g.padding);
      gridBox.append(h("span", { class: "mark", "data-index": item.index, style: `left:${(100 * x) / g.W}%;top:${(100 * y) / g.H}%` }, "★"));
    }
  }
  gridImg.addEventListener("click", (ev) => {
    const g = cellGeometry();
    if (!g) return;
    const rect = gridImg.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) * g.W) / rect.width - g.padding;
    const y = ((ev.clientY - rect.top) * g.H) / rect.height - g.padding;
    const step = g.cell + g.padding, cellH = g.cell_height ?? g.cell, stepY = cellH + g.padding;
    if (x < 0 || y < 0 || x % step >= g.cell || y % stepY >= cellH) return;  // on the padding
    const c = Math.floor(x / step), r = Math.floor(y / stepY);
    if (c >= g.per_row) return;
    const index = r * g.per_row + c;
    if (index >= g.count) return;
    const grid = state.detail.grids[state.epochIndex];
    const id = grid.epoch !== null && grid.epoch !== undefined ? grid.epoch : grid.name;  // as the server keys it
    toggleStar(`grid:${id}:${index}`, { source: "grid", grid: grid.name, index });
  });

  // --- header, progress, config (refreshed while training)
  function renderDetail(prev) {
    const d = state.detail;
    document.getElementById("run-status").replaceChildren(badge(d.status));
    document.getElementById("run-meta").textContent = [d.model, d.data && (d.data.spec || d.data), d.resolution && d.resolution + " px",
      `step ${d.step}${d.total_steps ? " / " + d.total_steps : ""}`, d.created].filter(Boolean).join(" · ");
    const parentBox = document.getElementById("run-parent");
    parentBox.hidden = !d.parent && !d.grows_into;
    if (d.parent) {
      const p = d.parent;
      parentBox.replaceChildren(p.grown_from ? "grown from " : "fine-tuned from ",
        p.link ? h("a", { href: "#/run/" + enc(p.link) }, p.name) : p.name,
        p.step !== null ? ` at step ${p.step}` : "", p.grown_from ? ` (${p.grown_from} px)` : "");
    } else if (d.grows_into) {
      const t = d.grows_into;
      parentBox.replaceChildren("grows into ", t.link ? h("a", { href: "#/run/" + enc(t.link) }, t.name) : t.name,
        t.link ? "" : " when it ends");
    }
    banner.hidden = !d.problems.length;
    banner.textContent = d.problems.join("; ");
    const health = d.health && d.health.state !== "ok" ? d.health : null;
    healthBanner.hidden = !health;
    healthBanner.dataset.state = health ? health.state : "";
    healthBanner.textContent = health ? (health.message || HEALTH_WORDS[health.state] || health.state) : "";
    const atLatest = prev === null || state.epochIndex === null || state.epochIndex >= prev.grids.length - 1;
    slider.max = Math.max(0, d.grids.length - 1);
    showEpoch(atLatest ? d.grids.length - 1 : state.epochIndex);
    const gifSrc = gifBox.querySelector("img")?.getAttribute("src");
    if (d.gif && d.gif !== gifSrc) gifBox.replaceChildren(h("img", { class: "gif pix", id: "progress-gif", src: d.gif, alt: "training progress" }));
    else if (!d.gif) gifBox.replaceChildren(h("div", { class: "muted small" }, "no progress GIF yet"));
    chartBox.replaceChildren(lossChart(d.curves));
    const rows = (obj) => Object.entries(obj || {}).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : fmt(v))));
    configBox.replaceChildren(
      h("h2", { style: "margin-top:.8rem" }, "Latest metrics"), h("table", { class: "kv" }, rows(d.metrics)),
      h("h2", { style: "margin-top:.8rem" }, "Training settings"), h("table", { class: "kv" }, rows(d.config)),
      h("h2", { style: "margin-top:.8rem" }, "Data and model"), h("table", { class: "kv" }, rows({ ...(d.data || {}), ...(d.model_config || {}) })));
  }
  renderDetail(null);
  every(3000, async () => {
    let d;
    try { d = await api("/api/runs/" + enc(name)); } catch (e) { return; }
    if (token !== pageToken) return;
    const prev = state.detail;
    if (JSON.stringify(d) === JSON.stringify(prev)) return;
    state.detail = d;
    state.curated = d.curated;
    renderDetail(prev);
    renderStars();
    if (d.step !== prev.step && state.info) loadSamples();  // new weights: fresh samples
  });

  // --- samples
  async function loadSamples() {
    let data;
    try { data = await api(`/api/runs/${enc(name)}/samples?seed=${state.samplesSeed}&n=12${state.play && state.play.label !== null ? "&label=" + state.play.label : ""}`); } catch (e) {
      samplesBox.replaceChildren(h("div", { class: "muted small" }, "samples unavailable: " + e.message));
      return;
    }
    if (token !== pageToken) return;
    samplesBox.replaceChildren(...data.samples.map((s) => {
      const body = { source: "latent", seed: s.seed, label: state.play ? state.play.label : null };
      const click = () => toggleStar(s.key, body);
      return h("div", { class: "tile sample", "data-key": s.key, "data-seed": s.seed },
        h("img", { class: "pix", src: s.image, alt: "sample seed " + s.seed, onclick: click }),
        h("button", { class: "star", type: "button", "aria-pressed": false, title: "star", onclick: click }, "☆"),
        h("div", { class: "caption" }, h("span", {}, "seed " + s.seed), h("a", { href: "#", onclick: (e) => { e.preventDefault(); playSeed(s.seed); } }, "play")));
    }));
    renderStars();
  }

  // --- favourites of this run
  function renderFavourites() {
    if (!state.curated.length) { favBox.replaceChildren(h("div", { class: "muted small" }, "Nothing starred yet: click a grid picture or a sample.")); return; }
    favBox.replaceChildren(...state.curated.map((item) => favTile(item, async () => {
      await toggleStar(item.key, null);
    })));
  }

  // --- play
  function playSeed(seed) {
    if (!state.play) return;
    state.play.seed = seed;
    document.getElementById("play-seed").value = seed;
    document.getElementById("play-panel").scrollIntoView({ behavior: "smooth" });
    render();
  }
  let inFlight = false, pending = false;
  async function render() {
    if (inFlight) { pending = true; return; }
    inFlight = true;
    const p = state.play;
    const spec = { seed: p.seed, label: p.label, directions: p.directions, vectors: p.vectors };
    try {
      const out = await api(`/api/runs/${enc(name)}/render`, { method: "POST", json: spec });
      if (token !== pageToken) return;
      const img = document.getElementById("play-image");
      img.src = out.image;
      const stage = document.getElementById("play-stage");
      stage.dataset.key = out.key;
      p.lastSpec = spec;
      document.getElementById("play-ms").textContent = `${out.ms} ms`;
      renderStars();
    } catch (e) { toast("render failed: " + e.message, true); }
    finally {
      inFlight = false;
      if (pending) { pending = false; render(); }
    }
  }
  function sliderRow(label, id, title, onchange) {
    const out = h("output", { id: id + "-value" }, "0");
    const input = h("input", { type: "range", id, min: -3, max: 3, step: 0.05, value: 0, "aria-label": label });
    input.addEventListener("input", () => { out.textContent = (+input.value).toFixed(2); onchange(+input.value); render(); });
    return h("div", { class: "slider", title }, h("label", { for: id }, label), input, out);
  }
  async function setupPlay() {
    let info;
    try { info = await api(`/api/runs/${enc(name)}/latent`); } catch (e) {
      if (token === pageToken) {
        playBox.replaceChildren(h("div", { class: "muted" }, "Play is not available for this run: " + e.message));
        samplesBox.replaceChildren(h("div", { class: "muted small" }, "Samples are not available: " + e.message));
      }
      return;
    }
    if (token !== pageToken) return;
    state.info = info;
    const p = (state.play = { seed: 0, label: info.classes.length ? 0 : null, directions: info.directions.map(() => 0), vectors: Object.fromEntries(info.vectors.map((v) => [v, 0])) });
    const seedInput = h("input", { type: "number", id: "play-seed", min: 0, value: 0, onchange: (e) => { p.seed = Math.max(0, parseInt(e.target.value || "0", 10)); render(); } });
    const controls = h("div", {},
      h("div", { class: "row" }, h("label", { for: "play-seed" }, "seed"), seedInput,
        h("button", { type: "button", onclick: () => { p.seed = Math.floor(Math.random() * 1e6); seedInput.value = p.seed; render(); } }, "Random"),
        h("button", { type: "button", id: "play-reset", onclick: () => {
          p.directions = p.directions.map(() => 0);
          Object.keys(p.vectors).forEach((k) => { p.vectors[k] = 0; });
          playBox.querySelectorAll('input[type="range"]').forEach((s) => { s.value = 0; s.dispatchEvent(new Event("input")); });
        } }, "Reset sliders")),
      info.classes.length ? h("div", { class: "row" }, h("label", { for: "play-class" }, "class"),
        h("select", { id: "play-class", onchange: (e) => { p.label = +e.target.value; render(); loadSamples(); } },
          info.classes.map((c, i) => h("option", { value: i }, c)))) : null,
      h("div", { class: "small muted", style: "margin:.4rem 0" }, "Principal directions — " + info.method),
      info.directions.map((d, i) => sliderRow(`PC${i + 1} · ${(100 * d.explained).toFixed(1)}%`, `dir-${i}`, "principal direction " + (i + 1), (v) => { p.directions[i] = v; })),
      info.vectors.length ? h("div", { class: "small muted", style: "margin:.6rem 0 .2rem" }, "Concept vectors") : null,
      info.vectors.map((v, i) => sliderRow(v, `vec-${i}`, "concept vector " + v, (x) => { p.vectors[v] = x; })),
      info.vector_problems.length ? h("div", { class: "small", style: "color:var(--bad)" }, info.vector_problems.join("; ")) : null);
    const starBtn = h("button", { class: "star", type: "button", id: "play-star", "aria-pressed": false, title: "star this picture",
      onclick: () => { const stage = document.getElementById("play-stage"); if (stage.dataset.key && p.lastSpec) toggleStar(stage.dataset.key, { source: "latent", ...p.lastSpec }); } }, "☆");
    const interp = h("div", { class: "interp", id: "interp" },
      h("h2", { style: "margin-top:1rem" }, "Interpolate between two favourites"),
      h("div", { class: "row" },
        h("select", { id: "interp-a", "aria-label": "from" }), h("span", { class: "muted" }, "→"), h("select", { id: "interp-b", "aria-label": "to" }),
        h("label", { for: "interp-frames" }, "frames"), h("input", { type: "number", id: "interp-frames", min: 2, max: 120, value: 24, style: "width:5rem" }),
        h("button", { type: "button", class: "primary", id: "interp-go", onclick: makeGif }, "Make GIF")),
      h("div", { id: "interp-out" }));
    playBox.replaceChildren(h("div", { class: "play" },
      h("div", { class: "stage", id: "play-stage" }, h("img", { class: "pix", id: "play-image", alt: "generated picture" }), starBtn,
        h("div", { class: "small muted", id: "play-ms" })),
      controls), interp);
    renderInterpChoices();
    render();
    loadSamples();
  }
  function renderInterpChoices() {
    const a = document.getElementById("interp-a"), b = document.getElementById("interp-b");
    if (!a) return;
    const usable = state.curated.filter((i) => i.has_latent);
    const opts = () => usable.map((i) => h("option", { value: i.id }, favCaption(i)));
    const keepA = a.value, keepB = b.value;
    a.replaceChildren(...opts()); b.replaceChildren(...opts());
    if (usable.some((i) => i.id === keepA)) a.value = keepA;
    if (usable.some((i) => i.id === keepB)) b.value = keepB;
    // Two different ends by default: the same favourite twice makes a still "interpolation".
    if (a.value === b.value && usable.length > 1) b.value = usable.find((i) => i.id !== a.value).id;
    document.getElementById("interp-go").disabled = usable.length < 2;
  }
  async function makeGif() {
    const a = document.getElementById("interp-a").value, b = document.getElementById("interp-b").value;
    const frames = Math.max(2, Math.min(120, parseInt(document.getElementById("interp-frames").value || "24", 10)));
    const out = document.getElementById("interp-out");
    out.replaceChildren(h("div", { class: "muted small" }, "rendering…"));
    try {
      const blob = await api(`/api/runs/${enc(name)}/interpolate`, { method: "POST", json: { a, b, frames } });
      const url = URL.createObjectURL(blob);
      out.replaceChildren(h("img", { class: "pix", src: url, alt: "interpolation" }), h("div", {},
        h("a", { class: "button", href: url, download: `${name}-${a}-${b}.gif`, id: "interp-download" }, "Download GIF")));
    } catch (e) { out.replaceChildren(h("div", { class: "muted small" }, "could not interpolate: " + e.message)); }
  }

  renderStars();
  await setupPlay();
}

// ----- a video from the run's favourites (run page): order, settings, background render
function videoPanel(name, token) {
  const v = { order: [], off: new Set(), items: new Map(), polling: false };
  const base = `/api/runs/${enc(name)}/videos`;
  const caption = (i) => favCaption(i);
  const field = (id, label, value, min, max, title) => [h("label", { for: id, title }, label),
    h("input", { type: "number", id, min, max, value, title, style: "width:5rem", oninput: showLength })];
  const list = h("ol", { class: "video-order", id: "video-order" });
  const go = h("button", { type: "button", class: "primary", id: "video-render", onclick: start }, "Render");
  const bar = h("progress", { id: "video-progress", max: 1, value: 0, hidden: true });
  const status = h("span", { class: "small", id: "video-status" });
  const length = h("span", { class: "muted small", id: "video-length" });
  const out = h("div", { id: "video-out" });
  const saved = h("div", { class: "small muted", id: "video-saved" });
  const el = h("div", {},
    h("div", { class: "muted small" }, "Favourites with a latent are the keyframes, visited in this order; untick one to leave it out."),
    list,
    h("div", { class: "row" },
      field("video-steps", "frames per transition", 24, 1, 600),
      field("video-hold", "hold", 12, 0, 600, "extra frames resting on each favourite"),
      field("video-fps", "fps", 24, 1, 60),
      h("label", { for: "video-easing" }, "easing"),
      h("select", { id: "video-easing", style: "width:7rem", title: "smooth and cubic slow down near each favourite" },
        ["smooth", "cubic", "linear"].map((e) => h("option", { value: e }, e))),
      h("label", { for: "video-format" }, "format"),
      h("select", { id: "video-format", style: "width:6rem" }, h("option", { value: "mp4" }, "MP4"), h("option", { value: "gif" }, "GIF")),
      h("label", {}, h("input", { type: "checkbox", id: "video-loop", onchange: showLength }), " loop back to the first")),
    h("div", { class: "row" }, go, bar, status, length),
    out, saved);

  const num = (id) => parseInt(document.getElementById(id)?.value || "0", 10) || 0;
  const chosen = () => v.order.filter((id) => !v.off.has(id));
  function frames() {
    const k = chosen().length, steps = num("video-steps"), hold = num("video-hold");
    const loop = document.getElementById("video-loop")?.checked;
    return k < 2 ? 0 : (loop ? k * steps : (k - 1) * steps + 1) + k * hold;
  }
  function showLength() {
    const n = frames(), fps = num("video-fps") || 24;
    length.textContent = n ? `${n} frames, ${(n / fps).toFixed(1)} s` : "choose at least two favourites";
  }
  function move(i, by) {
    const j = i + by;
    [v.order[i], v.order[j]] = [v.order[j], v.order[i]];
    draw();
  }
  function draw() {
    if (!v.order.length) {
      list.replaceChildren(h("li", { class: "muted small" }, "Star at least two samples (or pictures from Play) to make a video."));
    } else {
      list.replaceChildren(...v.order.map((id, i) => {
        const item = v.items.get(id), text = caption(item);
        return h("li", { "data-id": id },
          h("input", { type: "checkbox", checked: !v.off.has(id), "aria-label": "use " + text,
            onchange: (e) => { if (e.target.checked) v.off.delete(id); else v.off.add(id); draw(); } }),
          item.url ? h("img", { class: "pix", src: item.url, alt: text }) : null,
          h("span", {}, text),
          h("button", { type: "button", class: "up", title: "earlier", "aria-label": "move " + text + " earlier", disabled: i === 0, onclick: () => move(i, -1) }, "↑"),
          h("button", { type: "button", class: "down", title: "later", "aria-label": "move " + text + " later", disabled: i === v.order.length - 1, onclick: () => move(i, 1) }, "↓"));
      }));
    }
    go.disabled = v.polling || chosen().length < 2;
    showLength();
  }
  function update(curated) {
    const usable = curated.filter((i) => i.has_latent);
    v.items = new Map(usable.map((i) => [i.id, i]));
    v.order = v.order.filter((id) => v.items.has(id)).concat(usable.map((i) => i.id).filter((id) => !v.order.includes(id)));
    draw();
  }
  function show(job) {
    if (!job || job.state === "idle") return;
    bar.hidden = false;
    bar.max = job.total || 1;
    bar.value = job.done;
    status.dataset.state = job.state;
    status.className = "small" + (job.state === "failed" ? " error" : "");
    const doing = { loading: "loading the model", rendering: "rendering", encoding: "encoding" }[job.state];
    status.textContent = job.state === "done" ? `done: ${job.name}, ${job.total} frames in ${job.seconds} s`
      : job.state === "failed" ? "failed: " + job.error : `${doing}: ${job.done} / ${job.total} frames`;
    if (job.state === "done" && job.url && out.dataset.url !== job.url) {
      out.dataset.url = job.url;
      const player = job.name.endsWith(".gif") ? h("img", { class: "pix video", id: "video-player", src: job.url, alt: job.name })
        : h("video", { class: "video", id: "video-player", src: job.url, controls: true, loop: true, muted: true, autoplay: true, playsinline: true });
      out.replaceChildren(player, h("div", {}, h("a", { class: "button", id: "video-link", href: job.url, download: job.name }, "Download " + job.name)));
    }
  }
  async function poll() {
    if (v.polling) return;
    v.polling = true;
    draw();
    while (token === pageToken) {
      let job;
      try { job = await api(base + "/job"); } catch (e) { status.textContent = "progress unavailable: " + e.message; break; }
      if (token !== pageToken) return;
      show(job);
      if (!["loading", "rendering", "encoding"].includes(job.state)) break;
      await new Promise((r) => setTimeout(r, 400));
    }
    v.polling = false;
    draw();
    loadSaved();
  }
  async function start() {
    const body = { items: chosen(), steps: num("video-steps"), hold: num("video-hold"), fps: num("video-fps"),
      easing: document.getElementById("video-easing").value, format: document.getElementById("video-format").value,
      loop: document.getElementById("video-loop").checked };
    try {
      show(await api(base, { method: "POST", json: body }));
      poll();
    } catch (e) {
      status.className = "small error";
      status.textContent = "could not render: " + e.message;
    }
  }
  async function loadSaved() {
    let data;
    try { data = await api(base); } catch (e) { return; }
    if (token !== pageToken) return;
    saved.replaceChildren(...(data.videos.length ? ["Saved in this run's videos/ folder: ",
      ...data.videos.flatMap((f, i) => [i ? " · " : "", h("a", { href: f.url, download: f.name }, f.name)])] : []));
  }
  (async () => {  // a render started before this page was opened keeps reporting here
    loadSaved();
    try {
      const job = await api(base + "/job");
      if (token !== pageToken) return;
      show(job);
      if (["loading", "rendering", "encoding"].includes(job.state)) poll();
    } catch (e) { /* the panel still works without it */ }
  })();
  return { el, update };
}

// ----- favourites (shared tile and the page across runs)
function favTile(item, onUnstar) {
  const caption = favCaption(item, true);
  return h("div", { class: "tile starred fav", "data-id": item.id },
    item.url ? h("img", { class: "pix", src: item.url, alt: caption }) : h("div", { class: "muted small" }, "file missing"),
    h("button", { class: "star", type: "button", "aria-pressed": true, title: "unstar", onclick: onUnstar }, "★"),
    h("div", { class: "caption" }, h("span", {}, caption)));
}

async function curatedPage(token) {
  view.replaceChildren(h("div", { class: "pagehead" }, h("h1", {}, "Favourites"), h("div", { class: "meta" }, "every starred picture, across runs")),
    h("div", { id: "curated-list" }, h("div", { class: "empty" }, "loading…")));
  async function load() {
    let data;
    try { data = await api("/api/curated"); } catch (e) { return toast("cannot list favourites: " + e.message, true); }
    if (token !== pageToken) return;
    const list = document.getElementById("curated-list");
    if (!data.runs.length) { list.replaceChildren(h("div", { class: "empty" }, "No favourites yet. Open a run and click a picture to star it.")); return; }
    list.replaceChildren(...data.runs.map((r) => h("section", { class: "panel", "data-run": r.name },
      h("h2", {}, h("a", { href: "#/run/" + enc(r.name) }, r.name), h("span", { class: "muted small" }, ` · ${r.items.length}`)),
      r.problem ? h("div", { class: "banner" }, r.problem) : null,
      h("div", { class: "tiles" }, r.items.map((item) => favTile(item, async () => {
        try { await api(`/api/runs/${enc(r.name)}/curated/${item.id}`, { method: "DELETE" }); toast("removed from favourites"); } catch (e) { toast(e.message, true); }
        load();
      }))))));
  }
  await load();
}

route();
