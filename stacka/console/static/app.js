// AgentOS operator console. Plain JS, no dependencies, works offline.
// Every data call goes to this origin (Stack A) with the signed-in key.
"use strict";

(function () {
  const KEY = "agentos.console.key";
  const ACT_AS = "agentos.console.act_as";
  const TERMINAL = new Set(["agentos.run.completed", "agentos.run.failed", "agentos.run.canceled"]);
  const $ = (id) => document.getElementById(id);

  let whoami = null;
  let stream = null; // AbortController of the open timeline stream
  let runsCursor = null;

  // ---------- small DOM helpers (text nodes only, never parsed HTML) ----------
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function badge(text, state) { return el("span", { class: "badge st-" + (state || text), text: text }); }
  function emptyRow(tbody, cols, text) { tbody.append(el("tr", {}, el("td", { colspan: String(cols), class: "muted", text: text }))); }
  function fmtTime(s) { return s ? String(s).replace("T", " ").replace(/\.\d+Z$/, "Z") : ""; }
  function fmtNum(n) { return typeof n === "number" ? n.toLocaleString("en-US") : String(n ?? ""); }

  function flash(msg) {
    const f = $("flash");
    f.textContent = msg || "";
    f.hidden = !msg;
  }

  // ---------- API ----------
  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || ("HTTP " + status));
      this.status = status;
      this.code = e.code || "";
      this.correlationId = body && body.correlation_id;
    }
  }

  function headers(extra) {
    const h = Object.assign({ "Accept": "application/json" }, extra || {});
    const key = sessionStorage.getItem(KEY);
    if (key) h["Authorization"] = "Bearer " + key;
    const actAs = sessionStorage.getItem(ACT_AS);
    if (actAs) h["X-Tenant-Id"] = actAs;
    return h;
  }

  async function api(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    const url = path + (q.toString() ? "?" + q.toString() : "");
    const r = await fetch(url, { headers: headers(), credentials: "omit" });
    let body = {};
    try { body = await r.json(); } catch (_) { /* empty body */ }
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }

  function showError(err) {
    if (err instanceof ApiError && err.status === 401) { signOut("Your key was not accepted: " + err.message); return; }
    const corr = err.correlationId ? " (correlation_id " + err.correlationId + ")" : "";
    flash((err.code ? err.code + ": " : "") + err.message + corr);
  }

  // ---------- sign in ----------
  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    try {
      const ov = await api("/v1/console/overview");
      whoami = ov.whoami;
    } catch (err) {
      sessionStorage.removeItem(KEY);
      $("signin-error").textContent = err instanceof ApiError && err.status === 401
        ? "That key was not accepted." : "Sign-in failed: " + err.message;
      return false;
    }
    $("signin-error").textContent = "";
    $("signin").hidden = true;
    $("tabs").hidden = false;
    $("who").hidden = false;
    $("who-principal").textContent = whoami.principal_id;
    $("who-tenant").textContent = whoami.tenant_id;
    $("act-as-wrap").hidden = !whoami.platform_admin;
    $("act-as").value = sessionStorage.getItem(ACT_AS) || "";
    return true;
  }

  function signOut(msg) {
    stopStream();
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ACT_AS);
    whoami = null;
    for (const v of document.querySelectorAll(".view")) v.hidden = true;
    $("tabs").hidden = true;
    $("who").hidden = true;
    $("signin").hidden = false;
    $("api-key").value = "";
    $("signin-error").textContent = msg || "";
    flash("");
    if (location.hash) history.replaceState(null, "", location.pathname);
  }

  // ---------- routing ----------
  function show(view, tab) {
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + view;
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  }

  async function route() {
    if (!whoami) return;
    flash("");
    stopStream();
    const parts = (location.hash || "#/health").slice(2).split("/");
    try {
      switch (parts[0]) {
        case "tenants": show("tenants", "tenants"); await loadTenants(); break;
        case "runs":
          if (parts[1]) { show("run", "runs"); await openRun(decodeURIComponent(parts[1])); }
          else { show("runs", "runs"); await loadRuns(false); }
          break;
        case "audit": show("audit", "audit"); await loadAudit(); break;
        default: show("health", "health"); await loadHealth();
      }
    } catch (err) { showError(err); }
  }

  // ---------- health ----------
  async function loadHealth() {
    const ov = await api("/v1/console/overview");
    const n = ov.node;
    const st = $("node-status");
    st.textContent = n.status;
    st.className = "badge st-" + n.status;
    $("node-meta").textContent = "stack " + n.stack_id + (n.node_id ? " · node " + n.node_id : "") + " · version " + n.version + " · mode " + n.mode;
    const routers = clear($("routers"));
    for (const r of n.routers) {
      const checks = el("div", { class: "kv" });
      for (const [k, v] of Object.entries(r.checks || {}).sort()) checks.append(el("div", {}, k + ": " + v));
      routers.append(el("tr", { "data-router": r.router }, el("td", {}, r.router), el("td", {}, badge(r.status)), el("td", {}, checks)));
    }
    const backends = clear($("backends"));
    for (const b of n.backends) backends.append(el("tr", { "data-backend": b.backend }, el("td", {}, b.backend), el("td", {}, badge(b.up ? "up" : "down"))));
    if (!n.backends.length) emptyRow(backends, 2, "no backends");
    const rs = clear($("runstats"));
    for (const [k, v] of Object.entries(n.runs)) rs.append(el("dt", {}, k.replace(/_/g, " ")), el("dd", {}, fmtNum(v)));
    const nodes = clear($("nodes"));
    for (const x of n.nodes || []) {
      nodes.append(el("tr", { "data-node": x.node_id }, el("td", { class: "mono" }, x.node_id + (x.self ? " (this node)" : "")),
        el("td", { class: "mono" }, x.stack_a_url || ""), el("td", {}, fmtTime(x.started_at)), el("td", {}, fmtTime(x.last_seen)),
        el("td", {}, fmtNum(x.runs_in_flight))));
    }
    if (!(n.nodes || []).length) emptyRow(nodes, 5, "no live nodes listed");
    const alerts = clear($("alerts"));
    for (const a of ov.alerts) {
      const labels = Object.entries(a.labels || {}).map(([k, v]) => k + "=" + v).join(" ");
      alerts.append(el("tr", { "data-alert": a.name }, el("td", {}, a.name), el("td", {}, badge(a.state)), el("td", {}, a.severity),
        el("td", { class: "mono" }, labels), el("td", {}, fmtTime(a.firing_since || a.since)), el("td", {}, a.summary)));
    }
    if (!ov.alerts.length) emptyRow(alerts, 6, "no pending or firing alerts");
  }

  // ---------- tenants and usage ----------
  function usageCell(used, max, ratio, fmt) {
    const pct = Math.min(100, Math.round((ratio || 0) * 100));
    const bar = el("div", { class: "bar" + (ratio >= 1 ? " over" : ratio >= 0.8 ? " warn" : "") }, el("span"));
    bar.firstChild.style.width = pct + "%";
    return el("td", {}, el("div", {}, fmt(used) + " / " + fmt(max) + " (" + pct + "%)"), bar);
  }

  async function loadTenants() {
    const tbody = clear($("tenants"));
    const usage = (await api("/v1/console/usage")).usage;
    let names = {};
    if (whoami.platform_admin) {
      // The admin list carries every tenant, including ones with no usage read.
      const list = await api("/v1/admin/tenants");
      for (const t of list.tenants) names[t.tenant_id] = t;
    }
    for (const u of usage) {
      const t = names[u.tenant_id] || u;
      tbody.append(el("tr", { "data-tenant": u.tenant_id },
        el("td", {}, el("div", {}, u.tenant_id), el("div", { class: "kv" }, t.name || "")),
        el("td", {}, badge(t.status || u.status, (t.status || u.status) === "active" ? "ok" : "failed")),
        el("td", {}, u.plan_tier),
        el("td", {}, u.window + " " + u.period),
        el("td", {}, fmtNum(u.requests)),
        usageCell(u.total_tokens, u.max_tokens, u.tokens_ratio, fmtNum),
        usageCell(u.cost_usd, u.max_cost_usd, u.cost_ratio, (x) => Number(x || 0).toFixed(4))));
    }
    if (!usage.length) emptyRow(tbody, 7, "no tenants");
  }

  // ---------- runs ----------
  async function loadRuns(more) {
    const tbody = $("runs");
    if (!more) { clear(tbody); runsCursor = null; }
    const body = await api("/v1/runs", { agent_id: $("f-agent").value.trim(), status: $("f-status").value, limit: 50, cursor: more ? runsCursor : "" });
    for (const r of body.runs) {
      const s = r.summary || {};
      tbody.append(el("tr", { "data-run": r.run_id },
        el("td", {}, el("a", { href: "#/runs/" + encodeURIComponent(r.run_id), class: "mono" }, r.run_id)),
        el("td", { class: "mono" }, r.agent_id), el("td", {}, badge(r.status)), el("td", {}, fmtTime(r.created_at)),
        el("td", {}, (s.steps_total || 0) + " steps · " + (s.tool_calls_total || 0) + " tools · " + (s.model_calls_total || 0) + " models")));
    }
    if (!more && !body.runs.length) emptyRow(tbody, 5, "no runs match");
    runsCursor = body.next_cursor || null;
    $("runs-more").hidden = !runsCursor;
  }

  // ---------- one run: live timeline over SSE ----------
  function setRunStatus(status) {
    const b = $("run-status");
    b.textContent = status;
    b.className = "badge st-" + status;
  }

  function describe(ev) {
    const p = ev.payload || {};
    switch (ev.type) {
      case "agentos.run.step.started": return p.step_kind + " " + (p.name || "");
      case "agentos.run.step.completed": return p.step_kind + " " + (p.name || "") + " · " + p.status + " · " + p.duration_ms + " ms";
      case "agentos.tool.call.requested": return p.tool_id + " (" + p.tool_call_id + ")";
      case "agentos.tool.call.completed": return p.tool_id + " · " + p.status + " · " + p.duration_ms + " ms";
      case "agentos.model.requested": return p.model_ref + " · " + p.operation;
      case "agentos.model.completed": {
        const route = p.route ? " via " + p.route.backend + "/" + p.route.model : "";
        return (p.model_ref || "") + " · " + p.status + route + " · " + p.latency_ms + " ms";
      }
      case "agentos.run.failed": return p.error ? p.error.code + ": " + p.error.message : "failed";
      default: return p.status || "";
    }
  }

  function addEvent(ev) {
    const li = el("li", { "data-seq": String(ev.sequence), "data-type": ev.type, class: "ev" },
      el("span", { class: "seq" }, "#" + ev.sequence),
      el("span", { class: "type" }, ev.type.replace(/^agentos\./, "")),
      el("span", { class: "what" }, describe(ev)),
      el("span", { class: "what" }, fmtTime(ev.time)),
      el("details", {}, el("summary", {}, "payload"), el("pre", {}, JSON.stringify(ev.payload, null, 2))));
    if (TERMINAL.has(ev.type)) li.classList.add(ev.type === "agentos.run.completed" ? "terminal" : "bad");
    $("timeline").append(li);
    const st = ev.payload && ev.payload.status;
    if (ev.type.startsWith("agentos.run.") && !ev.type.startsWith("agentos.run.step") && st) setRunStatus(st);
    if (ev.type === "agentos.run.completed" && ev.payload.output) showOutput(ev.payload.output.text);
  }

  function showOutput(text) {
    const o = $("run-output");
    o.textContent = text || "";
    o.hidden = !text;
  }

  function stopStream() {
    if (stream) { stream.abort(); stream = null; }
  }

  // parseSSE feeds complete messages of buf to onMessage and returns the
  // unparsed rest.
  function parseSSE(buf, onMessage) {
    buf = buf.replace(/\r\n?/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const msg = { id: null, event: "message", data: [] };
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue; // comment (": ping")
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        let value = c < 0 ? "" : line.slice(c + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "id") msg.id = value;
        else if (field === "event") msg.event = value;
        else if (field === "data") msg.data.push(value);
      }
      if (msg.data.length) onMessage(msg);
    }
    return buf;
  }

  // followEvents reads the run's SSE stream with fetch (EventSource cannot
  // send Authorization), reconnecting with Last-Event-ID until the terminal
  // event arrives or the view closes.
  async function followEvents(runId, ctl) {
    let last = 0;
    let finished = false;
    let backoff = 500;
    const state = $("stream-state");
    while (!finished && !ctl.signal.aborted) {
      try {
        const h = headers({ "Accept": "text/event-stream" });
        if (last > 0) h["Last-Event-ID"] = String(last);
        state.textContent = last > 0 ? "reconnecting…" : "connecting…";
        const r = await fetch("/v1/runs/" + encodeURIComponent(runId) + "/events", { headers: h, signal: ctl.signal, credentials: "omit", cache: "no-store" });
        if (!r.ok) {
          let body = {};
          try { body = await r.json(); } catch (_) { /* not JSON */ }
          const err = new ApiError(r.status, body);
          if (r.status < 500 && r.status !== 429) throw Object.assign(err, { fatal: true });
          throw err;
        }
        state.textContent = "live";
        backoff = 500;
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = parseSSE(buf + dec.decode(value, { stream: true }), (msg) => {
            let env;
            try { env = JSON.parse(msg.data.join("\n")); } catch (_) { return; }
            const ev = env.event || env;
            const seq = Number(ev.sequence || msg.id || 0);
            if (seq <= last) return; // duplicate after a resume
            last = seq;
            addEvent(ev);
            if (TERMINAL.has(ev.type)) finished = true;
          });
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (err.fatal) { state.textContent = ""; showError(err); return; }
      }
      if (!finished && !ctl.signal.aborted) {
        await new Promise((res) => setTimeout(res, backoff));
        backoff = Math.min(backoff * 2, 10000);
      }
    }
    if (finished) state.textContent = "stream ended";
  }

  async function openRun(runId) {
    $("run-id").textContent = runId;
    clear($("timeline"));
    showOutput("");
    $("stream-state").textContent = "";
    const body = await api("/v1/runs/" + encodeURIComponent(runId));
    const r = body.run;
    setRunStatus(r.status);
    $("run-meta").textContent = "agent " + r.agent_id + " · created " + fmtTime(r.created_at) +
      (r.completed_at ? " · finished " + fmtTime(r.completed_at) : "");
    if (r.output && r.output.text) showOutput(r.output.text);
    const ctl = new AbortController();
    stream = ctl;
    followEvents(runId, ctl);
  }

  // ---------- audit ----------
  async function loadAudit() {
    const tbody = clear($("audit"));
    const body = await api("/v1/audit", { action: $("a-action").value.trim(), since: $("a-since").value.trim(), limit: $("a-limit").value });
    const recs = body.records || [];
    for (const a of recs) {
      tbody.append(el("tr", { "data-audit": a.audit_id },
        el("td", {}, fmtTime(a.time)), el("td", { class: "mono" }, a.action), el("td", { class: "mono" }, a.principal_id),
        el("td", { class: "mono" }, a.object_type + " " + a.object_id), el("td", {}, badge(a.outcome, a.outcome === "success" || a.outcome === "ok" ? "ok" : a.outcome)),
        el("td", {}, el("details", {}, el("summary", {}, "details"), el("pre", {}, JSON.stringify(a.details, null, 2))))));
    }
    if (!recs.length) emptyRow(tbody, 6, "no audit records match");
  }

  // ---------- wiring ----------
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (key && await signIn(key)) route();
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("act-as").addEventListener("change", () => {
    const v = $("act-as").value.trim();
    if (v) sessionStorage.setItem(ACT_AS, v); else sessionStorage.removeItem(ACT_AS);
    route();
  });
  $("health-refresh").addEventListener("click", () => loadHealth().catch(showError));
  $("tenants-refresh").addEventListener("click", () => loadTenants().catch(showError));
  $("runs-filter").addEventListener("submit", (e) => { e.preventDefault(); loadRuns(false).catch(showError); });
  $("runs-more").addEventListener("click", () => loadRuns(true).catch(showError));
  $("audit-filter").addEventListener("submit", (e) => { e.preventDefault(); loadAudit().catch(showError); });
  window.addEventListener("hashchange", route);

  (async () => {
    const key = sessionStorage.getItem(KEY);
    if (key && await signIn(key)) route();
  })();
})();
