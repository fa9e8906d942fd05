// Sign-in. Local mode: the coder pastes the token a manager gave them. Cognito mode: the
// hosted UI with the authorization-code flow and PKCE; tokens are refreshed before expiry.

export const TOKENS = "trainset.tokens";
const VERIFIER = "trainset.pkce";

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function jwtExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return payload.exp ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

export class Auth {
  constructor(config) {
    this.config = config;
  }

  get mode() { return this.config.authMode || "local"; }

  stored() {
    try { return JSON.parse(localStorage.getItem(TOKENS) || "null"); } catch { return null; }
  }

  signedIn() { return Boolean(this.stored()); }

  // A pasted local token: three dot-separated parts. Returns a problem to show, or null.
  static tokenProblem(token) {
    const clean = token.trim();
    if (!clean) return "Paste the token your manager gave you.";
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(clean)) {
      return "This is not a whole token: a token is one long line in three parts separated by " +
        "dots. Copy all of it again from your manager's message.";
    }
    return null;
  }

  signInWithToken(token) {
    const clean = token.trim();
    localStorage.setItem(TOKENS, JSON.stringify({ idToken: clean, expiresAt: jwtExpiry(clean), coderId: null }));
  }

  // Once GET /me has said whose token this is: the outbox sends only with its coder's token.
  bindCoder(coderId) {
    const tokens = this.stored();
    if (!tokens) return;
    tokens.coderId = coderId;
    localStorage.setItem(TOKENS, JSON.stringify(tokens));
  }

  // The coder id the stored token belongs to (null before GET /me confirmed it).
  owner() {
    const tokens = this.stored();
    return tokens && tokens.coderId !== undefined ? tokens.coderId : null;
  }

  // Forget a token the server refused, without signing out of the hosted UI.
  forget() {
    localStorage.removeItem(TOKENS);
  }

  // The bearer token for the next request, refreshed first when close to expiry.
  async token() {
    const tokens = this.stored();
    if (!tokens) return null;
    const soon = Date.now() + 60_000;
    if (this.mode === "cognito" && tokens.refreshToken && tokens.expiresAt && tokens.expiresAt < soon) {
      try {
        return (await this.refresh(tokens.refreshToken)).idToken;
      } catch {
        return null; // the server then answers 401 and the page asks to sign in again
      }
    }
    return tokens.idToken;
  }

  signOut() {
    localStorage.removeItem(TOKENS);
    sessionStorage.removeItem(VERIFIER);
    for (const key of Object.keys(localStorage)) {
      // Answers not yet acknowledged stay on this device, each outbox under its own coder.
      if (key.startsWith("trainset.") && !key.startsWith("trainset.outbox")) localStorage.removeItem(key);
    }
    if (this.mode === "cognito") {
      const c = this.config.cognito;
      const url = new URL(`${c.domain}/logout`);
      url.searchParams.set("client_id", c.clientId);
      url.searchParams.set("logout_uri", c.redirectUri);
      window.location.assign(url.toString());
    }
  }

  // Cognito: go to the hosted UI.
  async startHostedSignIn() {
    const c = this.config.cognito;
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    sessionStorage.setItem(VERIFIER, verifier);
    const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const url = new URL(`${c.domain}/oauth2/authorize`);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("client_id", c.clientId);
    url.searchParams.set("redirect_uri", c.redirectUri);
    url.searchParams.set("scope", "openid email profile");
    url.searchParams.set("code_challenge_method", "S256");
    url.searchParams.set("code_challenge", challenge);
    window.location.assign(url.toString());
  }

  // Cognito: back from the hosted UI with ?code=...; trade it for tokens.
  async completeHostedSignIn() {
    const params = new URLSearchParams(window.location.search);
    const code = params.get("code");
    if (this.mode !== "cognito" || !code) return false;
    const c = this.config.cognito;
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      client_id: c.clientId,
      code,
      redirect_uri: c.redirectUri,
      code_verifier: sessionStorage.getItem(VERIFIER) || "",
    });
    await this.tokenRequest(body);
    sessionStorage.removeItem(VERIFIER);
    window.history.replaceState({}, "", window.location.pathname);
    return true;
  }

  async refresh(refreshToken) {
    const body = new URLSearchParams({
      grant_type: "refresh_token",
      client_id: this.config.cognito.clientId,
      refresh_token: refreshToken,
    });
    return this.tokenRequest(body, refreshToken);
  }

  async tokenRequest(body, keepRefresh) {
    const response = await fetch(`${this.config.cognito.domain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body,
    });
    if (!response.ok) {
      localStorage.removeItem(TOKENS);
      throw new Error("sign-in expired; please sign in again");
    }
    const data = await response.json();
    const previous = this.stored();
    const tokens = {
      // A refresh is the same person: the token stays bound to its coder.
      coderId: keepRefresh && previous ? previous.coderId : null,
      idToken: data.id_token,
      refreshToken: data.refresh_token || keepRefresh,
      expiresAt: Date.now() + (data.expires_in || 3600) * 1000,
    };
    localStorage.setItem(TOKENS, JSON.stringify(tokens));
    return tokens;
  }
}
