// The live status page: plain DOM, no framework, no build step, nothing from elsewhere.
// Data only ever reaches the page as text nodes (textContent), never as markup.
"use strict";

const TOKEN_KEY = "lain-console-token";
const PROTOCOL = "graphql-transport-ws";
// The server allows 20 subscriptions per socket; leave room for the log tail.
const SUBSCRIPTIONS_PER_SOCKET = 15;
const APP_REFRESH_MS = 15000;
const EVENTS_KEPT = 100;
const LOG_LINES_KEPT = 1000;

const INSTANCE_FIELDS = "number status healthy restarts release lastError";
const PROC_FIELDS = `name type health numInstances lastError rollout deployed runningReleases
  canary { desired placed healthy promoted awaitingPromotion }
  instances { ${INSTANCE_FIELDS} }`;
const APP_FIELDS = "name apptype status health metaVersion deployError";
const APPS_QUERY = `query($after: String) {
  viewer { name isAdmin }
  apps(first: 100, after: $after) {
    nodes { ${APP_FIELDS} procs { ${PROC_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const APP_EVENTS = `subscription($name: String!, $after: String) {
  appEvents(name: $name, after: $after) {
    cursor kind
    app { ${APP_FIELDS} }
    proc { ${PROC_FIELDS} }
    instance { ${INSTANCE_FIELDS} }
  }
}`;
const LOGS = `subscription($app: String!, $proc: String!, $tail: Int!) {
  logs(app: $app, proc: $proc, tail: $tail) {
    droppedLines line { time instance stream text }
  }
}`;

class Unauthenticated extends Error {}

// ---- small DOM helpers ----------------------------------------------------------------

function $(id) {
  return document.getElementById(id);
}

// el("td", {class: "x", "data-a": 1}, "text", otherNode): strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function healthBadge(health) {
  const text = health || "UNKNOWN";
  return el("span", { class: "badge", "data-health": text }, text);
}

function showProblem(text) {
  const problem = $("problem");
  problem.textContent = text || "";
  problem.hidden = !text;
}

// ---- credentials and HTTP ------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function isUnauthenticated(errors) {
  return (errors || []).some((e) => (e.extensions || {}).code === "UNAUTHENTICATED");
}

async function graphql(query, variables) {
  const headers = { "content-type": "application/json" };
  if (token()) headers.authorization = `Bearer ${token()}`;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables: variables || {} }),
  });
  if (response.status === 401) throw new Unauthenticated("the token was not accepted");
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`the console answered ${response.status} without JSON`);
  }
  if (isUnauthenticated(body.errors)) throw new Unauthenticated(body.errors[0].message);
  if (body.errors && body.errors.length) throw new Error(body.errors[0].message);
  return body.data;
}

// ---- graphql-transport-ws ------------------------------------------------------------

// One websocket carrying several subscriptions; it reconnects by itself and resubscribes,
// each subscription resuming from where its `variables()` say.
class Socket {
  constructor(onUnauthorized, onState) {
    this.subscriptions = new Map();
    this.nextId = 1;
    this.ws = null;
    this.acked = false;
    this.retry = 500;
    this.closed = false;
    this.onUnauthorized = onUnauthorized;
    this.onState = onState;
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/graphql`, PROTOCOL);
    this.ws = ws;
    this.acked = false;
    ws.onopen = () => {
      const payload = token() ? { accessToken: token() } : {};
      ws.send(JSON.stringify({ type: "connection_init", payload }));
    };
    ws.onmessage = (message) => this.receive(JSON.parse(message.data));
    ws.onclose = (close) => {
      this.acked = false;
      if (this.closed) return;
      this.onState("down");
      if (close.code === 4401 || close.code === 4403) {
        this.closed = true;
        this.onUnauthorized();
        return;
      }
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }

  receive(message) {
    if (message.type === "connection_ack") {
      this.acked = true;
      this.retry = 500;
      this.onState("live");
      for (const [id, subscription] of this.subscriptions) this.start(id, subscription);
    } else if (message.type === "ping") {
      this.ws.send(JSON.stringify({ type: "pong" }));
    } else if (message.type === "next") {
      const subscription = this.subscriptions.get(message.id);
      if (!subscription) return;
      const payload = message.payload || {};
      if (payload.errors && payload.errors.length) subscription.onError(payload.errors);
      if (payload.data) subscription.onData(payload.data);
    } else if (message.type === "error") {
      const subscription = this.subscriptions.get(message.id);
      this.subscriptions.delete(message.id);
      if (subscription) subscription.onError(message.payload || []);
    } else if (message.type === "complete") {
      const subscription = this.subscriptions.get(message.id);
      this.subscriptions.delete(message.id);
      if (subscription && subscription.onComplete) subscription.onComplete();
    }
  }

  start(id, subscription) {
    const payload = { query: subscription.query, variables: subscription.variables() };
    this.ws.send(JSON.stringify({ id, type: "subscribe", payload }));
  }

  // subscription: {query, variables(), onData(data), onError(errors), onComplete()}
  subscribe(subscription) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, subscription);
    if (this.acked) this.start(id, subscription);
    return id;
  }

  unsubscribe(id) {
    if (!this.subscriptions.delete(id)) return;
    if (this.acked) this.ws.send(JSON.stringify({ id, type: "complete" }));
  }

  get size() {
    return this.subscriptions.size;
  }

  close() {
    this.closed = true;
    this.ws.close(1000);
  }
}

// Spreads subscriptions over as many sockets as the per-socket limit needs.
class Live {
  constructor(onUnauthorized) {
    this.sockets = [];
    this.onUnauthorized = onUnauthorized;
  }

  subscribe(subscription) {
    let socket = this.sockets.find((s) => s.size < SUBSCRIPTIONS_PER_SOCKET);
    if (!socket) {
      socket = new Socket(this.onUnauthorized, () => this.showState());
      this.sockets.push(socket);
    }
    const id = socket.subscribe(subscription);
    return () => socket.unsubscribe(id);
  }

  showState() {
    const badge = $("connection");
    if (!this.sockets.length) {
      // Nothing to follow yet: new apps are picked up by the periodic refresh.
      badge.dataset.state = "idle";
      badge.textContent = "no apps to follow";
      return;
    }
    const live = this.sockets.every((s) => s.acked);
    badge.dataset.state = live ? "live" : "down";
    badge.textContent = live ? "live" : "connecting…";
  }

  close() {
    for (const socket of this.sockets) socket.close();
    this.sockets = [];
  }
}

// ---- the page's state and rendering ----------------------------------------------------

const state = {
  apps: new Map(), // name -> {app, procs: [proc], cursor, unsubscribe}
  live: null,
  logs: null, // {app, proc, unsubscribe}
  refreshTimer: null,
};

function renderInstances(app, proc) {
  const chips = proc.instances.map((instance) => {
    const title = [
      `release ${instance.release || "?"}`,
      `restarts ${instance.restarts}`,
      instance.lastError ? `error: ${instance.lastError}` : null,
    ].filter(Boolean);
    return el(
      "span",
      {
        class: "instance",
        "data-instance": instance.number,
        "data-status": instance.status,
        title: title.join("\n"),
      },
      `#${instance.number} ${instance.status}`,
    );
  });
  return el("div", { class: "instances" }, ...chips);
}

// A rollout under way: its canaries (Nomad), and every release still serving.
function renderRollout(proc) {
  const lines = [];
  const canary = proc.canary;
  if (canary) {
    let text = `canaries ${canary.healthy}/${canary.desired} healthy`;
    if (canary.awaitingPromotion) text += " · waiting for a promotion";
    else if (canary.promoted) text += " · promoted";
    lines.push(el("div", { class: "rollout", "data-canary": proc.name }, text));
  }
  if (proc.runningReleases.length > 1) {
    const text = `serving ${proc.runningReleases.join(", ")}`;
    lines.push(el("div", { class: "muted", "data-releases": proc.name }, text));
  }
  return lines;
}

function renderProc(app, proc) {
  const following = state.logs && state.logs.app === app.name && state.logs.proc === proc.name;
  const logsButton = el(
    "button",
    { type: "button", class: following ? "active" : null, "data-logs": proc.name },
    "logs",
  );
  logsButton.addEventListener("click", () => followLogs(app.name, proc.name));
  const running = proc.instances.filter((i) => i.status === "RUNNING").length;
  return el(
    "tr",
    { "data-proc": proc.name },
    el("td", {}, el("strong", {}, proc.name), el("div", { class: "muted" }, proc.type)),
    el("td", {}, healthBadge(proc.health)),
    el("td", { class: "count" }, `${running}/${proc.numInstances}`),
    el(
      "td",
      {},
      renderInstances(app, proc),
      ...renderRollout(proc),
      proc.lastError ? el("div", { class: "error-text" }, proc.lastError) : null,
    ),
    el("td", {}, logsButton),
  );
}

function renderApp(entry) {
  const { app, procs } = entry;
  const head = el(
    "div",
    { class: "app-head" },
    el("span", { class: "app-name" }, app.name),
    healthBadge(app.health),
    el("span", { class: "muted" }, `${app.status.toLowerCase()} · ${app.apptype.toLowerCase()}`),
    el("span", { class: "muted" }, app.metaVersion ? `release ${app.metaVersion}` : "no release"),
  );
  const rows = procs.map((proc) => renderProc(app, proc));
  const table = procs.length
    ? el(
        "table",
        {},
        el(
          "thead",
          {},
          el("tr", {}, ...["proc", "health", "up", "instances", ""].map((t) => el("th", {}, t))),
        ),
        el("tbody", {}, ...rows),
      )
    : el("p", { class: "muted" }, "no procs");
  return el(
    "article",
    { class: "app", "data-app": app.name, "data-health": app.health || "" },
    head,
    app.deployError ? el("p", { class: "error-text" }, app.deployError) : null,
    table,
  );
}

function renderApps() {
  const names = [...state.apps.keys()].sort();
  const cards = names.map((name) => renderApp(state.apps.get(name)));
  const apps = $("apps");
  apps.replaceChildren(...cards);
  if (!names.length) apps.append(el("p", { class: "muted" }, "No deployed apps yet."));
  $("app-count").textContent = `(${names.length})`;
}

function addEvent(event) {
  const parts = [event.app.name];
  if (event.proc) parts.push(event.proc.name);
  let what = event.kind.toLowerCase().replace("_", " ");
  if (event.instance) what = `instance #${event.instance.number} ${event.instance.status}`;
  else if (event.kind === "APP") what = `app ${event.app.status.toLowerCase()}`;
  else if (event.proc && event.kind === "PROC") what = `proc ${event.proc.health || ""}`;
  const item = el(
    "li",
    { "data-kind": event.kind },
    el("time", {}, new Date().toLocaleTimeString()),
    el("strong", {}, parts.join(".")),
    ` ${what}`,
  );
  const list = $("events");
  list.prepend(item);
  while (list.children.length > EVENTS_KEPT) list.lastElementChild.remove();
}

// An event carries snapshots of the app and of the proc it is about: fold them in.
function applyEvent(entry, event) {
  entry.cursor = event.cursor;
  entry.app = event.app;
  if (event.proc) {
    const index = entry.procs.findIndex((p) => p.name === event.proc.name);
    if (event.kind === "PROC_REMOVED") {
      if (index >= 0) entry.procs.splice(index, 1);
    } else if (index >= 0) {
      entry.procs[index] = event.proc;
    } else {
      entry.procs.push(event.proc);
    }
  }
  addEvent(event);
  renderApps();
}

function watchApp(entry) {
  entry.unsubscribe = state.live.subscribe({
    query: APP_EVENTS,
    // Resume after the last event seen, so a reconnect loses nothing.
    variables: () => ({ name: entry.app.name, after: entry.cursor }),
    onData: (data) => applyEvent(entry, data.appEvents),
    onError: (errors) => {
      if (isUnauthenticated(errors)) signedOut("the token is no longer accepted");
      else showProblem(`${entry.app.name}: ${errors.map((e) => e.message).join("; ")}`);
    },
  });
}

async function loadApps() {
  const seen = new Set();
  let after = null;
  let viewer = null;
  do {
    const data = await graphql(APPS_QUERY, { after });
    viewer = data.viewer;
    for (const app of data.apps.nodes) {
      seen.add(app.name);
      const { procs, ...fields } = app;
      const known = state.apps.get(app.name);
      if (known) {
        known.app = fields;
        known.procs = procs;
      } else {
        const entry = { app: fields, procs, cursor: null, unsubscribe: null };
        state.apps.set(app.name, entry);
        watchApp(entry);
      }
    }
    after = data.apps.pageInfo.hasNextPage ? data.apps.pageInfo.endCursor : null;
  } while (after);
  for (const [name, entry] of state.apps) {
    if (!seen.has(name)) {
      entry.unsubscribe();
      state.apps.delete(name);
    }
  }
  $("viewer").textContent = viewer ? `${viewer.name}${viewer.isAdmin ? " (admin)" : ""}` : "";
  state.live.showState();
  renderApps();
}

// ---- log tail ------------------------------------------------------------------------

function followLogs(app, proc) {
  stopLogs();
  const box = $("logs");
  box.replaceChildren();
  $("logs-target").textContent = `${app}.${proc}`;
  $("logs-stop").hidden = false;
  const append = (node) => {
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 20;
    box.append(node);
    while (box.children.length > LOG_LINES_KEPT) box.firstElementChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  };
  state.logs = {
    app,
    proc,
    unsubscribe: state.live.subscribe({
      query: LOGS,
      variables: () => ({ app, proc, tail: 200 }),
      onData: (data) => {
        const entry = data.logs;
        if (!entry.line) {
          append(el("div", { class: "log-marker" }, `… ${entry.droppedLines} lines dropped`));
          return;
        }
        const line = entry.line;
        const time = line.time ? line.time.slice(11, 19) : "--:--:--";
        append(
          el(
            "div",
            { class: "log-line", "data-stream": line.stream },
            `${time} #${line.instance} ${line.text}`,
          ),
        );
      },
      onError: (errors) =>
        append(el("div", { class: "log-marker" }, errors.map((e) => e.message).join("; "))),
    }),
  };
  renderApps();
}

function stopLogs() {
  if (!state.logs) return;
  state.logs.unsubscribe();
  state.logs = null;
  $("logs-stop").hidden = true;
  $("logs-target").textContent = "stopped";
  renderApps();
}

// ---- start, sign in, sign out ----------------------------------------------------------

function stopEverything() {
  clearInterval(state.refreshTimer);
  if (state.live) state.live.close();
  state.live = null;
  state.logs = null;
  state.apps.clear();
}

function signedOut(reason) {
  stopEverything();
  sessionStorage.removeItem(TOKEN_KEY);
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("viewer").textContent = "";
  const problem = $("token-problem");
  problem.textContent = reason || "";
  problem.hidden = !reason;
  $("token-form").hidden = false;
  $("token-input").focus();
  const badge = $("connection");
  badge.dataset.state = "down";
  badge.textContent = "signed out";
}

async function start() {
  stopEverything();
  state.live = new Live(() => signedOut("the token is not accepted for live updates"));
  try {
    await loadApps();
  } catch (error) {
    if (error instanceof Unauthenticated) {
      signedOut(token() ? `That token was not accepted (${error.message}).` : "");
      return;
    }
    showProblem(`Cannot load apps: ${error.message}`);
  }
  $("token-form").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = !token();
  // New or removed apps, and anything a dropped event would have changed.
  state.refreshTimer = setInterval(() => {
    loadApps().then(
      () => showProblem(""),
      (error) => {
        if (error instanceof Unauthenticated) signedOut(error.message);
        else showProblem(`Cannot load apps: ${error.message}`);
      },
    );
  }, APP_REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => signedOut(""));
  $("logs-stop").addEventListener("click", stopLogs);
  start();
});
