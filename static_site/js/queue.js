// The outbox: answers waiting for the server's acknowledgement, kept in localStorage so that
// neither a network failure, an expired sign-in nor a page reload loses one.
//
// - One outbox per coder and API: key "trainset.outbox.v2|<api base URL>|<coder id>". It is
//   sent only with its own coder's token (the token GET /me confirmed as theirs); another
//   coder signing in on the same device sees that answers of someone else are waiting, never
//   their content, and never sends them.
// - Each answer keeps its submission id: the server stores a retried submission once.
// - An answer leaves the outbox only when the server acknowledges it, or rejects it for a
//   reason (400, 404, 409, 413) that is then kept in the outbox's list of rejected answers
//   until the coder has seen and dismissed it.
// - 401/403 pause sending (nothing is dropped) until the coder signs in again; a network or
//   server failure (5xx) is retried with growing pauses.

import { ApiError, describe, isAuthFailure, isTransient } from "./api.js";

const PREFIX = "trainset.outbox.v2";
const LEGACY = "trainset.outbox"; // one global list, written by earlier versions of this page
const FIRST_DELAY = 500;
const MAX_DELAY = 30_000;

function parse(text, fallback) {
  try {
    return JSON.parse(text) || fallback;
  } catch {
    return fallback;
  }
}

export function excerpt(text, length = 80) {
  const clean = String(text || "").replace(/\s+/g, " ").trim();
  return clean.length > length ? `${clean.slice(0, length - 1)}…` : clean;
}

export class Outbox {
  // apiBase: the API's absolute base URL. handlers: onChange(), onReceipt(item, receipt),
  // onRejected(entry), onPaused(err): each optional.
  constructor(api, apiBase, handlers = {}) {
    this.api = api;
    this.apiBase = apiBase;
    this.handlers = handlers;
    this.coder = null;
    this.tokenSource = null;
    this.timer = null;
    this.delay = FIRST_DELAY;
    this.running = null;
    this.rerun = false;
    this.paused = null; // the 401/403 that stopped sending, until the coder signs in again
    this.lastError = null; // the last transient failure, for display
    this.waiters = new Map(); // submission id -> [resolve]
  }

  // ---- whose outbox ----------------------------------------------------------------------

  // Bind to a coder confirmed by GET /me. tokenSource returns that coder's token, or null
  // when the device is no longer signed in as them.
  open(coder, tokenSource) {
    this.close();
    this.coder = { id: coder.id, name: coder.name };
    this.tokenSource = tokenSource;
    const record = this.read();
    record.coder = this.coder;
    this.write(record);
  }

  // Sign-out: stop every timer; nothing is sent until a coder is bound again.
  close() {
    clearTimeout(this.timer);
    this.timer = null;
    this.coder = null;
    this.tokenSource = null;
    this.paused = null;
    this.lastError = null;
    this.delay = FIRST_DELAY;
    this.stallAll(new ApiError(401, { message: "signed out" }));
    this.changed();
  }

  key(coderId = this.coder && this.coder.id) {
    return `${PREFIX}|${this.apiBase}|${coderId}`;
  }

  read() {
    const empty = { coder: this.coder, api: this.apiBase, items: [], rejected: [] };
    if (!this.coder) return empty;
    const record = parse(localStorage.getItem(this.key()), empty);
    record.items = record.items || [];
    record.rejected = record.rejected || [];
    return record;
  }

  write(record) {
    if (!this.coder) return;
    if (!record.items.length && !record.rejected.length) localStorage.removeItem(this.key());
    else localStorage.setItem(this.key(), JSON.stringify(record));
  }

  changed() {
    if (this.handlers.onChange) this.handlers.onChange();
  }

  items() {
    return this.read().items;
  }

  rejected() {
    return this.read().rejected;
  }

  // Other coders' answers waiting on this device for this API: names and counts, no content.
  others() {
    const found = [];
    const prefix = `${PREFIX}|${this.apiBase}|`;
    for (let i = 0; i < localStorage.length; i += 1) {
      const key = localStorage.key(i);
      if (!key || !key.startsWith(prefix) || key === this.key()) continue;
      const record = parse(localStorage.getItem(key), null);
      const count = record && record.items ? record.items.length : 0;
      if (count) found.push({ name: (record.coder && record.coder.name) || "another coder", count });
    }
    const legacy = parse(localStorage.getItem(LEGACY), []);
    if (Array.isArray(legacy) && legacy.length) found.push({ name: null, count: legacy.length });
    return found;
  }

  // ---- adding and settling ---------------------------------------------------------------

  add(body, postExcerpt) {
    const record = this.read();
    record.items.push({ body, excerpt: postExcerpt || "", attempts: 0, queuedAt: Date.now(), lastError: null });
    this.write(record);
    this.changed();
  }

  // Add an answer and send it (after any older ones). Resolves with {receipt}, {error} (the
  // server refused it for good) or {stalled} (kept: no answer, server failure or sign-in).
  submit(body, postExcerpt) {
    const outcome = new Promise((resolve) => {
      const list = this.waiters.get(body.submission_id) || [];
      list.push(resolve);
      this.waiters.set(body.submission_id, list);
    });
    this.add(body, postExcerpt);
    this.flush();
    return outcome;
  }

  settle(submissionId, outcome) {
    const list = this.waiters.get(submissionId) || [];
    this.waiters.delete(submissionId);
    for (const resolve of list) resolve(outcome);
  }

  stallAll(err) {
    for (const id of [...this.waiters.keys()]) this.settle(id, { stalled: err });
  }

  dismiss(submissionId) {
    const record = this.read();
    record.rejected = record.rejected.filter((r) => r.submission_id !== submissionId);
    this.write(record);
    this.changed();
  }

  remove(submissionId) {
    const record = this.read();
    record.items = record.items.filter((i) => i.body.submission_id !== submissionId);
    this.write(record);
  }

  reject(item, err) {
    const record = this.read();
    record.items = record.items.filter((i) => i.body.submission_id !== item.body.submission_id);
    const entry = {
      submission_id: item.body.submission_id,
      post_id: item.body.post_id,
      family: item.body.family,
      excerpt: item.excerpt,
      status: err.status,
      reason: describe(err),
      at: Date.now(),
    };
    record.rejected.push(entry);
    this.write(record);
    if (this.handlers.onRejected) this.handlers.onRejected(entry, err);
  }

  mark(submissionId, err) {
    const record = this.read();
    for (const i of record.items) {
      if (i.body.submission_id === submissionId) {
        i.attempts += 1;
        i.lastError = describe(err);
      }
    }
    this.write(record);
  }

  // ---- sending ---------------------------------------------------------------------------

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.delay);
    this.delay = Math.min(this.delay * 2, MAX_DELAY);
  }

  // Send every waiting answer of the bound coder, oldest first. Stops at a transient failure
  // (and schedules a retry) or a 401/403 (and pauses). One run at a time.
  flush() {
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = (async () => {
      let stop = null;
      do {
        this.rerun = false;
        stop = await this.run();
      } while (this.rerun && !stop);
      if (stop) this.stallAll(stop);
    })().finally(() => {
      this.running = null;
      this.changed();
    });
    return this.running;
  }

  async run() {
    const coder = this.coder;
    const tried = new Set();
    for (;;) {
      if (!coder || this.coder !== coder) return new ApiError(401, { message: "signed out" });
      if (this.paused) return this.paused;
      const item = this.items().find((i) => !tried.has(i.body.submission_id));
      if (!item) return null;
      const id = item.body.submission_id;
      tried.add(id);
      const token = await this.tokenSource();
      if (this.coder !== coder) return new ApiError(401, { message: "signed out" });
      if (!token) {
        const err = new ApiError(401, { message: `this device is no longer signed in as ${coder.name}` });
        this.pause(err);
        return err;
      }
      try {
        const receipt = await this.api.post("/labels", item.body, { token });
        if (this.coder !== coder) return null;
        this.remove(id);
        this.delay = FIRST_DELAY;
        this.lastError = null;
        if (this.handlers.onReceipt) this.handlers.onReceipt(item, receipt);
        this.settle(id, { receipt, item });
      } catch (err) {
        if (this.coder !== coder) return err;
        if (isAuthFailure(err)) {
          this.mark(id, err);
          this.pause(err);
          return err;
        }
        if (isTransient(err)) {
          this.mark(id, err);
          this.lastError = err;
          this.schedule();
          return err;
        }
        this.reject(item, err);
        this.settle(id, { error: err, item });
      }
      this.changed();
    }
  }

  pause(err) {
    this.paused = err;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.handlers.onPaused) this.handlers.onPaused(err);
  }
}
