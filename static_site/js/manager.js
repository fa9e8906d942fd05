// The manager view: progress per family and per coder; add coders; certify and revoke.

import { el } from "./form.js";

export class ManagerView {
  constructor(api, config, toast) {
    this.api = api;
    this.config = config;
    this.toast = toast;
    const form = document.getElementById("form-coder");
    form.onsubmit = (event) => { event.preventDefault(); this.addCoder(); };
    document.getElementById("btn-export").onclick = () => this.startExport();
  }

  async startExport() {
    const status = document.getElementById("export-status");
    status.hidden = false;
    try {
      const job = await this.api.post("/exports", {});
      status.textContent = `Export ${job.job_id} started for ${job.families.join(", ")}…`;
      this.pollExport(job.job_id);
    } catch (err) {
      status.textContent = `The export could not start: ${err.message}`;
    }
  }

  async pollExport(jobId) {
    const status = document.getElementById("export-status");
    let job;
    try {
      job = await this.api.get(`/exports/${encodeURIComponent(jobId)}`);
    } catch (err) {
      status.textContent = `Export ${jobId}: status unavailable (${err.message}); retrying…`;
      setTimeout(() => this.pollExport(jobId), 3000);
      return;
    }
    if (job.status === "running") {
      status.textContent = `Export ${jobId} is running…`;
      setTimeout(() => this.pollExport(jobId), 2000);
    } else if (job.status === "succeeded") {
      const families = job.output.families.map((f) => `${f.family}: ${f.verified} records`);
      status.textContent = `Export ${jobId} finished: ${families.join("; ")}. ` +
        `Files: ${job.output.summary_key.replace("summary.json", "")}`;
      this.load();
    } else {
      status.textContent = `Export ${jobId} failed: ${job.error}`;
    }
  }

  async load() {
    const error = document.getElementById("manager-error");
    error.hidden = true;
    try {
      const progress = await this.api.get("/progress");
      this.renderFamilies(progress.families);
      this.renderCoders(progress.coders);
    } catch (err) {
      error.hidden = false;
      error.textContent = `Progress unavailable: ${err.message}`;
    }
  }

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
    for (const c of coders) {
      const actions = el("td");
      for (const [status, label] of [["certified", "Certify"], ["revoked", "Revoke"], ["trainee", "Make trainee"]]) {
        if (c.status === status) continue;
        const button = el("button", { type: "button", "data-action": status, "data-coder": c.name,
          text: label, "aria-label": `${label} ${c.name}` });
        button.addEventListener("click", () => this.setStatus(c, status));
        actions.append(button, " ");
      }
      body.append(el("tr", { "data-coder": c.name }, el("th", { scope: "row", text: c.name }),
        el("td", { text: c.role }), el("td", { class: `status-${c.status}`, text: c.status }),
        el("td", { text: String(c.today) }), el("td", { text: String(c.this_week) }), actions));
    }
  }

  async setStatus(coder, status) {
    try {
      await this.api.patch(`/coders/${coder.id}`, { status });
      this.toast(`${coder.name} is now ${status}.`);
    } catch (err) {
      this.toast(`Could not change ${coder.name}: ${err.message}`, "error");
    }
    await this.load();
  }

  async addCoder() {
    const name = document.getElementById("coder-name").value.trim();
    const role = document.getElementById("coder-role").value;
    const status = document.getElementById("coder-status").value;
    const note = document.getElementById("coder-created");
    try {
      const created = await this.api.post("/coders", { name, role, status });
      note.hidden = false;
      note.replaceChildren(el("span", { text: `Added ${created.coder.name}.` }));
      if (created.token) {
        note.append(" Give them this token to sign in: ",
          el("code", { class: "token", text: created.token }));
      } else {
        note.append(" Create their sign-in account with the same user name.");
      }
      document.getElementById("coder-name").value = "";
    } catch (err) {
      const detail = (err.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
      this.toast(`Could not add the coder: ${err.message}${detail ? ` (${detail})` : ""}`, "error");
    }
    await this.load();
  }
}
