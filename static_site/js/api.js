// Talks to the trainset API: adds the caller's token, turns answers and failures into values.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `request failed with status ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.details = body && body.details;
  }
}

// A network failure or a server-side failure: worth retrying later with the same request.
export function isTransient(err) {
  return !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
}

export class Api {
  constructor(baseUrl, tokenSource) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.tokenSource = tokenSource; // async () => token or null
  }

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = await this.tokenSource();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    let data = null;
    const text = await response.text();
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
  post(path, body) { return this.request("POST", path, body); }
  patch(path, body) { return this.request("PATCH", path, body); }
}
