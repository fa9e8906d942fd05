// The coders' labeling page: sign-in, consent, family choice, keyboard-first labeling with an
// offline outbox, history for review and revision, practice feedback, and the manager view.

import { Api, ApiError, isTransient } from "./api.js";
import { Auth } from "./auth.js";
import { el, QuestionForm } from "./form.js";
import { ManagerView } from "./manager.js";
import { Outbox } from "./queue.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["view-signin", "view-consent", "view-start", "view-task", "view-manager"];

const state = {
  config: null,
  codebook: null,
  me: null,
  family: null,
  mode: "work",
  task: null, // the leased post on screen
  shownAt: 0,
  form: null,
  history: null, // the coder's labels, newest first, while reviewing
  historyIndex: -1, // -1: the current task; 0..n-1: a label from history
  feedback: null, // practice feedback on screen (Enter continues)
  remaining: null,
  doneToday: 0,
  busy: false,
};

let api;
let auth;
let outbox;

function show(viewId) {
  $("loading").hidden = true;
  for (const id of VIEWS) $(id).hidden = id !== viewId;
  state.view = viewId;
}

function toast(message, kind = "info") {
  const box = $("toast");
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 4000);
}

function sessionCount() {
  return Number(sessionStorage.getItem("trainset.session.count") || "0");
}

function countSession() {
  sessionStorage.setItem("trainset.session.count", String(sessionCount() + 1));
}

function renderProgress() {
  const box = $("progress");
  if (!state.me || state.view !== "view-task") { box.hidden = true; return; }
  box.hidden = false;
  const parts = [`Today: ${state.doneToday}`, `This session: ${sessionCount()}`];
  if (state.remaining !== null) parts.push(`Left in queue: ${state.remaining}`);
  box.textContent = parts.join(" · ");
}

function renderOutbox(items = outbox.items()) {
  const box = $("outbox-state");
  if (!items.length) { box.hidden = true; return; }
  box.hidden = false;
  const error = items[0].lastError ? ` (${items[0].lastError}; retrying)` : " (sending…)";
  box.textContent = `${items.length} answer${items.length > 1 ? "s" : ""} waiting to be sent${error}`;
}

// ---- start-up -------------------------------------------------------------------------------

async function boot() {
  state.config = await (await fetch("config.json", { cache: "no-store" })).json();
  auth = new Auth(state.config);
  api = new Api(state.config.apiBaseUrl, () => auth.token());
  outbox = new Outbox(api, renderOutbox);
  renderOutbox();
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
  $("who").hidden = true;
  $("form-token").hidden = auth.mode !== "local";
  $("signin-hosted").hidden = auth.mode !== "cognito";
  $("signin-error").hidden = !message;
  $("signin-error").textContent = message || "";
  show("view-signin");
  if (auth.mode === "local") $("token").focus();
}

async function afterSignIn() {
  try {
    state.me = await api.get("/me");
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      auth.signOut();
      return showSignIn(err.message);
    }
    return showSignIn("The server cannot be reached right now. Try again in a moment.");
  }
  $("who").hidden = false;
  $("who-name").textContent = `${state.me.name} (${state.me.status}${state.me.role === "manager" ? ", manager" : ""})`;
  $("btn-manager").hidden = state.me.role !== "manager";
  outbox.flush();
  if (!localStorage.getItem(`trainset.consent.${state.me.id}`)) {
    show("view-consent");
    $("btn-consent").focus();
    return;
  }
  showStart();
}

function showStart() {
  state.task = null;
  state.history = null;
  const trainee = state.me.status !== "certified";
  const note = $("trainee-note");
  note.hidden = !trainee;
  if (trainee) {
    const p = state.me.practice;
    const score = p.score === null ? "no practice answers yet" : `${Math.round(p.score * 100)}% of ${p.answered} practice posts right`;
    note.textContent = `You are a trainee: practice until a manager certifies you. Your score: ${score}. ` +
      `Certification needs at least ${p.certification.min_answers} practice posts with ${Math.round(p.certification.min_score * 100)}% right.`;
    state.mode = "practice";
  }
  for (const input of document.querySelectorAll("input[name=mode]")) {
    input.disabled = trainee && input.value === "work";
    input.checked = input.value === state.mode;
  }
  const families = $("families");
  families.replaceChildren();
  state.codebook.families.forEach((family, i) => {
    const button = el("button", { type: "button", class: "family", "data-family": family.name },
      el("kbd", { text: String(i + 1) }), el("strong", { text: family.title }), el("span", { text: family.help }));
    button.addEventListener("click", () => startFamily(family.name));
    families.append(button);
  });
  show("view-start");
  families.querySelector("button").focus();
}

function startFamily(name) {
  const checked = document.querySelector("input[name=mode]:checked");
  state.mode = checked ? checked.value : "work";
  state.family = state.codebook.families.find((f) => f.name === name);
  state.form = new QuestionForm($("questions"), state.family);
  show("view-task");
  loadNext();
}

// ---- tasks ----------------------------------------------------------------------------------

async function loadNext() {
  state.historyIndex = -1;
  state.history = null;
  state.feedback = null;
  $("feedback").hidden = true;
  $("review-banner").hidden = true;
  try {
    const answer = await api.get(`/tasks/next?family=${encodeURIComponent(state.family.name)}&mode=${state.mode}`);
    state.remaining = answer.progress.remaining_in_family;
    state.doneToday = answer.progress.done_today;
    if (!answer.task) return showEmpty(answer.message);
    showTask(answer.task, {});
  } catch (err) {
    if (isTransient(err)) {
      showEmpty("The server cannot be reached. Your answers are kept on this device; trying again…", true);
      setTimeout(() => { if (state.view === "view-task" && !state.task) loadNext(); }, 3000);
    } else {
      showEmpty(err.message);
    }
  }
  renderProgress();
}

function showEmpty(message, retrying = false) {
  state.task = null;
  $("task-body").hidden = true;
  const box = $("task-message");
  box.hidden = false;
  box.replaceChildren(el("p", { text: message }));
  if (!retrying) {
    const again = el("button", { type: "button", class: "primary", text: "Check again" });
    again.addEventListener("click", loadNext);
    const back = el("button", { type: "button", text: "Choose another family" });
    back.addEventListener("click", showStart);
    box.append(again, " ", back);
  }
}

function showPost(post) {
  $("task-message").hidden = true;
  $("task-body").hidden = false;
  $("post-text").textContent = post.text;
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

function showTask(task, answers) {
  state.task = task;
  state.shownAt = performance.now();
  showPost(task);
  state.form.setAnswers(answers);
  state.form.focusFirst();
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
  if (state.busy) return;
  if (state.feedback) return loadNext();
  const reviewing = state.historyIndex >= 0;
  const post = reviewing ? state.history[state.historyIndex] : state.task;
  if (!post || !state.form.validate()) return;
  const body = {
    submission_id: newSubmissionId(),
    post_id: post.post_id,
    family: state.family.name,
    answers: state.form.value(),
  };
  if (!reviewing) body.seconds_spent = Math.round((performance.now() - state.shownAt) / 100) / 10;
  outbox.add(body);
  state.busy = true;
  try {
    const receipt = await outbox.send(body.submission_id);
    countSession();
    if (reviewing) {
      toast(`Revision saved (revision ${receipt.revision}).`);
      post.answers = receipt.answers;
      post.revision = receipt.revision;
      return loadNext();
    }
    state.doneToday += 1;
    if (receipt.practice) return showFeedback(receipt.practice);
    await loadNext();
  } catch (err) {
    if (isTransient(err)) {
      toast("Saved on this device; it will be sent as soon as the server answers.", "warn");
      await loadNext();
    } else if (err.status === 400) {
      state.form.showServerErrors(err.details);
    } else if (err.status === 409) {
      toast(`Not stored: ${err.message}`, "error");
      await loadNext();
    } else {
      toast(err.message, "error");
    }
  } finally {
    state.busy = false;
    renderProgress();
  }
}

function showFeedback(practice) {
  state.feedback = practice;
  const box = $("feedback");
  box.replaceChildren();
  const total = state.me.practice;
  total.answered += 1;
  total.correct += practice.correct ? 1 : 0;
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
  box.append(list, el("p", { class: "rationale", text: `Why: ${practice.rationale}` }),
    el("p", { class: "score", text: `Practice score: ${total.correct} of ${total.answered} right.` }),
    el("p", { class: "muted", text: "Press Enter for the next practice post." }));
  box.hidden = false;
  $("btn-submit").focus();
}

// ---- skipping -------------------------------------------------------------------------------

function openSkip() {
  if (!state.task || state.historyIndex >= 0) return;
  $("skip-reason").value = "";
  $("dlg-skip").showModal();
  $("skip-reason").focus();
}

async function confirmSkip(event) {
  event.preventDefault();
  const reason = $("skip-reason").value.trim();
  if (!reason) { $("skip-reason").focus(); return; }
  $("dlg-skip").close();
  try {
    await api.post(`/tasks/${encodeURIComponent(state.task.post_id)}/skip`, { family: state.family.name, reason });
    toast("Skipped.");
  } catch (err) {
    toast(`Could not skip: ${err.message}`, "error");
  }
  loadNext();
}

// ---- history (review and revise) -------------------------------------------------------------

async function historyBack() {
  if (state.historyIndex === -1) {
    try {
      const page = await api.get("/me/history?limit=50");
      state.history = page.items.filter((i) => i.family === state.family.name);
    } catch (err) {
      return toast(`History unavailable: ${err.message}`, "error");
    }
  }
  if (!state.history || state.historyIndex + 1 >= state.history.length) return toast("No earlier labels.");
  state.historyIndex += 1;
  showReview();
}

function historyForward() {
  if (state.historyIndex < 0) return;
  state.historyIndex -= 1;
  if (state.historyIndex < 0) {
    $("review-banner").hidden = true;
    if (state.task) return showTask(state.task, {});
    return loadNext();
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
    `${new Date(item.created_at).toLocaleString()}). Change it and press Enter to save a new revision; → goes forward.`;
  showPost(item);
  state.form.setAnswers(item.answers);
  state.form.focusFirst();
}

// ---- keyboard -------------------------------------------------------------------------------

function typingInField(target) {
  return target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
    (target.tagName === "INPUT" && !["checkbox", "radio"].includes(target.type)));
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return; // dialogs handle their own keys
  if (typingInField(event.target)) return;
  const key = event.key;
  if (key === "?") { event.preventDefault(); $("dlg-shortcuts").showModal(); return; }
  if (state.view === "view-start" && /^[1-9]$/.test(key)) {
    const family = state.codebook.families[Number(key) - 1];
    if (family) { event.preventDefault(); startFamily(family.name); }
    return;
  }
  if (state.view !== "view-task") return;
  const onForm = !$("task-body").hidden;
  if (/^[1-9]$/.test(key) && onForm && !state.feedback) { event.preventDefault(); state.form.toggleOption(Number(key)); }
  else if ((key === "ArrowDown" || (key === "Tab" && !event.shiftKey)) && onForm) { event.preventDefault(); state.form.move(1); }
  else if ((key === "ArrowUp" || (key === "Tab" && event.shiftKey)) && onForm) { event.preventDefault(); state.form.move(-1); }
  else if (key === "Enter") { event.preventDefault(); submit(); }
  else if (key === "s" || key === "S") { event.preventDefault(); openSkip(); }
  else if (key === "ArrowLeft") { event.preventDefault(); historyBack(); }
  else if (key === "ArrowRight") { event.preventDefault(); historyForward(); }
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
    auth.signInWithToken($("token").value);
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
  $("btn-signout").addEventListener("click", () => {
    const pending = outbox.items().length;
    if (pending && !window.confirm(`${pending} answer(s) have not reached the server yet. They stay on this device and are sent when you sign in again. Sign out?`)) return;
    auth.signOut();
    state.me = null;
    showSignIn("You are signed out.");
  });
  $("btn-home").addEventListener("click", showStart);
  $("btn-shortcuts").addEventListener("click", () => $("dlg-shortcuts").showModal());
  $("btn-manager").addEventListener("click", () => {
    show("view-manager");
    new ManagerView(api, state.config, toast).load();
  });
  $("btn-submit").addEventListener("click", submit);
  $("btn-skip").addEventListener("click", openSkip);
  $("btn-back").addEventListener("click", historyBack);
  $("btn-forward").addEventListener("click", historyForward);
  $("post-image").addEventListener("click", enlarge);
  $("form-skip").addEventListener("submit", confirmSkip);
  $("btn-skip-cancel").addEventListener("click", () => $("dlg-skip").close());
  $("questions").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  window.addEventListener("online", () => outbox.flush());
}

boot().catch((err) => {
  $("loading").textContent = `trainset could not start: ${err.message}`;
});
