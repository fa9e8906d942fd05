// Submissions waiting to be acknowledged, kept in localStorage so that neither a network
// failure nor a page reload loses an answer. Each keeps its submission id: the server stores
// a retried submission once.

import { ApiError, isTransient } from "./api.js";

const KEY = "trainset.outbox";

export class Outbox {
  constructor(api, onChange) {
    this.api = api;
    this.onChange = onChange || (() => {});
    this.timer = null;
    this.delay = 1000;
    this.flushing = null;
  }

  items() {
    try {
      return JSON.parse(localStorage.getItem(KEY) || "[]");
    } catch {
      return [];
    }
  }

  save(items) {
    localStorage.setItem(KEY, JSON.stringify(items));
    this.onChange(items);
  }

  add(body) {
    const items = this.items();
    items.push({ body, attempts: 0, queuedAt: Date.now(), lastError: null });
    this.save(items);
  }

  remove(submissionId) {
    this.save(this.items().filter((i) => i.body.submission_id !== submissionId));
  }

  // Send one queued submission now. Resolves with the server's receipt; rejects with the
  // error. A transient failure leaves it queued and schedules a retry.
  async send(submissionId) {
    const item = this.items().find((i) => i.body.submission_id === submissionId);
    if (!item) return null;
    try {
      const receipt = await this.api.post("/labels", item.body);
      this.remove(submissionId);
      this.delay = 1000;
      return receipt;
    } catch (err) {
      if (isTransient(err)) {
        this.mark(submissionId, err);
        this.schedule();
      } else {
        this.remove(submissionId); // the server has answered for good: never resend
      }
      throw err;
    }
  }

  mark(submissionId, err) {
    const items = this.items();
    for (const i of items) {
      if (i.body.submission_id === submissionId) {
        i.attempts += 1;
        i.lastError = err instanceof ApiError ? err.message : "the server could not be reached";
      }
    }
    this.save(items);
  }

  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.delay);
    this.delay = Math.min(this.delay * 2, 30000);
  }

  // Send everything queued, oldest first; stops at the first transient failure.
  flush() {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      const results = [];
      for (const item of this.items()) {
        try {
          results.push({ item, receipt: await this.send(item.body.submission_id) });
        } catch (err) {
          if (isTransient(err)) break;
          results.push({ item, error: err });
        }
      }
      return results;
    })().finally(() => { this.flushing = null; });
    return this.flushing;
  }
}
