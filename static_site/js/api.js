// Talks to the trainset API: adds the caller's token, turns answers and failures into values,
// and says in plain words what went wrong.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `request failed with status ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.details = body && body.details;
  }
}

// The request never got an answer: no network on this device, or the server did not answer.
export class NetworkError extends Error {
  constructor(offline) {
    super(offline ? "this device is offline" : "the server cannot be reached");
    this.offline = offline;
  }
}

// Worth retrying later with the same request: no answer, a server-side failure, or "slow down".
export function isTransient(err) {
  return !(err instanceof ApiError) || err.status >= 500 || err.status === 429 || err.status === 408;
}

// Refusals of one answer that signing in again cannot change (the revision rule).
const ANSWER_REFUSALS = ["revision_not_allowed", "revision_window_closed"];

// The server does not accept who is asking: sign in again (or ask a manager). A 403 that
// refuses one answer under the revision rule is not about the coder's sign-in.
export function isAuthFailure(err) {
  if (!(err instanceof ApiError)) return false;
  if (err.status === 403 && err.details && ANSWER_REFUSALS.includes(err.details.reason)) return false;
  return err.status === 401 || err.status === 403;
}

// One sentence for the coder, for each kind of failure.
export function describe(err) {
  if (err instanceof NetworkError) {
    return err.offline
      ? "This device is offline (no network connection)."
      : "The server cannot be reached (no answer).";
  }
  if (!(err instanceof ApiError)) return `Something went wrong on this page: ${err.message}`;
  const s = err.status;
  if (s === 401) return "Your sign-in has expired or was not accepted. Sign in again.";
  if (s === 403) return `The server refused this for your account: ${err.message}`;
  if (s === 409) return err.message;
  if (s === 413) return "This answer is too large for the server (over 64 KiB).";
  if (s === 429) return "The server is busy (too many requests).";
  if (s >= 500) return `The server had a problem (error ${s}). It is not your fault.`;
  return err.message;
}

export class Api {
  constructor(baseUrl, tokenSource) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.tokenSource = tokenSource; // async () => token or null
  }

  // opts.token: send exactly this token (the outbox sends with its coder's own token only).
  async request(method, path, body, opts = {}) {
    const headers = { Accept: "application/json" };
    const token = "token" in opts ? opts.token : await this.tokenSource();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new NetworkError(navigator.onLine === false);
    }
    let data = null;
    const text = await response.text().catch(() => "");
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { error: "bad_response", message: "the server sent something that is not JSON" };
      }
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  get(path) { return this.request("GET", path); }
  post(path, body, opts) { return this.request("POST", path, body, opts); }
  patch(path, body) { return this.request("PATCH", path, body); }
}
