// The manager view: progress per family; coders with their practice evidence (certify, revoke
// and release with confirmation; a fresh token locally); corpus and gold uploads (straight to
// storage with a presigned URL) and their imports; campaigns (allocation preview before
// drawing, progress per keyword, estimates); the latest quality run; review of posts by
// consensus confidence with adjudication; exports with thresholds and download links.
// Everything comes from the API; charts are our own SVG (charts.js).

import { ApiError, describe } from "./api.js";
import { intervalBars, percent, progressBar } from "./charts.js";
import { el, QuestionForm } from "./form.js";

const $ = (id) => document.getElementById(id);

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function interval(e, scale = 100, digits = 1) {
  if (!e || e.value === null || e.value === undefined) return "n/a";
  const v = (x) => (scale * x).toFixed(digits);
  return `${v(e.value)}% [${v(e.low)}–${v(e.high)}]`;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

const count = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString("en"));
const IMPORT_STATUS = {
  waiting: "waiting for the file", planning: "planning batches", importing: "importing",
  finishing: "merging rejects", succeeded: "done", failed: "failed",
};

// A label's answers in one line: "question: yes; other question: option, option".
export function answersText(answers) {
  return Object.entries(answers || {}).map(([name, value]) => {
    if (typeof value === "boolean") return `${name}: ${value ? "yes" : "no"}`;
    return `${name}: ${Array.isArray(value) ? value.join(", ") : String(value)}`;
  }).join("; ") || "(no answers)";
}

function practiceText(p) {
  if (!p || !p.answered) return "none yet";
  return `${p.correct} of ${p.answered} right (${percent(p.score)})`;
}

function ruleText(p) {
  const rule = p && p.certification;
  return rule ? `${rule.min_answers} answers and ${percent(rule.min_score)}` : "";
}

function failure(err) {
  if (err instanceof ApiError && err.details && Array.isArray(err.details) && err.details.length) {
    return `${describe(err)} (${err.details.map((d) => `${d.field}: ${d.message}`).join("; ")})`;
  }
  return describe(err);
}

// The confirmation dialog: resolves true only when the manager presses the confirm button.
function confirmDialog(title, text, okLabel) {
  const dialog = $("dlg-confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("btn-confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      if (dialog.open) dialog.close();
      resolve(value);
    };
    $("btn-confirm-ok").onclick = () => finish(true);
    $("btn-confirm-cancel").onclick = () => finish(false);
    dialog.onclose = () => finish(false);
    dialog.showModal();
    $("btn-confirm-cancel").focus();
  });
}

// PUT a file to a presigned URL, reporting the fraction sent (fetch cannot report an upload's
// progress, so XMLHttpRequest; the page's connect-src governs both).
function putFile(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(upload.headers || {})) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    request.onload = () => (request.status >= 200 && request.status < 300 ? resolve()
      : reject(new Error(`the storage refused it (status ${request.status})`)));
    request.onerror = () => reject(new Error("the storage could not be reached"));
    request.send(file);
  });
}

function status(id, text) {
  const node = $(id);
  node.hidden = !text;
  node.textContent = text || "";
}

export class ManagerView {
  constructor(api, config, toast, codebook) {
    this.api = api;
    this.config = config;
    this.toast = toast;
    this.codebook = codebook;
    this.coders = [];
    this.campaigns = [];
    this.pendingCampaign = null;
    this.review = null; // the current review query and its next offset
    this.detail = null; // the post shown in detail: {post_id, family}
    this.adjudicateForm = null;
    this.exportPolls = 0;
    this.importTimer = null;
    this.importPolls = 0;
    this.uploaded = new Set(); // imports whose files this page sent (watched until they end)
    this.bind();
  }

  bind() {
    const families = this.codebook.families.map((f) => f.name);
    for (const id of ["cmp-family", "quality-family", "review-family"]) {
      $(id).replaceChildren(...families.map((name) => el("option", { value: name, text: name })));
    }
    $("export-families").replaceChildren(...families.map((name) => el("label", {},
      el("input", { type: "checkbox", name: "export-family", value: name, checked: "checked" }),
      ` ${name}`)));
    $("form-coder").addEventListener("submit", (event) => { event.preventDefault(); this.addCoder(); });
    $("form-campaign").addEventListener("submit", (event) => { event.preventDefault(); this.previewCampaign(); });
    // A preview describes exactly the request it was made for: any change hides it.
    $("form-campaign").addEventListener("input", () => this.hidePreview());
    $("btn-draw").addEventListener("click", () => this.drawCampaign());
    $("form-quality").addEventListener("submit", (event) => { event.preventDefault(); this.showQuality(); });
    $("form-review").addEventListener("submit", (event) => { event.preventDefault(); this.listReview(0); });
    $("review-family").addEventListener("change", () => this.fillCampaignChoices());
    $("btn-review-more").addEventListener("click", () => this.listReview(this.review.next));
    $("form-adjudicate").addEventListener("submit", (event) => { event.preventDefault(); this.adjudicate(); });
    $("form-export").addEventListener("submit", (event) => { event.preventDefault(); this.startExport(); });
    $("form-upload").addEventListener("submit", (event) => { event.preventDefault(); this.upload(); });
    $("upload-kind").addEventListener("change", () => this.syncPurpose());
  }

  async load() {
    status("manager-error", "");
    try {
      const [progress, campaigns, exports, imports] = await Promise.all([
        this.api.get("/progress"), this.api.get("/campaigns"), this.api.get("/exports"),
        this.api.get("/imports")]);
      this.renderImports(imports);
      this.renderFamilies(progress.families);
      this.coders = progress.coders;
      this.renderCoders(progress.coders);
      this.campaigns = campaigns.campaigns;
      this.renderCampaigns();
      this.fillCampaignChoices();
      this.renderJobs(exports.jobs);
    } catch (err) {
      status("manager-error", `The manager view could not load: ${describe(err)}`);
    }
  }

  // ---- progress and coders ------------------------------------------------------------

  renderFamilies(families) {
    const body = document.querySelector("#family-progress tbody");
    body.replaceChildren();
    for (const [name, counts] of Object.entries(families)) {
      body.append(el("tr", {}, el("th", { scope: "row", text: name }),
        el("td", { text: String(counts.open) }), el("td", { text: String(counts.leased) }),
        el("td", { text: String(counts.done) })));
    }
  }

  renderCoders(coders) {
    const body = document.querySelector("#coder-progress tbody");
    body.replaceChildren();
    const rule = coders.find((c) => c.practice) ? ruleText(coders.find((c) => c.practice).practice) : "";
    if (rule) $("practice-rule").textContent = rule;
    for (const c of coders) {
      const actions = el("td", { class: "actions-cell" });
      const add = (label, action, handler) => {
        const button = el("button", { type: "button", "data-action": action, "data-coder": c.name,
          text: label, "aria-label": `${label} ${c.name}` });
        button.addEventListener("click", handler);
        actions.append(button, " ");
      };
      if (c.status !== "certified") add("Certify", "certified", () => this.certify(c));
      if (c.status !== "revoked") add("Revoke", "revoked", () => this.revoke(c));
      if (c.status !== "trainee") add("Make trainee", "trainee", () => this.setStatus(c, { status: "trainee" }));
      if (this.config.authMode !== "cognito" && c.status !== "revoked") add("New token", "token", () => this.newToken(c));
      add("Release leases", "release", () => this.release(c));
      const ready = c.status === "certified" ? "certified"
        : c.practice && c.practice.certification.ready ? "ready" : "not ready";
      body.append(el("tr", { "data-coder": c.name }, el("th", { scope: "row", text: c.name }),
        el("td", { text: c.role }), el("td", { class: `status-${c.status}`, text: c.status }),
        el("td", { text: String(c.today) }), el("td", { text: String(c.this_week) }),
        el("td", { class: "practice", text: practiceText(c.practice) }),
        el("td", { class: ready === "not ready" ? "status-revoked" : "", text: ready }), actions));
    }
  }

  async certify(coder) {
    const p = coder.practice;
    let confirm = false;
    if (p && !p.certification.ready) {
      confirm = await confirmDialog(`Certify ${coder.name}?`,
        `${coder.name} is not ready by the practice rule: ${practiceText(p)}; certification ` +
        `needs ${ruleText(p)}. Certified coders label real work. Certify anyway? The score ` +
        "is kept with the certification in the audit trail.", "Certify anyway");
      if (!confirm) return;
    }
    try {
      await this.api.patch(`/coders/${coder.id}`, { status: "certified", ...(confirm ? { confirm: true } : {}) });
      this.toast(`${coder.name} is now certified.`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && err.details && err.details.reason === "not_ready") {
        // The practice figures changed since the table was drawn: ask with the server's.
        const again = await confirmDialog(`Certify ${coder.name}?`, err.message, "Certify anyway");
        if (again) await this.setStatus(coder, { status: "certified", confirm: true });
        else await this.load();
        return;
      }
      this.toast(`Could not certify ${coder.name}: ${describe(err)}`, "error");
    }
    await this.load();
  }

  async revoke(coder) {
    const ok = await confirmDialog(`Revoke ${coder.name}?`,
      `${coder.name} will no longer be able to label, revise or see their history, and the ` +
      "posts they hold go back to the pool at once. Their labels are kept.", "Revoke");
    if (ok) await this.setStatus(coder, { status: "revoked" });
  }

  async release(coder) {
    const ok = await confirmDialog(`Release ${coder.name}'s posts?`,
      `The posts ${coder.name} holds go back to the pool now; an answer they send for one ` +
      "of them afterwards is refused.", "Release");
    if (!ok) return;
    try {
      const result = await this.api.post(`/coders/${coder.id}/leases/release`, {});
      this.toast(`Released ${result.released.tasks} task(s) and ${result.released.gold} gold or practice post(s) of ${coder.name}.`);
    } catch (err) {
      this.toast(`Could not release the posts of ${coder.name}: ${describe(err)}`, "error");
    }
    await this.load();
  }

  async newToken(coder) {
    const note = $("coder-token");
    try {
      const result = await this.api.post(`/coders/${coder.id}/token`);
      note.hidden = false;
      note.replaceChildren(el("span", { text: `A new token for ${coder.name} (earlier ones stay valid until they expire): ` }),
        el("code", { class: "token", text: result.token }));
    } catch (err) {
      this.toast(`No new token for ${coder.name}: ${describe(err)}`, "error");
    }
  }

  async setStatus(coder, body) {
    try {
      await this.api.patch(`/coders/${coder.id}`, body);
      this.toast(`${coder.name} is now ${body.status}.`);
    } catch (err) {
      this.toast(`Could not change ${coder.name}: ${describe(err)}`, "error");
    }
    await this.load();
  }

  async addCoder() {
    const name = $("coder-name").value.trim();
    const role = $("coder-role").value;
    const state = $("coder-status").value;
    const note = $("coder-created");
    try {
      const created = await this.api.post("/coders", { name, role, status: state });
      note.hidden = false;
      note.replaceChildren(el("span", { text: `Added ${created.coder.name}.` }));
      if (created.token) {
        note.append(" Give them this token to sign in: ",
          el("code", { class: "token", text: created.token }));
      } else {
        note.append(" Create their sign-in account with the same user name.");
      }
      $("coder-name").value = "";
    } catch (err) {
      this.toast(`Could not add the coder: ${failure(err)}`, "error");
    }
    await this.load();
  }

  // ---- campaigns ------------------------------------------------------------------------

  campaignRequest() {
    const number = (id) => Number($(id).value);
    const request = {
      family: $("cmp-family").value, strategy: $("cmp-strategy").value,
      budget: number("cmp-budget"), labels_per_post: number("cmp-labels"), seed: number("cmp-seed"),
      filters: {
        min_length: number("cmp-min-length"), near_duplicate_bits: number("cmp-near"),
        exclude_phrases: $("cmp-exclude").value.split("\n").map((s) => s.trim()).filter(Boolean),
      },
    };
    const text = (id) => $(id).value.trim();
    if (text("cmp-name")) request.name = text("cmp-name");
    if (text("cmp-target")) request.target = text("cmp-target");
    if (text("cmp-language")) request.filters.language = text("cmp-language");
    const lines = $("cmp-yields").value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (lines.length) {
      request.pilot_yields = lines.map((line, i) => {
        const cut = line.lastIndexOf(",");
        const value = Number(line.slice(cut + 1));
        if (cut <= 0 || line.slice(cut + 1).trim() === "" || !Number.isFinite(value)) {
          throw new Error(`pilot yields, line ${i + 1}: write keyword,percent_true (e.g. toddler,60)`);
        }
        return { keyword: line.slice(0, cut).trim(), percent_true: value };
      });
    }
    return request;
  }

  hidePreview() {
    this.pendingCampaign = null;
    $("campaign-preview").hidden = true;
  }

  async previewCampaign() {
    this.hidePreview();
    let request;
    try {
      request = this.campaignRequest();
    } catch (err) {
      status("campaign-status", err.message);
      return;
    }
    status("campaign-status", "Working out the allocation…");
    try {
      const plan = await this.api.post("/campaigns", { ...request, dry_run: true });
      status("campaign-status", "");
      this.renderPlan(plan);
      this.pendingCampaign = { ...request, name: plan.name };
    } catch (err) {
      status("campaign-status", `No allocation: ${failure(err)}`);
    }
  }

  renderPlan(plan) {
    $("campaign-preview").hidden = false;
    $("campaign-preview-summary").textContent = `Campaign ${plan.name}: ${plan.planned} posts ` +
      `from a frame of ${plan.frame_size} posts after the filters; pilot yields from ` +
      `${plan.yields_source}. Nothing is drawn yet.`;
    const body = document.querySelector("#allocation tbody");
    body.replaceChildren(...plan.allocation.map((a) => el("tr", {},
      el("th", { scope: "row", text: a.keyword }), el("td", { text: String(a.population) }),
      el("td", { text: String(a.sampled) }), el("td", { text: a.inclusion_prob.toFixed(4) }),
      el("td", { text: a.pilot_yield === null ? "" : percent(a.pilot_yield, 1) }),
      el("td", { text: a.expected_positives === null ? "" : String(a.expected_positives) }))));
    $("campaign-filters").replaceChildren(...plan.filters.map((f) =>
      el("li", { text: `${f.name}: ${f.removed} removed${f.note ? ` (${f.note})` : ""}` })));
    $("btn-draw").textContent = `Draw this campaign (${plan.planned} posts)`;
  }

  async drawCampaign() {
    if (!this.pendingCampaign) return;
    const request = this.pendingCampaign;
    $("btn-draw").disabled = true;
    try {
      const drawn = await this.api.post("/campaigns", { ...request, dry_run: false });
      this.hidePreview();
      status("campaign-status", `Campaign ${drawn.name} drawn: ${drawn.sampled} posts × ` +
        `${request.labels_per_post} label(s); coders get them from now on.`);
      $("cmp-name").value = "";
      await this.load();
    } catch (err) {
      status("campaign-status", `The campaign was not drawn: ${failure(err)}`);
    } finally {
      $("btn-draw").disabled = false;
    }
  }

  renderCampaigns() {
    const list = $("campaign-list");
    if (!this.campaigns.length) {
      list.replaceChildren(el("p", { class: "muted", text: "No campaigns yet." }));
      return;
    }
    list.replaceChildren(...this.campaigns.map((c) => {
      const summary = el("summary", {},
        el("strong", { text: c.name }),
        ` — ${c.family}, ${c.strategy}${c.seed !== null ? `, seed ${c.seed}` : ""}: ${c.posts} posts × ${c.labels_per_post}; `,
        progressBar(c.done, c.slots, `${c.name} labels`),
        ` ${c.done} of ${c.slots} labels done, ${c.posts_done} posts complete, ${c.leased} leased`);
      const table = el("table", { class: "grid" },
        el("caption", { class: "caption", text: `${c.name}: progress per keyword` }),
        el("thead", {}, el("tr", {}, ...["Keyword", "Posts in the frame", "Sampled posts", "Labels done", "Posts complete"]
          .map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, ...c.keywords.map((k) => el("tr", {},
          el("th", { scope: "row", text: k.keyword }),
          el("td", { text: k.population === null ? "" : String(k.population) }),
          el("td", { text: String(k.posts) }),
          el("td", {}, progressBar(k.slots_done, k.slots, `${k.keyword} labels`), ` ${k.slots_done} of ${k.slots}`),
          el("td", { text: `${k.posts_done} of ${k.posts}` })))));
      const estimate = el("button", { type: "button", text: `Estimate ${c.name}`, "data-campaign": c.id });
      estimate.addEventListener("click", () => this.showEstimate(c));
      return el("details", { class: "campaign", "data-campaign": c.name }, summary,
        el("div", { class: "table-scroll" }, table), estimate);
    }));
  }

  async showEstimate(campaign) {
    const panel = $("estimate-panel");
    panel.hidden = false;
    $("estimate-title").textContent = `Estimate: ${campaign.name}`;
    $("estimate-summary").textContent = "Computing the consensus…";
    $("estimate-chart").replaceChildren();
    document.querySelector("#estimate-table tbody").replaceChildren();
    try {
      const e = await this.api.get(`/campaigns/${campaign.id}/estimate`);
      let warning = e.em_converged === false ? " The consensus stopped at its iteration cap before settling: treat the figures with care." : "";
      if (e.refits && e.refits.run < e.refits.asked) {
        warning += ` The model's own uncertainty comes from ${e.refits.run} of ${e.refits.asked} refits (the rest did not fit in the time a request has; the command line's estimate runs them all).`;
      }
      $("estimate-summary").textContent = `${e.labeled_posts} of ${e.sampled_posts} sampled posts ` +
        `labeled, ${e.judged_posts} with a consensus.${warning}`;
      if (!e.labeled_posts) return;
      $("estimate-chart").replaceChildren(intervalBars(e.labels.map((l) => ({
        label: l.label, value: l.weighted.value, low: l.weighted.low, high: l.weighted.high })),
      { title: `${campaign.name}: design-weighted prevalence per label (consensus, 95% intervals)` }));
      document.querySelector("#estimate-table tbody").replaceChildren(...e.labels.map((l) =>
        el("tr", {}, el("th", { scope: "row", text: l.label }), el("td", { text: interval(l.weighted) }),
          el("td", { text: interval(l.unweighted) }), el("td", { text: interval(l.raw_weighted) }))));
    } catch (err) {
      $("estimate-summary").textContent = `No estimate: ${describe(err)}`;
    }
  }

  // ---- quality ----------------------------------------------------------------------------

  async showQuality() {
    const family = $("quality-family").value;
    $("quality-panel").hidden = true;
    status("quality-status", "Loading the latest quality run…");
    let run;
    try {
      run = await this.api.get(`/quality/${encodeURIComponent(family)}/latest`);
    } catch (err) {
      status("quality-status", err instanceof ApiError && err.status === 404
        ? `No quality run for ${family} yet: run an export (below).` : describe(err));
      return;
    }
    status("quality-status", "");
    $("quality-panel").hidden = false;
    const em = run.em.converged === false ? `; the consensus stopped at its cap of ${run.em.iterations} iterations` : "";
    $("quality-summary").textContent = `Run ${run.run_id} (${when(run.created_at)}): ` +
      `${run.labels} labels, ${run.labels_used} used for the consensus of ${run.posts} posts; ` +
      `${run.posts_kept ?? "?"} posts kept; least confidence kept ${run.rules.min_confidence}${em}.`;
    const overall = run.gold.filter((g) => g.label === "(all)");
    $("quality-chart").replaceChildren(overall.length
      ? intervalBars(overall.map((g) => ({ label: g.coder, value: g.correct_pct === null ? null : g.correct_pct / 100,
        low: g.ci ? g.ci[0] / 100 : null, high: g.ci ? g.ci[1] / 100 : null, n: g.n })),
      { title: `${family}: gold accuracy per coder over all options, with Wilson 95% intervals`,
        valueText: (r) => `${percent(r.value, 1)} of ${r.n}` })
      : el("p", { class: "muted", text: "No gold answers were scored in this run." }));
    const pct = (v, n, ci) => (v === null ? `n/a (0)` : `${v.toFixed(1)}% of ${n}${ci ? ` [${ci[0].toFixed(1)}–${ci[1].toFixed(1)}]` : ""}`);
    document.querySelector("#quality-gold tbody").replaceChildren(...run.gold.filter((g) => g.label !== "(all)").map((g) =>
      el("tr", {}, el("th", { scope: "row", text: g.coder }), el("td", { text: g.label }),
        el("td", { text: pct(g.pos_gold_correct_pct, g.pos_gold_n, g.pos_gold_ci) }),
        el("td", { text: pct(g.neg_gold_correct_pct, g.neg_gold_n, g.neg_gold_ci) }))));
    const ci = (v, c, scale, unit) => (v === null || v === undefined ? "n/a"
      : `${(scale * v).toFixed(scale === 1 ? 3 : 0)}${unit}${c ? ` [${(scale * c[0]).toFixed(scale === 1 ? 3 : 0)}–${(scale * c[1]).toFixed(scale === 1 ? 3 : 0)}]` : ""}`);
    document.querySelector("#quality-agreement tbody").replaceChildren(...Object.entries(run.agreement).map(([q, a]) =>
      el("tr", {}, el("th", { scope: "row", text: q }), el("td", { text: String(a.posts_with_2_or_more) }),
        el("td", { text: ci(a.alpha, a.alpha_ci, 1, "") }),
        el("td", { text: ci(a.percent_agreement, a.percent_agreement_ci, 100, "%") }))));
    $("quality-screening").replaceChildren(...run.screening.map((s) =>
      el("li", {}, el("strong", { text: `${s.step}: ${s.removed} removed. ` }), s.why)));
    const queue = run.relabel_queue;
    $("quality-relabel").textContent = queue.length
      ? `${queue.length} slot(s) wait for another coder: ${queue.slice(0, 20).map((q) => q.post_id).join(", ")}${queue.length > 20 ? ", …" : ""}.`
      : "No post is waiting for another coder.";
  }

  // ---- review and adjudication ---------------------------------------------------------------

  fillCampaignChoices() {
    const family = $("review-family").value;
    const select = $("review-campaign");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "", text: "any" }),
      ...this.campaigns.filter((c) => c.family === family).map((c) =>
        el("option", { value: String(c.id), text: c.name })));
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }

  async listReview(offset) {
    const query = new URLSearchParams({ family: $("review-family").value });
    if ($("review-campaign").value) query.set("campaign", $("review-campaign").value);
    if ($("review-keyword").value.trim()) query.set("keyword", $("review-keyword").value.trim());
    if ($("review-confidence").value !== "") query.set("max_confidence", $("review-confidence").value);
    if (offset) query.set("offset", String(offset));
    status("review-status", "Loading posts…");
    let page;
    try {
      page = await this.api.get(`/review?${query}`);
    } catch (err) {
      status("review-status", `No posts: ${failure(err)}`);
      return;
    }
    this.review = { next: page.next_offset };
    const body = document.querySelector("#review-list tbody");
    if (!offset) body.replaceChildren();
    for (const item of page.items) {
      const open = el("button", { type: "button", text: "Open", "aria-label": `Open post ${item.post_id}` });
      open.addEventListener("click", () => this.openPost(item.post_id, $("review-family").value));
      body.append(el("tr", { "data-post": item.post_id },
        el("th", { scope: "row", text: item.post_id }), el("td", { text: item.keyword || "" }),
        el("td", { text: item.campaign }), el("td", { text: String(item.labels) }),
        el("td", { text: item.confidence === null ? "not judged yet" : item.confidence.toFixed(3) }),
        el("td", { text: item.kept === null ? "" : item.kept ? "yes" : "no" }),
        el("td", { text: item.adjudicated ? "yes" : "no" }), el("td", {}, open)));
    }
    $("review-list").hidden = false;
    $("btn-review-more").hidden = page.next_offset === null;
    const shown = body.children.length;
    status("review-status", shown ? `${shown} post(s)${page.run_id ? ` (confidence from quality run ${page.run_id})` : " (no quality run yet: no confidence)"}.`
      : "No labeled posts match.");
  }

  async openPost(postId, family) {
    let d;
    try {
      d = await this.api.get(`/posts/${encodeURIComponent(postId)}/labels?family=${encodeURIComponent(family)}`);
    } catch (err) {
      this.toast(`Could not open post ${postId}: ${describe(err)}`, "error");
      return;
    }
    this.detail = { post_id: postId, family: d.family };
    $("post-detail").hidden = false;
    $("post-detail-title").textContent = `Post ${postId} (${d.family}${d.post.keyword ? `, ${d.post.keyword}` : ""})`;
    $("post-detail-text").textContent = d.post.text;
    document.querySelector("#post-labels tbody").replaceChildren(...(d.labels.length ? d.labels.map((l) =>
      el("tr", { class: l.current ? "" : "superseded" }, el("th", { scope: "row", text: l.coder + (l.source ? ` (${l.source})` : "") }),
        el("td", { text: `${l.revision}${l.current ? "" : " (revised later)"}` }), el("td", { text: l.kind }),
        el("td", { text: l.seconds_spent === null ? "" : String(l.seconds_spent) }),
        el("td", { text: answersText(l.answers) }), el("td", { text: when(l.created_at) })))
      : [el("tr", {}, el("td", { colspan: "6", text: "No labels in this family." }))]));
    $("post-skips").replaceChildren(...(d.skips.length ? d.skips.map((s) =>
      el("li", { text: `${s.coder} skipped it (${when(s.created_at)}): ${s.reason}` }))
      : [el("li", { class: "muted", text: "Nobody skipped it." })]));
    const c = d.consensus;
    if (!c) {
      $("post-consensus").replaceChildren(el("p", { class: "muted", text: "Not judged by a quality run yet." }));
    } else {
      $("post-consensus").replaceChildren(
        el("p", { text: `Quality run ${c.run_id}: ${answersText(c.answers)}. Confidence ${c.confidence.toFixed(3)} from ${c.n_labels} label(s); ${c.kept ? "kept" : `screened out (${c.reason})`}.` }),
        el("div", { class: "table-scroll" }, el("table", { class: "grid" },
          el("caption", { class: "caption", text: "Each binary item: the consensus value and its posterior P(true)." }),
          el("thead", {}, el("tr", {}, ...["Item", "Value", "Posterior"].map((h) => el("th", { scope: "col", text: h })))),
          el("tbody", {}, ...c.items.map((i) => el("tr", {}, el("th", { scope: "row", text: i.item }),
            el("td", { text: i.value ? "yes" : "no" }), el("td", { text: Number(i.posterior).toFixed(3) })))))));
    }
    $("post-adjudications").replaceChildren(...(d.adjudications.length ? d.adjudications.map((a, i) =>
      el("li", { text: `${i === 0 ? "In force: " : "Superseded: "}${a.author}, ${when(a.created_at)}: ${answersText(a.answers)}${a.note ? ` — ${a.note}` : ""}` }))
      : [el("li", { class: "muted", text: "Not adjudicated." })]));
    if (!this.adjudicateForm || this.adjudicateForm.family.name !== d.family) {
      // A fresh container: the form listens on its container, and the old form must not.
      const old = $("adjudicate-questions");
      const container = el("div", { id: old.id, class: old.className });
      old.replaceWith(container);
      const familyDoc = this.codebook.families.find((f) => f.name === d.family);
      this.adjudicateForm = new QuestionForm(container, familyDoc, { idPrefix: "adj-" });
    }
    this.adjudicateForm.setAnswers(d.adjudications.length ? d.adjudications[0].answers : c ? c.answers : {});
    $("adjudicate-note").value = "";
    $("post-detail-title").focus();
  }

  async adjudicate() {
    if (!this.detail || !this.adjudicateForm.validate()) return;
    const body = { post_id: this.detail.post_id, family: this.detail.family,
      answers: this.adjudicateForm.value() };
    const note = $("adjudicate-note").value.trim();
    if (note) body.note = note;
    try {
      const saved = await this.api.post("/adjudications", body);
      this.toast(`Post ${saved.post_id} adjudicated: ${answersText(saved.answers)}.`);
      const row = document.querySelector(`#review-list tr[data-post="${CSS.escape(saved.post_id)}"] td:nth-of-type(6)`);
      if (row) row.textContent = "yes";
      await this.openPost(saved.post_id, saved.family);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) this.adjudicateForm.showServerErrors(
        (err.details || []).map((x) => ({ ...x, field: String(x.field).replace(/^(body\.)?answers\./, "") })));
      this.toast(`Not adjudicated: ${failure(err)}`, "error");
    }
  }

  // ---- uploads and imports ----------------------------------------------------------------

  syncPurpose() {
    $("upload-purpose").disabled = $("upload-kind").value !== "gold";
  }

  // Ask the API for a presigned URL, then send the file straight to storage with it; the
  // upload starts the import job, which the list below follows.
  async upload() {
    const file = $("upload-file").files[0];
    if (!file) {
      status("upload-status", "Choose a file to upload first.");
      $("upload-file").focus();
      return;
    }
    const kind = $("upload-kind").value;
    const request = { kind, filename: file.name, size: file.size };
    if (kind === "gold") request.purpose = $("upload-purpose").value;
    $("btn-upload").disabled = true;
    status("upload-status", `Preparing the upload of ${file.name}…`);
    try {
      const upload = await this.api.post("/uploads", request);
      status("upload-status", `Uploading ${file.name} (${bytes(file.size)})…`);
      let shown = -1;
      await putFile(upload, file, (fraction) => {
        const pct = Math.floor(100 * fraction);
        if (pct >= shown + 5 || pct === 100) {
          shown = pct;
          status("upload-status", `Uploading ${file.name} (${bytes(file.size)}): ${pct}%`);
        }
      });
      this.uploaded.add(upload.import_id);
      status("upload-status", `${file.name} is uploaded; its import starts in a moment (below).`);
      $("form-upload").reset();
      this.syncPurpose();
      this.watchImports();
    } catch (err) {
      status("upload-status", `${file.name} was not uploaded: ${err instanceof ApiError ? failure(err) : err.message}`);
    } finally {
      $("btn-upload").disabled = false;
    }
  }

  // Follow the imports while any of them runs, or waits for a file this page sent, or has its
  // rejects file on the way (locally it is copied out of the S3 stand-in just after the end).
  watchImports() {
    this.importPolls = 0;
    if (this.importTimer) return;
    const tick = async () => {
      this.importTimer = null;
      let data = null;
      try {
        data = await this.api.get("/imports");
        this.renderImports(data);
      } catch (err) {
        status("upload-status", `The imports could not be listed (${describe(err)}); retrying…`);
      }
      const busy = !data || data.imports.some((i) => i.running
        || (i.status === "waiting" && this.uploaded.has(i.id))
        || (i.status === "succeeded" && i.counts.rejected && !i.rejects));
      this.importPolls += 1;
      if (busy && this.importPolls < 2400) this.importTimer = setTimeout(tick, 1500);
    };
    this.importTimer = setTimeout(tick, 500);
  }

  renderImports(data) {
    if (data.limits) {
      $("import-limit-corpus").textContent = bytes(data.limits.corpus);
      $("import-limit-gold").textContent = bytes(data.limits.gold);
    }
    const body = document.querySelector("#import-list tbody");
    if (!data.imports.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "9", class: "muted", text: "No uploads yet." })));
      return;
    }
    body.replaceChildren(...data.imports.map((i) => {
      const p = i.progress;
      let progress = "";
      if (p.batches) {
        progress = `batches ${p.batches_done} of ${p.batches}`;
        if (p.rows_total !== null) progress += `, rows ${count(p.rows_done)} of ${count(p.rows_total)}`;
      }
      const state = el("td", { "data-status": i.status, text: IMPORT_STATUS[i.status] || i.status });
      if (i.error) state.append(el("br"), el("span", { class: "error", text: i.error }));
      const rejects = el("td");
      if (i.rejects) {
        const name = i.rejects.key.split("/").pop();
        const text = `${count(i.rejects.rows)} rejected row${i.rejects.rows === 1 ? "" : "s"}`;
        rejects.append(el("a", { href: i.rejects.url, download: name, "data-rejects": i.id,
          text, "aria-label": `${text} of ${i.filename}` }));
      } else if (i.counts.rejected) {
        rejects.append(el("span", { class: "muted", text: "preparing…" }));
      }
      const c = i.counts;
      const done = i.status === "succeeded";
      return el("tr", { "data-import": i.id },
        el("th", { scope: "row", text: `${i.filename} (${bytes(i.size)})` }),
        el("td", { text: i.kind === "gold" ? `gold, ${i.purpose || "no purpose"}` : "corpus" }),
        state, el("td", { text: progress }),
        el("td", { "data-count": "inserted", text: done ? count(c.inserted) : "" }),
        el("td", { "data-count": "updated", text: done ? count(c.updated) : "" }),
        el("td", { "data-count": "unchanged", text: done ? count(c.unchanged) : "" }),
        el("td", { "data-count": "rejected", text: done ? count(c.rejected) : "" }),
        rejects);
    }));
    if (data.imports.some((i) => i.running) && !this.importTimer) this.watchImports();
  }

  // ---- exports ------------------------------------------------------------------------------

  exportRequest() {
    const families = [...document.querySelectorAll("input[name=export-family]:checked")].map((i) => i.value);
    const number = (id) => Number($(id).value);
    return {
      families,
      rules: {
        min_confidence: number("exp-min-confidence"), min_gold_accuracy: number("exp-min-gold"),
        min_gold_answers: number("exp-min-answers"), max_labels_per_post: number("exp-max-labels"),
        em_max_iterations: number("exp-em"), relabel: $("exp-relabel").checked,
        allow_uncertified: $("exp-uncertified").checked,
      },
    };
  }

  async startExport() {
    const request = this.exportRequest();
    if (!request.families.length) {
      status("export-status", "Pick at least one family to export.");
      return;
    }
    $("export-files").replaceChildren();
    try {
      const job = await this.api.post("/exports", request);
      status("export-status", `Export ${job.job_id} started for ${job.families.join(", ")}…`);
      this.exportPolls = 0;
      this.pollExport(job.job_id);
    } catch (err) {
      status("export-status", `The export could not start: ${failure(err)}`);
    }
  }

  async pollExport(jobId) {
    let job;
    try {
      job = await this.api.get(`/exports/${encodeURIComponent(jobId)}`);
    } catch (err) {
      status("export-status", `Export ${jobId}: status unavailable (${describe(err)}); retrying…`);
      setTimeout(() => this.pollExport(jobId), 3000);
      return;
    }
    if (job.status === "running") {
      status("export-status", `Export ${jobId} is running…`);
      setTimeout(() => this.pollExport(jobId), 1500);
    } else if (job.status === "succeeded") {
      if (!job.files.length && this.exportPolls < 40) {
        // Locally the files are copied out of the S3 stand-in just after the job ends.
        this.exportPolls += 1;
        status("export-status", `Export ${jobId} finished; preparing the download links…`);
        setTimeout(() => this.pollExport(jobId), 500);
        return;
      }
      status("export-status", `Export ${jobId} finished: ${await this.exportOutcome(job)}`);
      this.renderFiles(job);
      this.load();
    } else {
      status("export-status", `Export ${jobId} failed: ${job.error}`);
    }
  }

  // Per family: records written, and when none, why (from the family's quality run).
  async exportOutcome(job) {
    const parts = [];
    for (const f of job.output.families) {
      let text = `${f.family}: ${f.verified} records`;
      if (!f.verified) {
        try {
          const run = await this.api.get(`/quality/${encodeURIComponent(f.family)}/latest`);
          text += run.posts
            ? ` (all ${run.posts} posts judged were screened out: ${run.screening.filter((s) => s.removed).map((s) => `${s.step} ${s.removed}`).join("; ") || "see the quality run"})`
            : " (no labeled posts to judge yet: label some first)";
        } catch {
          text += " (no quality run to say why)";
        }
      }
      parts.push(text);
    }
    return `${parts.join("; ")}.`;
  }

  renderFiles(job) {
    const box = $("export-files");
    const groups = new Map();
    for (const f of job.files) {
      const key = f.family || "the whole job";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(f);
    }
    box.replaceChildren(el("h4", { text: `Files of ${job.id}` }),
      ...[...groups.entries()].map(([family, files]) => el("div", { class: "file-group" },
        el("h5", { text: family }),
        el("ul", { class: "files" }, ...files.map((f) => el("li", {},
          el("a", { href: f.url, download: f.name, "data-file": `${f.family || ""}/${f.name}`, text: f.name }),
          ` ${bytes(f.size)}`))))));
    const skipped = job.output && job.output.families.flatMap((f) => Object.entries(f.files_skipped || {})
      .map(([name, why]) => `${f.family}/${name}: ${why}`));
    if (skipped && skipped.length) box.append(el("p", { class: "note", text: `Not written: ${skipped.join("; ")}.` }));
  }

  renderJobs(jobs) {
    $("export-jobs").replaceChildren(...(jobs.length ? jobs.map((j) => {
      const item = el("li", { text: `${j.id}: ${j.status}, ${j.families.join(", ")}${j.finished_at ? `, finished ${when(j.finished_at)}` : ""}${j.error ? ` — ${j.error}` : ""} ` });
      if (j.status === "succeeded") {
        const button = el("button", { type: "button", text: "Show files", "aria-label": `Show the files of ${j.id}` });
        button.addEventListener("click", async () => {
          try {
            const job = await this.api.get(`/exports/${encodeURIComponent(j.id)}`);
            status("export-status", job.files.length ? "" : `The files of ${j.id} are no longer kept here.`);
            this.renderFiles(job);
          } catch (err) {
            this.toast(`No files for ${j.id}: ${describe(err)}`, "error");
          }
        });
        item.append(button);
      }
      return item;
    }) : [el("li", { class: "muted", text: "No exports yet." })]));
  }
}
