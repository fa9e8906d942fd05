// The questions of one family, rendered from the codebook the API serves. Nothing here names
// an option: questions, options, help and the rules for when a question is asked all come
// from GET /codebook.

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

export class QuestionForm {
  constructor(container, family, onChange) {
    this.container = container;
    this.family = family;
    this.onChange = onChange || (() => {});
    this.answers = {};
    this.focusIndex = 0;
    this.helpOpen = false;
    this.render();
  }

  visibleQuestions() {
    return this.family.questions.filter((q) => isAsked(q, this.answers));
  }

  setAnswers(answers) {
    this.answers = JSON.parse(JSON.stringify(answers || {}));
    this.focusIndex = 0;
    this.render();
  }

  render(errors = {}) {
    this.container.replaceChildren();
    const visible = this.visibleQuestions();
    if (this.focusIndex >= visible.length) this.focusIndex = Math.max(0, visible.length - 1);
    visible.forEach((q, index) => this.container.append(this.renderQuestion(q, index, errors[q.name])));
    // Keep the keyboard where the coder is working: on the highlighted question.
    const input = this.container.querySelector(".question.focused input");
    if (input && !document.querySelector("dialog[open]")) input.focus({ preventScroll: false });
  }

  focusFirst() {
    this.focusIndex = 0;
    this.helpOpen = false;
    this.render();
  }

  renderQuestion(q, index, error) {
    const focused = index === this.focusIndex;
    const fieldset = el("fieldset", {
      class: `question${focused ? " focused" : ""}${error ? " invalid" : ""}`,
      "data-question": q.name,
      "aria-describedby": error ? `err-${q.name}` : undefined,
    });
    const legend = el("legend", {}, el("span", { class: "qnum", text: `${index + 1}.` }), ` ${q.prompt}`);
    const helpButton = el("button", {
      type: "button", class: "help-toggle", "aria-expanded": String(focused && this.helpOpen),
      "aria-label": `Help for question ${index + 1}`, title: "Help (h)", text: "?",
    });
    helpButton.addEventListener("click", () => {
      this.focusIndex = index;
      this.helpOpen = !(focused && this.helpOpen);
      this.render();
    });
    fieldset.append(legend, helpButton);
    const choices = q.kind === "yes_no"
      ? [{ value: true, label: "Yes", help: "" }, { value: false, label: "No", help: "" }]
      : q.options.map((o) => ({ value: o.value, label: o.value, help: o.help }));
    const list = el("div", { class: "options", role: q.kind === "yes_no" ? "radiogroup" : "group" });
    choices.forEach((choice, i) => {
      const id = `opt-${q.name}-${i}`;
      const checked = q.kind === "yes_no"
        ? this.answers[q.name] === choice.value
        : (this.answers[q.name] || []).includes(choice.value);
      const input = el("input", {
        type: q.kind === "yes_no" ? "radio" : "checkbox",
        id, name: q.name, "data-index": i,
        checked: checked ? "checked" : false,
      });
      input.checked = checked;
      input.addEventListener("change", () => {
        this.focusIndex = index;
        this.choose(q, choice.value, input.checked);
      });
      const label = el("label", { for: id, class: "option" },
        input, el("kbd", { text: String(i + 1) }), el("span", { text: choice.label }));
      if (choice.help) label.title = choice.help;
      list.append(label);
    });
    fieldset.append(list);
    if (focused && this.helpOpen) {
      const help = el("div", { class: "help", role: "note" }, el("p", { text: q.help }));
      if (q.options.length) {
        const dl = el("dl");
        for (const o of q.options) dl.append(el("dt", { text: o.value }), el("dd", { text: o.help }));
        help.append(dl);
      }
      fieldset.append(help);
    }
    if (error) fieldset.append(el("p", { class: "error", id: `err-${q.name}`, role: "alert", text: error }));
    return fieldset;
  }

  choose(q, value, on) {
    if (q.kind === "yes_no") {
      this.answers[q.name] = value;
    } else {
      const current = new Set(this.answers[q.name] || []);
      if (on) current.add(value); else current.delete(value);
      this.answers[q.name] = [...current];
    }
    this.render();
    this.onChange(this.answers);
  }

  // Number key n: toggle option n of the focused question (1 = yes, 2 = no for yes/no).
  toggleOption(n) {
    const q = this.visibleQuestions()[this.focusIndex];
    if (!q) return;
    if (q.kind === "yes_no") {
      if (n === 1 || n === 2) {
        this.choose(q, n === 1, true);
        if (n === 1 || this.focusIndex < this.visibleQuestions().length - 1) this.move(1);
      }
      return;
    }
    const option = q.options[n - 1];
    if (!option) return;
    const on = !(this.answers[q.name] || []).includes(option.value);
    this.choose(q, option.value, on);
  }

  move(step) {
    const count = this.visibleQuestions().length;
    this.focusIndex = Math.min(Math.max(this.focusIndex + step, 0), Math.max(count - 1, 0));
    this.render();
  }

  toggleHelp() {
    this.helpOpen = !this.helpOpen;
    this.render();
  }

  validate() {
    const found = problems(this.family, this.answers);
    this.render(found);
    return Object.keys(found).length === 0;
  }

  showServerErrors(details) {
    const errors = {};
    for (const d of details || []) errors[d.field] = d.message;
    this.render(errors);
  }

  value() {
    return cleanAnswers(this.family, this.answers);
  }
}
