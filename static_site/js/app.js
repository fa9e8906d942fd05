// The coders' labeling page: sign-in, consent, family choice, keyboard-first labeling with an
// outbox per coder, history for review and revision, practice feedback, and the manager view.
//
// Never the same post twice: the page asks for the next post only when the coder's outbox is
// empty. After Enter the form is locked; the answer is sent; only when the server has
// acknowledged it (or refused it for a reason the coder is shown) does the next post come.
// While the server cannot take it, the page says "Sending your last answer" instead of
// showing a post, so a post whose answer is still waiting is never labeled again.

import { Api, ApiError, describe, isAuthFailure, isTransient } from "./api.js";
import { Auth, TOKENS } from "./auth.js";
import { el, QuestionForm } from "./form.js";
import { ManagerView } from "./manager.js";
import { excerpt, Outbox } from "./queue.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["view-signin", "view-consent", "view-start", "view-task", "view-manager"];

const state = {
  config: null,
  codebook: null,
  me: null,
  family: null,
  mode: "work",
  view: null,
  task: null, // the leased post (the current work), even while reviewing history
  shownAt: 0,
  form: null,
  history: null, // the coder's labels in this family, newest first, while reviewing
  historyIndex: -1, // -1: the current task; 0..n-1: a label from history
  drafts: new Map(), // unfinished answers per post, kept while walking through history
  feedback: null, // practice feedback on screen (Enter continues)
  progress: null, // the last progress figures from GET /tasks/next
  busy: false, // between Enter and the next post: the form is locked
  waiting: false, // the task view shows "Sending your last answer" or "Sign in again"
  seq: 0, // bumped on every navigation: late answers for an old screen are dropped
  manager: null, // the manager view, made once (it binds its controls once)
};

let api;
let auth;
let outbox;

function show(viewId) {
  $("loading").hidden = true;
  for (const id of VIEWS) $(id).hidden = id !== viewId;
  if (viewId !== "view-task") $("announce").textContent = "";
  state.view = viewId;
  renderProgress();
  renderNotices();
}

function toast(message, kind = "info") {
  const box = $("toast");
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 4000);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// ---- counters: first labels only, the same way as the manager table and the coder report ----

function sessionKey() {
  return `trainset.session.${state.me ? state.me.id : "none"}`;
}

function sessionCount() {
  return Number(sessionStorage.getItem(sessionKey()) || "0");
}

function countFirstLabel(receipt) {
  if (!state.me || receipt.revision !== 1 || receipt.practice) return;
  sessionStorage.setItem(sessionKey(), String(sessionCount() + 1));
}

function practiceLine(p) {
  const c = p.certification;
  const pct = p.score === null || p.score === undefined ? null : Math.round(p.score * 100);
  const score = pct === null ? "no practice answers yet" : `${p.correct} of ${p.answered} right (${pct}%)`;
  let needs;
  if (c.ready) needs = "ready for certification: a manager can certify you";
  else {
    const more = Math.max(0, c.min_answers - p.answered);
    const parts = [];
    if (more) parts.push(`${plural(more, "more practice post")}`);
    if (pct === null || pct < Math.round(c.min_score * 100)) parts.push(`a score of at least ${Math.round(c.min_score * 100)}%`);
    needs = `certification needs ${parts.join(" and ")}`;
  }
  return { score, needs };
}

function renderProgress() {
  const box = $("progress");
  if (!state.me || !["view-task", "view-start"].includes(state.view)) { box.hidden = true; return; }
  box.hidden = false;
  const name = state.me.name;
  if (state.view === "view-task" && state.mode === "practice" || state.me.status !== "certified") {
    const { score, needs } = practiceLine(state.me.practice);
    box.textContent = `${name}'s practice: ${score} · ${needs}`;
    box.title = "Your practice answers, scored against the correct answers.";
    return;
  }
  const today = state.progress ? state.progress.done_today : state.me.today.total;
  const parts = [`${name}: ${plural(today, "post")} labeled today`, `${sessionCount()} this session`];
  if (state.view === "view-task" && state.progress && state.family) {
    parts.push(`about ${state.progress.remaining_in_family} left in ${state.family.title || state.family.name} (all coders)`);
  }
  box.textContent = parts.join(" · ");
  box.title = "First labels of real work since midnight UTC; revisions and practice are not counted. " +
    "The number left is counted by the server every few seconds.";
}

function renderOutbox() {
  const box = $("outbox-state");
  const items = outbox && outbox.coder ? outbox.items() : [];
  if (!items.length) { box.hidden = true; box.textContent = ""; }
  else {
    box.hidden = false;
    const n = plural(items.length, "answer");
    if (outbox.paused) box.textContent = `${n} waiting: sign in again as ${outbox.coder.name} to send ${items.length === 1 ? "it" : "them"}`;
    else if (outbox.lastError) box.textContent = `${n} waiting to be sent (${describe(outbox.lastError)} Retrying.)`;
    else box.textContent = `${n} being sent…`;
  }
  renderNotices();
  if (state.view === "view-task" && state.waiting && !outbox.paused) renderSending();
}

// Answers the server refused (kept until dismissed) and other coders' answers on this device.
function renderNotices() {
  const box = $("notices");
  box.replaceChildren();
  if (!outbox) return;
  if (outbox.coder) {
    for (const r of outbox.rejected()) {
      const dismiss = el("button", { type: "button", class: "link", text: "Dismiss",
        "aria-label": `Dismiss the notice about post ${r.post_id}` });
      dismiss.addEventListener("click", () => outbox.dismiss(r.submission_id));
      box.append(el("p", { class: "notice error-notice", "data-post": r.post_id },
        el("span", { dir: "auto", text: `Not stored: your answer to “${r.excerpt}” (post ${r.post_id}). ${r.reason} ` }), dismiss));
    }
  }
  for (const other of outbox.others()) {
    const who = other.name ? `of ${other.name}` : "saved by an earlier version of this page (coder unknown)";
    const when = other.name ? `They are sent only when ${other.name} signs in on this device.` : "They are not sent.";
    box.append(el("p", { class: "notice", "data-other": other.name || "" },
      `${plural(other.count, "answer")} ${who} ${other.count === 1 ? "is" : "are"} waiting on this device. ${when}`));
  }
}

// ---- start-up -------------------------------------------------------------------------------

async function boot() {
  state.config = await (await fetch("config.json", { cache: "no-store" })).json();
  auth = new Auth(state.config);
  api = new Api(state.config.apiBaseUrl, () => auth.token());
  const apiBase = new URL(state.config.apiBaseUrl, window.location.href).href.replace(/\/$/, "");
  outbox = new Outbox(api, apiBase, {
    onChange: renderOutbox,
    onReceipt: (item, receipt) => countFirstLabel(receipt),
    onRejected: () => renderNotices(),
    onPaused: (err) => {
      if (state.view === "view-task" && state.waiting) showReauth(err);
    },
  });
  bindControls();
  try {
    await auth.completeHostedSignIn();
  } catch (err) {
    return showSignIn(err.message);
  }
  state.codebook = await api.get("/codebook");
  if (!auth.signedIn()) return showSignIn();
  await afterSignIn();
}

function showSignIn(message) {
  state.seq += 1;
  state.me = null;
  $("who").hidden = true;
  $("form-token").hidden = auth.mode !== "local";
  $("signin-hosted").hidden = auth.mode !== "cognito";
  $("signin-error").hidden = !message;
  $("signin-error").textContent = message || "";
  show("view-signin");
  if (auth.mode === "local") $("token").focus();
  else $("btn-hosted").focus();
}

function tokenRefusal(err) {
  if (err.status === 403) return `This account cannot sign in: ${err.message}`;
  if (/expired/i.test(err.message)) return "This token has expired. Ask your manager for a new one.";
  return "This token was not accepted: it may be incomplete, or from another trainset installation. " +
    "Copy all of it again, or ask your manager for a new one.";
}

async function afterSignIn() {
  let me;
  try {
    me = await api.get("/me");
  } catch (err) {
    if (isAuthFailure(err)) {
      auth.forget();
      return showSignIn(tokenRefusal(err));
    }
    return showSignIn(`Cannot sign in right now: ${describe(err)} Try again in a moment.`);
  }
  state.me = me;
  state.progress = null;
  auth.bindCoder(me.id);
  outbox.open(me, async () => (auth.owner() === me.id ? auth.token() : null));
  outbox.flush();
  $("who").hidden = false;
  $("who-name").textContent = `${me.name} (${me.status}${me.role === "manager" ? ", manager" : ""})`;
  $("btn-manager").hidden = me.role !== "manager";
  renderOutbox();
  if (!localStorage.getItem(`trainset.consent.${me.id}`)) {
    show("view-consent");
    $("btn-consent").focus();
    return;
  }
  showStart();
}

// Any 401/403 outside the outbox: the coder signs in again; waiting answers stay.
function handleAuthFailure(err) {
  const pending = outbox.items().length;
  const name = state.me ? state.me.name : "";
  auth.forget();
  outbox.pause(err);
  const waiting = pending ? ` ${plural(pending, "answer")} of ${name} ${pending === 1 ? "is" : "are"} kept on this device and sent once ${name} signs in again.` : "";
  showSignIn(`${describe(err)}${waiting}`);
}

async function refreshMe() {
  try {
    const me = await api.get("/me");
    if (state.me && me.id === state.me.id) {
      state.me = me;
      renderProgress();
      if (state.view === "view-start") renderTraineeNote();
    }
  } catch (err) {
    if (isAuthFailure(err)) handleAuthFailure(err);
  }
}

function renderTraineeNote() {
  const trainee = state.me.status !== "certified";
  const note = $("trainee-note");
  note.hidden = !trainee;
  if (!trainee) return;
  const { score, needs } = practiceLine(state.me.practice);
  note.textContent = `You are a trainee: practice until a manager certifies you. Your practice score: ${score}; ${needs}.`;
}

function showStart() {
  state.seq += 1;
  state.task = null;
  state.history = null;
  state.historyIndex = -1;
  state.feedback = null;
  state.waiting = false;
  state.drafts.clear();
  setBusy(false);
  const trainee = state.me.status !== "certified";
  renderTraineeNote();
  if (trainee) state.mode = "practice";
  for (const input of document.querySelectorAll("input[name=mode]")) {
    input.disabled = trainee && input.value === "work";
    input.checked = input.value === state.mode;
  }
  const families = $("families");
  families.replaceChildren();
  state.codebook.families.forEach((family, i) => {
    const button = el("button", { type: "button", class: "family", "data-family": family.name,
      "aria-keyshortcuts": String(i + 1) },
    el("kbd", { class: "key-hint", "aria-hidden": "true", text: String(i + 1) }),
    el("strong", { text: family.title }), el("span", { text: family.help }));
    button.addEventListener("click", () => startFamily(family.name));
    families.append(button);
  });
  show("view-start");
  families.querySelector("button").focus();
  refreshMe(); // the practice score and today's count, fresh
}

function startFamily(name) {
  const checked = document.querySelector("input[name=mode]:checked");
  state.mode = checked ? checked.value : "work";
  state.family = state.codebook.families.find((f) => f.name === name);
  state.progress = null;
  state.drafts.clear();
  if (!state.form || state.form.family !== state.family) {
    state.form = new QuestionForm($("questions"), state.family);
  }
  $("task-body").hidden = true;
  $("task-actions").hidden = true;
  $("task-message").hidden = true;
  $("post-text").textContent = "";
  show("view-task");
  loadNext();
}

// ---- the busy lock --------------------------------------------------------------------------

function setBusy(on) {
  state.busy = on;
  const view = $("view-task");
  view.setAttribute("aria-busy", String(on));
  $("task-body").inert = on;
  $("task-actions").inert = on;
  $("busy-note").hidden = !on;
}

// ---- tasks ----------------------------------------------------------------------------------

function showMessage(title, text, buttons = [], { focus = true } = {}) {
  state.task = state.waiting ? state.task : null;
  $("task-body").hidden = true;
  $("task-actions").hidden = true;
  $("feedback").hidden = true;
  $("review-banner").hidden = true;
  const box = $("task-message");
  box.hidden = false;
  box.replaceChildren(el("h3", { text: title }));
  for (const line of [].concat(text)) if (line) box.append(el("p", { text: line }));
  const row = el("div", { class: "actions centered" });
  for (const [label, action, primary] of buttons) {
    const button = el("button", { type: "button", class: primary ? "primary" : "", text: label });
    button.addEventListener("click", action);
    row.append(button);
  }
  if (buttons.length) box.append(row);
  const first = row.querySelector("button");
  if (focus && first) first.focus();
}

// The answer of the post just submitted is still in the outbox: say so, never show a post.
function showSending() {
  state.waiting = true;
  setBusy(false);
  renderSending(true);
}

function renderSending(focus = false) {
  const items = outbox.items();
  if (!items.length) {
    state.waiting = false;
    loadNext();
    return;
  }
  const last = items[items.length - 1];
  const reason = outbox.lastError ? describe(outbox.lastError) : "Sending…";
  const lines = [
    `Your answer to “${last.excerpt}” is saved on this device and is being sent. The next post comes as soon as the server has it.`,
    items.length > 1 ? `${plural(items.length, "answer")} are waiting.` : "",
    `${reason}${last.attempts ? ` (tried ${plural(last.attempts, "time")}; trying again by itself)` : ""}`,
  ];
  const box = $("task-message");
  const had = box.contains(document.activeElement);
  showMessage("Sending your last answer", lines, [["Try now", () => outbox.flush(), true],
    ["Choose another family", showStart]], { focus: focus || had });
}

function showReauth(err) {
  state.waiting = true;
  setBusy(false);
  const n = outbox.items().length;
  const name = state.me ? state.me.name : "";
  showMessage("Sign in again to send your answers", [
    `${describe(err)} ${plural(n, "answer")} of ${name} ${n === 1 ? "is" : "are"} kept on this device; nothing is lost.`,
    `Sign in again as ${name} and ${n === 1 ? "it is" : "they are"} sent before the next post.`,
  ], [["Sign in again", () => handleAuthFailure(err), true]]);
}

async function loadNext() {
  const seq = ++state.seq;
  state.historyIndex = -1;
  state.history = null;
  state.feedback = null;
  $("feedback").hidden = true;
  $("review-banner").hidden = true;
  if (outbox.items().length) {
    if (outbox.paused) return showReauth(outbox.paused);
    showSending();
    outbox.flush();
    return;
  }
  state.waiting = false;
  setBusy(true);
  let answer;
  try {
    answer = await api.get(`/tasks/next?family=${encodeURIComponent(state.family.name)}&mode=${state.mode}`);
  } catch (err) {
    if (seq !== state.seq) return;
    setBusy(false);
    if (isAuthFailure(err)) return handleAuthFailure(err);
    if (isTransient(err)) {
      showMessage("Waiting for the server", [`${describe(err)} Trying again…`], [["Try now", loadNext, true]]);
      setTimeout(() => { if (seq === state.seq) loadNext(); }, 3000);
    } else {
      showMessage("No post", describe(err), [["Choose another family", showStart, true]]);
    }
    return;
  }
  if (seq !== state.seq) return;
  state.progress = answer.progress;
  if (!answer.task) {
    setBusy(false);
    showEmpty(answer.message);
  } else {
    showTask(answer.task, state.drafts.get(answer.task.post_id) || {});
    setBusy(false);
    state.form.focusFirst();
  }
  renderProgress();
}

function showEmpty(message) {
  state.task = null;
  showMessage(message, [], [["Check again", loadNext, true], ["Choose another family", showStart],
    ["Review my labels ([)", historyBack]]);
}

function showPost(post) {
  $("task-message").hidden = true;
  $("task-body").hidden = false;
  $("task-actions").hidden = false;
  const text = $("post-text");
  text.textContent = post.text;
  text.scrollTop = 0;
  const img = $("post-image");
  const note = $("post-image-note");
  img.hidden = true;
  img.removeAttribute("src");
  if (post.image_url) {
    note.textContent = "Loading image…";
    img.onload = () => { img.hidden = false; note.textContent = "Press Z or click the image to enlarge it."; };
    img.onerror = () => { img.hidden = true; note.textContent = "The image could not be loaded. Label from the text."; };
    img.src = post.image_url;
  } else {
    note.textContent = "No image with this post.";
  }
}

function announce(message) {
  const box = $("announce");
  box.textContent = "";
  box.textContent = message;
}

function renderNav() {
  const reviewing = state.historyIndex >= 0;
  $("btn-forward").disabled = !reviewing;
  $("btn-back").disabled = Boolean(state.history && state.historyIndex + 1 >= state.history.length);
  $("btn-skip").disabled = reviewing || !state.task || Boolean(state.feedback);
}

function showTask(task, answers) {
  state.task = task;
  state.waiting = false;
  state.shownAt = performance.now();
  showPost(task);
  state.form.setAnswers(answers);
  renderNav();
  announce(`New post: ${excerpt(task.text, 500)}`);
}

// ---- submitting -----------------------------------------------------------------------------

function newSubmissionId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function submit() {
  if (state.busy || state.waiting || state.view !== "view-task") return;
  if (state.feedback) return loadNext();
  const reviewing = state.historyIndex >= 0;
  const post = reviewing ? state.history[state.historyIndex] : state.task;
  if (!post || $("task-body").hidden || !state.form.validate()) return;
  const body = {
    submission_id: newSubmissionId(),
    post_id: post.post_id,
    family: state.family.name,
    answers: state.form.value(),
  };
  if (!reviewing) body.seconds_spent = Math.round((performance.now() - state.shownAt) / 100) / 10;
  const seq = state.seq;
  setBusy(true);
  const outcome = await outbox.submit(body, excerpt(post.text));
  if (seq !== state.seq) return; // the coder went elsewhere; the outbox keeps the answer
  if (outcome.receipt) {
    const receipt = outcome.receipt;
    state.drafts.delete(post.post_id);
    if (reviewing) {
      post.answers = receipt.answers;
      post.revision = receipt.revision;
      toast(`Revision saved (revision ${receipt.revision}).`);
      setBusy(false);
      return backToCurrent();
    }
    if (receipt.practice) {
      setBusy(false);
      return showFeedback(receipt);
    }
    return loadNext();
  }
  if (outcome.error) {
    const err = outcome.error;
    setBusy(false);
    if (err.status === 400) {
      outbox.dismiss(body.submission_id); // shown on the form instead
      state.form.showServerErrors(err.details);
      toast(`Not stored: ${err.message}`, "error");
      return;
    }
    if (err.status === 409 || err.status === 404) {
      // The notice names the post; its lease is gone, so the next post comes.
      state.drafts.delete(post.post_id);
      if (reviewing) return backToCurrent();
      return loadNext();
    }
    return; // e.g. 413: the notice says why; the answers stay on the form
  }
  const err = outcome.stalled;
  if (isAuthFailure(err)) return showReauth(err);
  showSending();
}

function backToCurrent() {
  state.historyIndex = -1;
  $("review-banner").hidden = true;
  if (!state.task) return loadNext();
  showTask(state.task, state.drafts.get(state.task.post_id) || {});
  state.form.focusFirst();
}

function showFeedback(receipt) {
  const practice = receipt.practice;
  state.feedback = practice;
  const box = $("feedback");
  box.replaceChildren();
  if (!receipt.duplicate) {
    const total = state.me.practice;
    total.answered += 1;
    total.correct += practice.correct ? 1 : 0;
    total.score = total.correct / total.answered;
  }
  box.append(el("h3", { text: practice.correct ? "Correct!" : "Not quite." }));
  const list = el("ul");
  for (const f of practice.fields) {
    const q = state.family.questions.find((x) => x.name === f.field);
    const expected = Array.isArray(f.expected) ? f.expected.join("; ") : f.expected === undefined || f.expected === null ? "(not asked)" : f.expected ? "Yes" : "No";
    const item = el("li", { class: f.correct ? "right" : "wrong" },
      el("strong", { text: `${f.correct ? "✓" : "✗"} ${q ? q.prompt : f.field}` }),
      el("div", { text: `Correct answer: ${expected}` }));
    if (f.missed.length) item.append(el("div", { class: "missed", text: `You missed: ${f.missed.join("; ")}` }));
    if (f.added.length) item.append(el("div", { class: "added", text: `You added: ${f.added.join("; ")}` }));
    list.append(item);
  }
  const p = state.me.practice;
  const score = el("p", { class: "score", text: `Practice score: ${p.correct} of ${p.answered} right.` });
  const needs = el("p", { class: "needs", text: `${practiceLine(p).needs}.` });
  box.append(list, el("p", { class: "rationale", text: `Why: ${practice.rationale}` }), score, needs,
    el("p", { class: "muted", text: "Press Enter for the next practice post." }));
  box.hidden = false;
  renderNav();
  renderProgress();
  $("btn-submit").focus();
  // The server's own figures, so the score and what certification needs stay true.
  refreshMe().then(() => {
    if (state.feedback !== practice) return;
    const fresh = state.me.practice;
    score.textContent = `Practice score: ${fresh.correct} of ${fresh.answered} right.`;
    needs.textContent = `${practiceLine(fresh).needs}.`;
  });
}

// ---- skipping -------------------------------------------------------------------------------

function openSkip() {
  if (!state.task || state.historyIndex >= 0 || state.busy || state.waiting || state.feedback) return;
  $("skip-reason").value = "";
  $("dlg-skip").showModal();
  $("skip-reason").focus();
}

async function confirmSkip(event) {
  event.preventDefault();
  const reason = $("skip-reason").value.trim();
  if (!reason) { $("skip-reason").focus(); return; }
  $("dlg-skip").close();
  setBusy(true);
  const seq = state.seq;
  try {
    await api.post(`/tasks/${encodeURIComponent(state.task.post_id)}/skip`, { family: state.family.name, reason });
    state.drafts.delete(state.task.post_id);
    toast("Skipped.");
  } catch (err) {
    setBusy(false);
    if (seq !== state.seq) return; // the coder moved on (another family, signed out)
    if (isAuthFailure(err)) return handleAuthFailure(err);
    toast(`Could not skip: ${describe(err)}`, "error");
    if (isTransient(err)) return state.form.focusFirst();
  }
  if (seq !== state.seq) return;
  loadNext();
}

// ---- history (review and revise) -------------------------------------------------------------

function keepDraft() {
  if (!state.form || $("task-body").hidden) return;
  const post = state.historyIndex >= 0 ? state.history[state.historyIndex] : state.task;
  if (post && !state.feedback) state.drafts.set(post.post_id, JSON.parse(JSON.stringify(state.form.answers)));
}

async function historyBack() {
  if (state.busy || state.waiting) return;
  if (!state.history) {
    const seq = state.seq;
    setBusy(true);
    try {
      const page = await api.get("/me/history?limit=50");
      if (seq !== state.seq) return;
      state.history = page.items.filter((i) => i.family === state.family.name);
    } catch (err) {
      if (isAuthFailure(err)) return handleAuthFailure(err);
      return toast(`History unavailable: ${describe(err)}`, "error");
    } finally {
      if (seq === state.seq) setBusy(false);
    }
  }
  if (state.historyIndex + 1 >= state.history.length) {
    renderNav();
    return toast(state.history.length ? "No earlier labels." : "You have no labels in this family yet.");
  }
  keepDraft();
  state.historyIndex += 1;
  showReview();
}

function historyForward() {
  if (state.busy || state.waiting || state.historyIndex < 0) return;
  keepDraft();
  state.historyIndex -= 1;
  if (state.historyIndex < 0) {
    state.history = null; // fetched again next time: it may have grown
    return backToCurrent();
  }
  showReview();
}

function showReview() {
  const item = state.history[state.historyIndex];
  $("feedback").hidden = true;
  state.feedback = null;
  const banner = $("review-banner");
  banner.hidden = false;
  banner.textContent = `Reviewing your label ${state.historyIndex + 1} back (revision ${item.revision}, ` +
    `${new Date(item.created_at).toLocaleString()}). Change it and press Enter to save a new revision; ` +
    "] goes forward.";
  showPost(item);
  state.form.setAnswers(state.drafts.get(item.post_id) || item.answers);
  renderNav();
  state.form.focusFirst();
  announce(`Reviewing an earlier label. Post: ${excerpt(item.text, 500)}`);
}

// ---- signing out ----------------------------------------------------------------------------

function requestSignOut() {
  const pending = outbox.items().length;
  if (!pending) return signOut();
  $("signout-text").textContent = `${plural(pending, "answer")} of yours ${pending === 1 ? "has" : "have"} not reached the server yet. ` +
    "If you sign out now they stay on this device and are sent when you sign in here again.";
  $("signout-status").textContent = outbox.lastError ? `Last try: ${describe(outbox.lastError)}` : "";
  $("dlg-signout").showModal();
  $("btn-signout-wait").focus();
}

async function waitThenSignOut() {
  const status = $("signout-status");
  status.textContent = "Sending…";
  if (outbox.paused) {
    status.textContent = "Sending is paused until you sign in again; sign out now and sign in again.";
    return;
  }
  await outbox.flush();
  const left = outbox.items().length;
  if (!left) {
    $("dlg-signout").close();
    return signOut();
  }
  status.textContent = `${plural(left, "answer")} still waiting: ${outbox.lastError ? describe(outbox.lastError) : ""} ` +
    "You can wait here (it keeps trying) or sign out now.";
  setTimeout(() => { if ($("dlg-signout").open) waitThenSignOut(); }, 2000);
}

function signOut() {
  const pending = outbox.items().length;
  const name = state.me ? state.me.name : "";
  // Stop "sending your last answer" first: closing the outbox empties it, which would
  // otherwise ask for the next post under the leaving coder's token.
  state.seq += 1;
  state.waiting = false;
  setBusy(false);
  outbox.close(); // no timer, no `online` retry sends anything without its coder's token
  state.task = null;
  state.family = null;
  state.form = null;
  auth.signOut();
  showSignIn(pending
    ? `You are signed out. ${plural(pending, "answer")} of ${name} ${pending === 1 ? "is" : "are"} kept on this device and sent when ${name} signs in here again.`
    : "You are signed out.");
}

// ---- keyboard -------------------------------------------------------------------------------

function typingInField(target) {
  return target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable ||
    (target.tagName === "INPUT" && !["checkbox", "radio"].includes(target.type)));
}

function activatesOnEnter(target) {
  return target && (target.tagName === "BUTTON" || target.tagName === "A" || target.tagName === "SUMMARY");
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return; // dialogs handle their own keys
  if (typingInField(event.target)) return;
  const key = event.key;
  const signedIn = Boolean(state.me) && !["view-signin", "view-consent"].includes(state.view);
  if (key === "?") { event.preventDefault(); $("dlg-shortcuts").showModal(); return; }
  if (signedIn && (key === "q" || key === "Q")) { event.preventDefault(); requestSignOut(); return; }
  if (signedIn && (key === "f" || key === "F") && state.view !== "view-start") { event.preventDefault(); showStart(); return; }
  if (state.view === "view-start" && /^[1-9]$/.test(key)) {
    const family = state.codebook.families[Number(key) - 1];
    if (family) { event.preventDefault(); startFamily(family.name); }
    return;
  }
  if (state.view !== "view-task") return;
  if (state.busy) {
    // Locked between Enter and the next post: nothing may change the answer just sent.
    if (key !== "Tab") event.preventDefault();
    return;
  }
  const onForm = !$("task-body").hidden && !state.feedback && !state.waiting;
  if (key === "Enter") {
    if (activatesOnEnter(event.target)) return; // the focused button does what it says
    event.preventDefault();
    if (onForm || state.feedback) submit();
    return;
  }
  if (key === "[") { event.preventDefault(); historyBack(); return; }
  if (key === "]") { event.preventDefault(); historyForward(); return; }
  if (!onForm) return;
  if (/^[1-9]$/.test(key)) { event.preventDefault(); state.form.toggleOption(Number(key)); }
  else if (key === "n" || key === "N") { event.preventDefault(); state.form.move(1); }
  else if (key === "p" || key === "P") { event.preventDefault(); state.form.move(-1); }
  else if (key === "s" || key === "S") { event.preventDefault(); openSkip(); }
  else if (key === "h" || key === "H") { event.preventDefault(); state.form.toggleHelp(); }
  else if ((key === "z" || key === "Z") && !$("post-image").hidden) { event.preventDefault(); enlarge(); }
}

function enlarge() {
  $("big-image").src = $("post-image").src;
  $("dlg-image").showModal();
}

// ---- wiring ---------------------------------------------------------------------------------

function bindControls() {
  document.addEventListener("keydown", onKey);
  $("form-token").addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = Auth.tokenProblem($("token").value);
    if (problem) {
      $("signin-error").hidden = false;
      $("signin-error").textContent = problem;
      $("token").focus();
      return;
    }
    auth.signInWithToken($("token").value);
    $("token").value = "";
    await afterSignIn();
  });
  $("token").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("form-token").requestSubmit(); }
  });
  $("btn-hosted").addEventListener("click", () => auth.startHostedSignIn());
  $("btn-consent").addEventListener("click", () => {
    localStorage.setItem(`trainset.consent.${state.me.id}`, new Date().toISOString());
    showStart();
  });
  $("btn-signout").addEventListener("click", requestSignOut);
  $("btn-signout-cancel").addEventListener("click", () => $("dlg-signout").close());
  $("btn-signout-now").addEventListener("click", () => { $("dlg-signout").close(); signOut(); });
  $("btn-signout-wait").addEventListener("click", waitThenSignOut);
  $("btn-home").addEventListener("click", showStart);
  $("btn-shortcuts").addEventListener("click", () => $("dlg-shortcuts").showModal());
  $("btn-manager").addEventListener("click", () => {
    state.seq += 1;
    setBusy(false);
    show("view-manager");
    state.manager ||= new ManagerView(api, state.config, toast, state.codebook);
    state.manager.load();
  });
  $("btn-submit").addEventListener("click", submit);
  $("btn-skip").addEventListener("click", openSkip);
  $("btn-back").addEventListener("click", historyBack);
  $("btn-forward").addEventListener("click", historyForward);
  $("post-image").addEventListener("click", enlarge);
  $("form-skip").addEventListener("submit", confirmSkip);
  $("btn-skip-cancel").addEventListener("click", () => $("dlg-skip").close());
  $("questions").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  window.addEventListener("online", () => { if (outbox.coder) outbox.flush(); });
  // Another tab signed in or out: this tab must not act for a coder it no longer holds.
  window.addEventListener("storage", (event) => {
    if (event.key !== TOKENS || !state.me) return;
    const owner = auth.owner();
    if (owner === state.me.id) { outbox.paused = null; outbox.flush(); }
    else if (owner !== null || !event.newValue) window.location.reload();
  });
}

boot().catch((err) => {
  $("loading").textContent = `trainset could not start: ${err instanceof ApiError ? describe(err) : err.message}`;
});
