// The questions of one family, rendered from the codebook the API serves. Nothing here names
// an option: questions, options, help and the rules for when a question is asked all come
// from GET /codebook.
//
// The form is built once per family and then updated in place (checked boxes, asked
// questions, errors), so the keyboard focus never jumps while the coder works: Tab and
// Shift+Tab move through every option as everywhere on the platform, and the arrow keys stay
// with the focused yes/no (radio) group.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export { el };

// Is a question asked, given the answers so far? Mirrors trainset.codebook.ShowWhen.
export function isAsked(question, answers) {
  const rule = question.show_when;
  if (!rule) return true;
  const value = answers[rule.field];
  if (rule.equals !== null && rule.equals !== undefined) return value === rule.equals;
  return Array.isArray(value) && value.some((v) => rule.any_of.includes(v));
}

// Field problems before anything is sent (the server checks again); mirrors the codebook.
export function problems(family, answers) {
  const found = {};
  for (const q of family.questions) {
    if (!isAsked(q, answers)) continue;
    const value = answers[q.name];
    if (q.kind === "yes_no") {
      if (typeof value !== "boolean") found[q.name] = "Answer yes or no.";
    } else if (!Array.isArray(value) || value.length === 0) {
      found[q.name] = "Pick at least one option.";
    } else {
      const exclusive = q.options.find((o) => o.exclusive && value.includes(o.value));
      if (exclusive && value.length > 1) found[q.name] = `"${exclusive.value}" cannot be combined with other options.`;
    }
  }
  return found;
}

// Only the asked questions, options in codebook order: what the server stores.
export function cleanAnswers(family, answers) {
  const out = {};
  for (const q of family.questions) {
    if (!isAsked(q, answers) || answers[q.name] === undefined) continue;
    out[q.name] = q.kind === "yes_no" ? answers[q.name] : q.options.map((o) => o.value).filter((v) => answers[q.name].includes(v));
  }
  return out;
}

function choicesOf(q) {
  return q.kind === "yes_no"
    ? [{ value: true, label: "Yes", help: "" }, { value: false, label: "No", help: "" }]
    : q.options.map((o) => ({ value: o.value, label: o.value, help: o.help }));
}

export class QuestionForm {
  // idPrefix keeps a second form on the page (the manager's adjudication) apart from the
  // labeling form: its ids and radio groups are its own.
  constructor(container, family, { idPrefix = "" } = {}) {
    this.container = container;
    this.family = family;
    this.prefix = idPrefix;
    this.answers = {};
    this.focusIndex = 0; // the current question, among the asked ones
    this.helpOpen = false;
    this.parts = new Map(); // question name -> {fieldset, qnum, inputs, help, error, helpButton}
    this.build();
    container.addEventListener("focusin", (event) => {
      const fieldset = event.target.closest("fieldset.question");
      if (!fieldset) return;
      const index = this.visibleQuestions().findIndex((q) => q.name === fieldset.dataset.question);
      if (index >= 0 && index !== this.focusIndex) {
        this.focusIndex = index;
        this.helpOpen = false;
        this.sync();
      }
    });
  }

  visibleQuestions() {
    return this.family.questions.filter((q) => isAsked(q, this.answers));
  }

  build() {
    this.container.replaceChildren();
    this.family.questions.forEach((q) => {
      const fieldset = el("fieldset", { class: "question", "data-question": q.name, id: `${this.prefix}q-${q.name}` });
      const qnum = el("span", { class: "qnum" });
      const legend = el("legend", {}, qnum, ` ${q.prompt}`);
      const helpId = `${this.prefix}help-${q.name}`;
      const helpButton = el("button", {
        type: "button", class: "help-toggle", "aria-expanded": "false", "aria-controls": helpId,
        "aria-label": `Help for this question: ${q.prompt}`, "aria-keyshortcuts": "H", title: "Help (H)", text: "?",
      });
      helpButton.addEventListener("click", () => {
        this.focusIndex = this.visibleQuestions().findIndex((v) => v.name === q.name);
        this.helpOpen = !this.helpOpen;
        this.sync();
      });
      const radio = q.kind === "yes_no";
      const list = el("div", radio
        ? { class: "options", role: "radiogroup", "aria-label": q.prompt }
        : { class: "options" });
      const inputs = [];
      choicesOf(q).forEach((choice, i) => {
        const id = `${this.prefix}opt-${q.name}-${i}`;
        const keyId = `${this.prefix}key-${q.name}-${i}`;
        const input = el("input", {
          type: radio ? "radio" : "checkbox", id, name: `${this.prefix}${q.name}`, "data-index": i,
          "aria-describedby": keyId,
        });
        input.addEventListener("change", () => this.choose(q, choice.value, input.checked));
        // The key is the option's description, not part of its name ("key 2", then "1 to 4
        // years…" is read as the option's name).
        const hint = el("kbd", { class: "key-hint", id: keyId, "aria-hidden": "true" },
          el("span", { class: "visually-hidden", text: "key " }), String(i + 1));
        const label = el("label", { for: id, class: "option" },
          input, hint, el("span", { class: "option-text", text: choice.label }));
        if (choice.help) label.title = choice.help;
        list.append(label);
        inputs.push(input);
      });
      const help = el("div", { class: "help", id: helpId, hidden: "hidden" }, el("p", { text: q.help }));
      if (q.options.length) {
        const dl = el("dl");
        for (const o of q.options) dl.append(el("dt", { text: o.value }), el("dd", { text: o.help }));
        help.append(dl);
      }
      const error = el("p", { class: "error", id: `${this.prefix}err-${q.name}`, hidden: "hidden" });
      fieldset.append(legend, helpButton, list, help, error);
      this.container.append(fieldset);
      this.parts.set(q.name, { fieldset, qnum, inputs, help, error, helpButton });
    });
  }

  // Show the answers, the asked questions, their numbers and the current question.
  sync() {
    const visible = this.visibleQuestions();
    if (this.focusIndex >= visible.length) this.focusIndex = Math.max(0, visible.length - 1);
    const current = visible[this.focusIndex];
    this.family.questions.forEach((q) => {
      const part = this.parts.get(q.name);
      const index = visible.indexOf(q);
      part.fieldset.hidden = index < 0;
      part.qnum.textContent = `${index + 1}.`;
      const isCurrent = q === current;
      part.fieldset.classList.toggle("current", isCurrent);
      const open = isCurrent && this.helpOpen;
      part.help.hidden = !open;
      part.helpButton.setAttribute("aria-expanded", String(open));
      const value = this.answers[q.name];
      choicesOf(q).forEach((choice, i) => {
        part.inputs[i].checked = q.kind === "yes_no" ? value === choice.value : (value || []).includes(choice.value);
      });
    });
  }

  setAnswers(answers) {
    this.answers = JSON.parse(JSON.stringify(answers || {}));
    this.focusIndex = 0;
    this.helpOpen = false;
    this.showErrors({});
    this.sync();
  }

  // Put the keyboard on question `index` (among the asked ones): on its checked option, or
  // its first one.
  focusQuestion(index) {
    const visible = this.visibleQuestions();
    if (!visible.length) return;
    this.focusIndex = Math.min(Math.max(index, 0), visible.length - 1);
    this.sync();
    const part = this.parts.get(visible[this.focusIndex].name);
    const target = part.inputs.find((i) => i.checked && i.type === "radio") || part.inputs[0];
    if (target && !document.querySelector("dialog[open]")) target.focus();
  }

  focusFirst() {
    this.helpOpen = false;
    this.focusQuestion(0);
  }

  choose(q, value, on) {
    if (q.kind === "yes_no") {
      this.answers[q.name] = value;
    } else {
      const current = new Set(this.answers[q.name] || []);
      if (on) current.add(value); else current.delete(value);
      this.answers[q.name] = [...current];
    }
    const part = this.parts.get(q.name);
    if (!part.error.hidden) this.setError(q.name, null);
    this.sync();
  }

  // Number key n: toggle option n of the current question (1 = yes, 2 = no for yes/no; a
  // yes/no answer moves on to the next question).
  toggleOption(n) {
    const visible = this.visibleQuestions();
    const q = visible[this.focusIndex];
    if (!q) return;
    const part = this.parts.get(q.name);
    if (q.kind === "yes_no") {
      if (n !== 1 && n !== 2) return;
      this.choose(q, n === 1, true);
      const count = this.visibleQuestions().length;
      if (this.focusIndex < count - 1) this.focusQuestion(this.focusIndex + 1);
      else part.inputs[n - 1].focus();
      return;
    }
    const option = q.options[n - 1];
    if (!option) return;
    const on = !(this.answers[q.name] || []).includes(option.value);
    this.choose(q, option.value, on);
    part.inputs[n - 1].focus();
  }

  move(step) {
    this.focusQuestion(this.focusIndex + step);
  }

  toggleHelp() {
    this.helpOpen = !this.helpOpen;
    this.sync();
  }

  setError(name, message) {
    const part = this.parts.get(name);
    if (!part) return;
    part.error.hidden = !message;
    part.error.textContent = message || "";
    part.fieldset.classList.toggle("invalid", Boolean(message));
    for (const input of part.inputs) {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      const keyId = input.id.replace("opt-", "key-");
      input.setAttribute("aria-describedby", message ? `${keyId} ${this.prefix}err-${name}` : keyId);
    }
  }

  showErrors(errors) {
    for (const q of this.family.questions) this.setError(q.name, errors[q.name]);
    const visible = this.visibleQuestions();
    const first = visible.findIndex((q) => errors[q.name]);
    if (first >= 0) this.focusQuestion(first);
  }

  validate() {
    const found = problems(this.family, this.answers);
    this.showErrors(found);
    return Object.keys(found).length === 0;
  }

  showServerErrors(details) {
    const errors = {};
    for (const d of details || []) errors[d.field] = d.message;
    this.showErrors(errors);
  }

  value() {
    return cleanAnswers(this.family, this.answers);
  }
}
