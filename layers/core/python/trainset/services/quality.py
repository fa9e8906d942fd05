"""Label quality end to end: gold scoring, agreement, consensus, screening, re-labeling."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from trainset import codebook
from trainset.errors import InvalidInput, NotFound
from trainset.quality import EM_MAX_ITERATIONS, agreement
from trainset.quality.consensus import BinaryLabel, Condition, dawid_skene
from trainset.quality.goldscore import (
    GoldAnswer,
    binary_items,
    cohort,
    gold_period,
    judge_questions,
    question_of,
    question_scores,
    score,
)


@dataclass(frozen=True)
class ScreeningRules:
    """What a label or record must meet to reach the dataset (all configurable)."""

    # Per question (a yes/no question, or a multi-select question's options together): a
    # coder's answers to it are dropped when the lower bound of the 95% Wilson interval of
    # their gold accuracy on it is below this percent. None: no answers are dropped.
    min_gold_accuracy: float | None = 55.0
    min_gold_answers: int = 10  # gold answers to a question before a coder is judged on it
    question_min_accuracy: Mapping[str, float] = field(default_factory=dict)  # overrides
    require_certified: bool = True  # drop labels made while the coder was not certified
    drop_gold_and_practice: bool = True  # gold and practice posts never reach the dataset
    min_confidence: float = 0.8  # records whose least certain item is below are screened out
    relabel: bool = True  # send screened-out records back for one more coder
    max_labels_per_post: int = 3  # ... until they have this many slots
    em_max_iterations: int = EM_MAX_ITERATIONS  # Dawid-Skene EM cap; reaching it is reported

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["question_min_accuracy"] = dict(self.question_min_accuracy)
        return out


WORK_KINDS = ("task", "imported")  # labels that are training data (imported: other tools)


def _require_family(family: str) -> codebook.Family:
    try:
        return codebook.family(family)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def gold_answers(labels: Iterable[Mapping[str, Any]],
                 gold: Mapping[str, Mapping[str, Any]],
                 adjudicated: Collection[str] = ()) -> list[GoldAnswer]:
    """The coders' answers to QA gold posts, and their work labels on adjudicated posts,
    each beside the known answer."""
    return [GoldAnswer(lab["coder"], lab["family"], lab["post_id"], lab["created_at"],
                       lab["answers"], gold[lab["post_id"]])
            for lab in labels if lab["post_id"] in gold and (
                lab["kind"] == "qa"
                or (lab["kind"] in WORK_KINDS and lab["post_id"] in adjudicated))]


def agreement_summary(family: str, labels: Sequence[Mapping[str, Any]], rounds: int = 200,
                      dropped: Collection[tuple[str, str, str]] = ()) -> dict[str, Any]:
    """Per question: Krippendorff's alpha (nominal for yes/no, MASI for multi-select, only
    coders who were asked), percent agreement, bootstrap 95% intervals, and Cohen's kappa per
    coder pair for yes/no questions. ``dropped``: (coder, post, question) answers screened
    out."""
    fam = codebook.family(family)
    by_post: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for lab in labels:
        by_post[lab["post_id"]].append(lab)
    out: dict[str, Any] = {}
    for q in fam.questions:
        units = []
        for post_labels in by_post.values():
            values = []
            for lab in post_labels:
                if (lab["coder"], lab["post_id"], q.name) in dropped:
                    continue
                asked = q.show_when is None or q.show_when.holds(lab["answers"])
                if asked and q.name in lab["answers"]:
                    value = lab["answers"][q.name]
                    values.append(value if q.kind == "yes_no" else frozenset(value))
            units.append(values)
        distance = agreement.nominal if q.kind == "yes_no" else agreement.masi
        alpha = agreement.krippendorff_alpha(units, distance)
        entry: dict[str, Any] = {
            "posts_with_2_or_more": sum(1 for u in units if len(u) >= 2),
            "alpha": alpha,
            "alpha_ci": agreement.bootstrap_interval(
                units, lambda u, d=distance: agreement.krippendorff_alpha(u, d), rounds),
            "percent_agreement": agreement.percent_agreement(units),
            "percent_agreement_ci": agreement.bootstrap_interval(
                units, agreement.percent_agreement, rounds),
            "distance": "nominal" if q.kind == "yes_no" else "MASI",
        }
        if q.kind == "yes_no":
            ratings: dict[str, dict[str, Any]] = defaultdict(dict)
            for lab in labels:
                if q.name in lab["answers"] and (
                        lab["coder"], lab["post_id"], q.name) not in dropped:
                    ratings[lab["coder"]][lab["post_id"]] = lab["answers"][q.name]
            entry["kappa_pairs"] = [
                {"coders": [a, b], "kappa": k, "common_posts": n}
                for a, b, k, n in agreement.pairwise_kappa(ratings)
            ]
        out[q.name] = entry
    return out


def binary_labels(family: str, labels: Iterable[Mapping[str, Any]]) -> list[BinaryLabel]:
    """The binary items a coder answered: a conditional question's options count only when
    the coder was asked it."""
    fam = codebook.family(family)
    out = []
    for lab in labels:
        answers = lab["answers"]
        for q in fam.questions:
            if q.show_when is not None and not q.show_when.holds(answers):
                continue
            if q.kind == "yes_no":
                out.append(BinaryLabel(lab["post_id"], q.name, lab["coder"],
                                       answers.get(q.name) is True))
            else:
                chosen = set(answers.get(q.name) or [])
                out.extend(BinaryLabel(lab["post_id"], f"{q.name}={v}", lab["coder"],
                                       v in chosen) for v in q.values)
    return out


def item_conditions(family: str) -> dict[str, Condition]:
    """When each conditional question's options have a truth (the consensus weighs them by
    it): ``age=...`` when ``is_child``; ``location=...`` when an indoor or outdoor place."""
    out = {}
    for q in codebook.family(family).questions:
        rule = q.show_when
        if rule is None:
            continue
        condition = (Condition((rule.field,), rule.equals) if rule.equals is not None
                     else Condition(tuple(f"{rule.field}={v}" for v in rule.any_of)))
        names = [q.name] if q.kind == "yes_no" else [f"{q.name}={v}" for v in q.values]
        out.update(dict.fromkeys(names, condition))
    return out


COPY_MARK = "\x1f"  # joins a post id and its draw number in a bootstrap refit
# A bootstrap refit measures how far a refitted model moves the estimate; posteriors settled
# to 1e-4 (not the full fit's 1e-6) move a prevalence by far less than the refits spread.
REFIT_TOLERANCE = 1e-4


@dataclass
class ConsensusFit:
    """The consensus over a family's screened labels, with what screening removed."""

    result: Any  # consensus.ConsensusResult
    items: list[Any]  # each non-gold post's items (consensus.ItemConsensus)
    labels: list[dict[str, Any]]
    work: list[dict[str, Any]]
    gold_rows: list[dict[str, Any]]
    log: list[dict[str, Any]]
    dropped: set[tuple[str, str, str]] = field(default_factory=set)  # (coder, post, question)
    gold_period: dict[str, Any] = field(default_factory=dict)
    # What the model was fitted to, so a bootstrap can refit it to a resampled set of posts.
    work_items: list[BinaryLabel] = field(default_factory=list)
    anchor_items: list[BinaryLabel] = field(default_factory=list)
    gold_truth: dict[tuple[str, str], bool] = field(default_factory=dict)
    family: str = ""
    max_iterations: int = EM_MAX_ITERATIONS

    def refit(self, post_ids: Sequence[str]) -> tuple[list[dict[str, float]], dict[str, float]]:
        """Fit the model again to the screened labels of ``post_ids`` (a post drawn twice
        counts twice) with the same gold anchors: each drawn post's item posteriors, in
        order, and the refitted priors."""
        by_post: dict[str, list[BinaryLabel]] = defaultdict(list)
        for b in self.work_items:
            by_post[b.post_id].append(b)
        labels = [BinaryLabel(f"{post_id}{COPY_MARK}{n}", b.item, b.coder, b.value)
                  for n, post_id in enumerate(post_ids) for b in by_post[post_id]]
        result = dawid_skene(labels + self.anchor_items, self.gold_truth,
                             max_iterations=self.max_iterations,
                             tolerance=REFIT_TOLERANCE, conditions=item_conditions(self.family))
        out: list[dict[str, float]] = [{} for _ in post_ids]
        for i in result.items:
            if COPY_MARK in i.post_id:
                out[int(i.post_id.rsplit(COPY_MARK, 1)[1])][i.item] = i.posterior
        return out, result.priors

    def posteriors(self) -> dict[str, dict[str, float]]:
        """P(item is true) per post: ``{post_id: {item: p}}``."""
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for i in self.items:
            out[i.post_id][i.item] = i.posterior
        return dict(out)


def screen_questions(family: str, answers: Sequence[GoldAnswer], work: Sequence[Mapping],
                     rules: ScreeningRules) -> tuple[set[tuple[str, str, str]], dict[str, Any]]:
    """The per-question gold screen: which (coder, post, question) answers to drop, and its
    log step (every verdict with accuracy, Wilson lower bound and threshold). A weak coder's
    answer stays where it is the post's only answer to the question, so no post silently
    loses a question (its consensus is then uncertain and the post is re-labeled)."""
    fam = codebook.family(family)
    questions = [q.name for q in fam.questions]
    threshold = float(rules.min_gold_accuracy or 0.0)
    verdicts = judge_questions(question_scores(answers), {lab["coder"] for lab in work},
                               questions, threshold, rules.min_gold_answers,
                               rules.question_min_accuracy)
    weak = {(v.coder, v.question) for v in verdicts if v.verdict == "dropped"}
    imported = {lab["coder"] for lab in work if lab["kind"] == "imported"}
    asked = [(lab, q) for lab in work for q in fam.questions
             if q.show_when is None or q.show_when.holds(lab["answers"])]
    answered = {(lab["post_id"], q.name) for lab, q in asked if (lab["coder"], q.name) not in weak}
    drop: set[tuple[str, str, str]] = set()
    removed: Counter[str] = Counter()
    by_question: Counter[str] = Counter()
    lone = 0
    for lab, q in asked:
        if (lab["coder"], q.name) not in weak:
            continue
        if (lab["post_id"], q.name) in answered:
            drop.add((lab["coder"], lab["post_id"], q.name))
            removed[lab["coder"]] += 1
            by_question[q.name] += 1
        else:
            lone += 1
    rows = []
    for v in verdicts:
        row = v.as_dict()
        if v.coder in imported and v.n == 0:
            row["note"] = "imported labels: no gold answers, so not judged (kept)"
        rows.append(row)
    names = [f"{v.coder} on {v.question} ({v.accuracy_pct:g}% of {v.n}, lower bound "
             f"{v.wilson_low_pct:g}% < {v.threshold_pct:g}%)"
             for v in verdicts if v.verdict == "dropped"]
    overrides = ", ".join(f"{q} {t:g}%" for q, t in sorted(rules.question_min_accuracy.items()))
    why = (f"per question, a coder's answers are dropped when the 95% Wilson lower bound of "
           f"their gold accuracy on it is below {threshold:g}%"
           + (f" ({overrides})" if overrides else "")
           + f", judged after {rules.min_gold_answers} gold answers to the question; their "
           "other questions still count. Removed counts answers (a label's answer to one "
           "question). "
           + ("Dropped: " + "; ".join(names) if names else "No coder below the threshold")
           + (f". {lone} answers were kept because no other coder answered that question on "
              "the post: the coder's gold-anchored rates make its consensus uncertain, so the "
              "post goes back for re-labeling rather than losing the question" if lone else "")
           + (f". Imported labels ({', '.join(sorted(imported))}) have no gold answers and "
              "pass unjudged" if imported else ""))
    step = {"step": "coders below the gold accuracy threshold", "removed": sum(removed.values()),
            "why": why, "by_coder": dict(removed), "by_question": dict(by_question),
            "kept_as_only_answer": lone, "verdicts": rows}
    return drop, step


def fit_consensus(store: Any, family: str, rules: ScreeningRules | None = None) -> ConsensusFit:
    """Score gold, screen labels (gold and practice posts, uncertified coders, and per
    question the answers of coders weak on it) and find each post's consensus,
    gold-anchored. Labels of kind 'task' and 'imported' are the work. Nothing is stored."""
    _require_family(family)
    rules = rules or ScreeningRules()
    labels = store.family_labels(family)
    gold = store.gold_answers(family)  # QA gold and adjudicated posts: known truths
    adjudicated = set(store.adjudicated_answers(family))
    answers = gold_answers(labels, gold, adjudicated)
    gold_rows = score(answers)
    log: list[dict[str, Any]] = []

    def step(name: str, removed: Sequence[Mapping[str, Any]], why: str) -> None:
        log.append({"step": name, "removed": len(removed), "why": why,
                    "by_coder": dict(Counter(r["coder"] for r in removed))})

    anchors = [lab for lab in labels if lab["kind"] == "qa" and lab["post_id"] in gold]
    work = [lab for lab in labels if lab["kind"] in WORK_KINDS]
    if rules.drop_gold_and_practice:
        step("gold and practice posts",
             [lab for lab in labels if lab["kind"] not in WORK_KINDS],
             "answers to gold and practice posts score coders; they are not training data")
    if rules.require_certified:
        dropped = [lab for lab in work if lab["coder_status"] != "certified"]
        work = [lab for lab in work if lab["coder_status"] == "certified"]
        step("not certified when labeling", dropped,
             "labels made while the coder was a trainee or revoked")
    weak: set[tuple[str, str, str]] = set()
    if rules.min_gold_accuracy is not None:
        weak, entry = screen_questions(family, answers, work, rules)
        log.append(entry)
    work_items = [b for b in binary_labels(family, work)
                  if (b.coder, b.post_id, question_of(b.item)) not in weak]
    gold_truth = {(post_id, item): value for post_id, answers in gold.items()
                  for item, value in binary_items(family, answers).items()}
    result = dawid_skene(work_items + binary_labels(family, anchors), gold_truth,
                         max_iterations=rules.em_max_iterations,
                         conditions=item_conditions(family))
    items = [i for i in result.items if i.post_id not in gold or i.post_id in adjudicated]
    anchor_items = binary_labels(family, anchors)
    return ConsensusFit(result, items, labels, work, gold_rows, log, weak,
                        gold_period(answers), work_items, anchor_items, gold_truth, family,
                        rules.em_max_iterations)


def score_and_find_consensus(store: Any, family: str,
                             rules: ScreeningRules | None = None) -> dict[str, Any]:
    """Stage 1: the consensus (``fit_consensus``), kept as a quality run."""
    rules = rules or ScreeningRules()
    fit = fit_consensus(store, family, rules)
    summary = {
        "family": family,
        "labels": len(fit.labels),
        "labels_used": len(fit.work),
        "posts": len({i.post_id for i in fit.items}),
        "screening": fit.log,
        "gold": fit.gold_rows,
        "gold_cohort": cohort(fit.gold_rows),
        "coder_rates": [asdict(r) for r in fit.result.coders],
        "gold_period": fit.gold_period,
        "agreement": agreement_summary(family, fit.work, dropped=fit.dropped),
        "em_iterations": fit.result.iterations,
        "em_converged": fit.result.converged,
        "item_priors": fit.result.priors,
    }
    run_id = store.save_run(family, rules.as_dict(), summary, fit.items)
    return {"run_id": run_id, **summary}


def label_posteriors(family: str, posteriors: Mapping[str, float],
                     priors: Mapping[str, float] | None = None) -> dict[str, float]:
    """P(label) for every label an estimate reports (``Family.labels()``: yes/no questions,
    then each detailed slot) from a post's item posteriors. An option nobody answered for
    this post (both coders said "no child") takes the option's fitted prior, so a child
    the coders missed still counts toward each age group as likely as children in general."""
    fam = codebook.family(family)
    items = {k: (p >= 0.5, p) for k, p in {**(priors or {}), **posteriors}.items()}
    out = {q.name: float(posteriors.get(q.name, 0.0))
           for q in fam.questions if q.kind == "yes_no"}
    out.update(zip([s.name for s in fam.slots], soft_labels(family, items), strict=True))
    return out


def screen_and_requeue(store: Any, run_id: int) -> dict[str, Any]:
    """Stage 2: screen out posts whose least certain answer is below the run's confidence
    threshold, and send them back for one more coder (up to the cap)."""
    run = store.run_by_id(run_id)
    if run is None:
        raise NotFound(f"no quality run {run_id}")
    rules = ScreeningRules(**run["rules"])
    per_post: dict[str, list[float]] = defaultdict(list)
    coders: dict[str, int] = defaultdict(int)
    for post_id, _item, confidence, n_labels in store.run_items(run_id):
        per_post[post_id].append(confidence)
        coders[post_id] = max(coders[post_id], n_labels)
    screened, weak_posts = [], []
    for post_id, confidences in sorted(per_post.items()):
        confidence = min(confidences)
        kept = confidence >= rules.min_confidence
        if not kept:
            weak_posts.append(post_id)
        screened.append({"post_id": post_id, "kept": kept, "confidence": confidence,
                         "n_labels": coders[post_id],
                         "reason": None if kept else (f"least certain answer {confidence:.2f}"
                                                      f" < {rules.min_confidence:g}")})
    summary = dict(run["summary"])
    summary["screening"] = [s for s in summary["screening"]
                            if s["step"] != "records below the confidence threshold"]
    summary["screening"].append({
        "step": "records below the confidence threshold", "removed": len(weak_posts),
        "why": f"a post's least certain consensus answer must be at least "
               f"{rules.min_confidence:g}", "by_coder": {}})
    relabeled = 0
    if rules.relabel and weak_posts:
        relabeled = store.request_relabels(
            run["family"], weak_posts, rules.max_labels_per_post,
            f"re-label: confidence below {rules.min_confidence:g}")
    summary["posts_kept"] = sum(1 for s in screened if s["kept"])
    summary["relabel_requested"] = relabeled
    store.save_screening(run_id, screened, summary)
    return {"run_id": run_id, **summary}


def run_quality(store: Any, family: str, rules: ScreeningRules | None = None) -> dict[str, Any]:
    """Both stages: gold, consensus and label screening; then record screening and
    re-labels. Returns the run's summary (every step: what it removed and why)."""
    first = score_and_find_consensus(store, family, rules)
    return screen_and_requeue(store, first["run_id"])


def latest_run_or_fail(store: Any, family: str) -> dict[str, Any]:
    _require_family(family)
    run = store.latest_run(family)
    if run is None:
        raise NotFound(f"no quality run for family {family} yet; run "
                       f"'python -m trainset quality run --family {family}' first")
    return run


STUDY_EMPTY = "['']"  # how the study's files wrote an unanswered multi-select question


def soft_labels(family: str, items: Mapping[str, tuple[bool, float]],
                study: bool = False) -> list[float]:
    """P(slot) for each slot of the family's detailed encoding (or, with ``study``, of the
    study's layout): an option of a conditional question counts only as likely as the
    question being asked; a slot several options share takes the likeliest of them."""
    fam = codebook.family(family)

    def posterior(item: str) -> float:
        return float(items[item][1]) if item in items else 0.0

    def asked(q: codebook.Question) -> float:
        rule = q.show_when
        if rule is None:
            return 1.0
        if rule.equals is not None:
            p = posterior(rule.field)
            return p if rule.equals else 1 - p
        return max((posterior(f"{rule.field}={v}") for v in rule.any_of), default=0.0)

    out = []
    for slot in fam.study_slots if study else fam.slots:
        best = 0.0
        for name, wanted in slot.when:
            q = fam.question(name)
            if isinstance(wanted, bool):
                p = posterior(name) if wanted else 1 - posterior(name)
            else:
                p = posterior(f"{name}={wanted}") * asked(q)
            best = max(best, p)
        out.append(round(best, 4))
    return out


def export_rows(family: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Dataset rows: consensus answers in the study's format (decided jointly, so they always
    obey the codebook), the gate, the study's multi-hot and the detailed one with their soft
    labels, confidence, coders and sampling weight."""
    fam = codebook.family(family)
    out = []
    for r in rows:
        items = {k: (bool(v[0]), float(v[1])) for k, v in (r["items"] or {}).items()}
        answers = codebook.consistent_answers(family, {k: v[1] for k, v in items.items()})
        row: dict[str, Any] = {"post_id": r["post_id"], "text": r["text"],
                               "keyword": r["keyword"], "image_key": r["image_key"],
                               "author": r.get("author")}
        for q in fam.questions:
            value = answers.get(q.name)
            if q.kind == "yes_no":
                row[q.name] = bool(value)
            else:
                row[q.name] = str(list(value)) if value else STUDY_EMPTY
        row.update(codebook.label_columns(family, answers))
        row["study_soft_labels"] = soft_labels(family, items, study=True)
        row["soft_labels"] = soft_labels(family, items)
        row["confidence"] = round(float(r["confidence"]), 4)
        row["n_coders"] = r["n_labels"]
        row["sampling_weight"] = None if r["weight"] is None else float(r["weight"])
        calibrated = r.get("calibrated_weight")
        row["calibrated_weight"] = None if calibrated is None else round(float(calibrated), 6)
        out.append(row)
    return out


def _stratum_key(r: Mapping[str, Any]) -> str:
    return f"{r['campaign_id']}:{r['stratum'] or 'all'}"


def screening_effect(family: str, judged: Sequence[Mapping[str, Any]],
                     priors: Mapping[str, float] | None = None) -> dict[str, Any]:
    """What screening did to the sample: per label, the prevalence (consensus posteriors)
    over every judged post and over the kept ones, design-weighted when every judged post has
    a design weight, with 95% intervals and a warning when the kept estimate leaves the
    judged sample's interval; and the kept posts' calibrated weights (``estimate.calibrate``)
    with, per stratum, the factor applied."""
    from trainset.corpus import estimate

    with_weight = [r for r in judged if r.get("weight") is not None]
    populations = {_stratum_key(r): int(r["population"]) for r in with_weight
                   if r.get("population")}
    calibrated, strata = estimate.calibrate(
        ((r["post_id"], _stratum_key(r), r["weight"], r["kept"]) for r in with_weight),
        populations)
    all_weighted = bool(judged) and len(with_weight) == len(judged)
    per_label = []
    posteriors = {r["post_id"]: label_posteriors(
        family, {k: float(v[1]) for k, v in (r["items"] or {}).items()}, priors)
        for r in judged}
    for label in [name for name, _ in codebook.family(family).labels()]:
        observations = {r["post_id"]: estimate.Observation(
            r["post_id"], _stratum_key(r) if r.get("weight") is not None else "all",
            r["keyword"] or "", p, p * (1 - p))
            for r in judged for p in (posteriors[r["post_id"]][label],)}
        kept = [observations[r["post_id"]] for r in judged if r["kept"]]
        per_label.append({"label": label, **estimate.compare(
            list(observations.values()), kept, populations if all_weighted else None)})
    empty = sorted(k for k, v in strata.items() if not v["kept"])
    return {
        "judged_posts": len(judged),
        "kept_posts": sum(1 for r in judged if r["kept"]),
        "prevalence": per_label,
        "warnings": [f"screening shifts {e['label']}: {100 * e['labeled']['value']:.1f}% "
                     f"among judged posts, {100 * e['kept']['value']:.1f}% among kept posts "
                     f"(outside the judged sample's 95% interval "
                     f"{100 * e['labeled']['low']:.1f}-{100 * e['labeled']['high']:.1f}%)"
                     for e in per_label if e["shifted"]],
        "calibrated_weights": calibrated,
        "calibration": {
            "method": "within each stratum (campaign and keyword), a kept post's design "
                      "weight is multiplied by N_h / (sum of the kept posts' design weights), "
                      "so the kept posts' weights sum to the stratum's population again "
                      "(post-stratification)",
            "assumption": "screening (and not yet labeling a sampled post) is ignorable "
                          "within a stratum: the posts screened out are like the kept ones of "
                          "their stratum. When the prevalence among kept posts moves (see "
                          "the warnings), they are not, and the calibrated weights cannot "
                          "repair it",
            "strata": strata,
            "strata_without_kept_posts": empty,
        },
    }


def datacard(family: str, run: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
             effect: Mapping[str, Any] | None = None) -> dict:
    """What a dataset carries about itself: counts per label, agreement, screening log, when
    the gold answers were given, whether EM converged, and (``effect``, from
    ``screening_effect``) how screening moved each label's prevalence and the weights."""
    fam = codebook.family(family)
    summary = run["summary"]
    positives = [0] * len(fam.slots)
    for r in rows:
        for i, v in enumerate(r["multi_hot"]):
            positives[i] += v
    weighted = [r for r in rows if r["sampling_weight"] is not None]
    effect = dict(effect or {})
    effect.pop("calibrated_weights", None)
    warnings = list(effect.get("warnings", []))
    converged = summary.get("em_converged")
    if converged is False:
        warnings.insert(0, f"the consensus model (EM) stopped at its cap of "
                           f"{summary.get('em_iterations')} iterations without converging: "
                           "posteriors and confidences may still be moving")
    return {
        "family": family,
        "quality_run": run["id"],
        "created_at": str(run["created_at"]),
        "records": len(rows),
        "posts_judged": summary["posts"],
        "slots": [s.name for s in fam.slots],
        "positives_per_slot": dict(zip([s.name for s in fam.slots], positives, strict=True)),
        "records_with_sampling_weight": len(weighted),
        "mean_confidence": (sum(r["confidence"] for r in rows) / len(rows)) if rows else None,
        "coders_per_record": dict(Counter(r["n_coders"] for r in rows)),
        "screening": summary["screening"],
        "gold_period": summary.get("gold_period") or {},
        "gold_cohort": summary.get("gold_cohort", []),
        "em": {"iterations": summary.get("em_iterations"), "converged": converged},
        "screening_effect": effect,
        "warnings": warnings,
        "rules": run["rules"],
        "agreement": summary["agreement"],
        "relabel_requested": summary["relabel_requested"],
    }


def coder_report(store: Any, start: Any, end: Any, family: str | None = None) -> dict:
    """The coder report's views for labels made in [start, end)."""
    from trainset.quality import reporting

    families = [_require_family(family).name] if family else list(codebook.FAMILY_NAMES)
    labels: list[dict[str, Any]] = []
    gold_rows: list[dict[str, Any]] = []
    option_rows: list[dict[str, Any]] = []
    consensus: dict[tuple[str, str], bool] = {}
    for name in families:
        family_labels = store.family_labels(name, start, end)
        labels += family_labels
        answers = gold_answers(family_labels, store.gold_answers(name))
        gold_rows += score(answers, "week")
        option_rows += score(answers, "all")
        run = store.latest_run(name)
        if run is not None:
            consensus.update(store.consensus_for_run(run["id"]))
    return reporting.build(labels, gold_rows, consensus, seed=f"{start}:{end}",
                           option_rows=option_rows)


def kept_rows(store: Any, family: str, run_id: int) -> tuple[list[dict[str, Any]], dict]:
    """A run's kept posts as dataset rows (``export_rows``), each with its design weight and
    the weight calibrated for the posts screened out; and the screening's effect."""
    judged = store.judged_rows(run_id)
    run = store.run_by_id(run_id)
    effect = screening_effect(family, judged,
                              ((run or {}).get("summary") or {}).get("item_priors"))
    rows = export_rows(family, [
        {**r, "calibrated_weight": effect["calibrated_weights"].get(r["post_id"])}
        for r in judged if r["kept"]])
    return rows, effect


def export_labels(store: Any, family: str, out_dir: Any) -> dict[str, Any]:
    """Write the latest quality run's kept records as CSV and Parquet, with a data card.
    Each record carries its design weight (``sampling_weight``) and the weight calibrated
    for the posts screened out (``calibrated_weight``)."""
    import json
    from pathlib import Path

    import pandas as pd

    run = latest_run_or_fail(store, family)
    rows, effect = kept_rows(store, family, run["id"])
    card = datacard(family, run, rows, effect)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    csv_frame = frame.copy()
    for column in ("study_labels", "study_soft_labels", "multi_hot", "soft_labels"):
        if column in csv_frame:
            csv_frame[column] = csv_frame[column].map(json.dumps)
    paths = {"csv": out / f"{family}_labels.csv", "parquet": out / f"{family}_labels.parquet",
             "card_json": out / "datacard.json", "card_md": out / "datacard.md"}
    csv_frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"], index=False)
    paths["card_json"].write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    paths["card_md"].write_text(datacard_markdown(card), encoding="utf-8")
    return {"records": len(rows), "paths": {k: str(v) for k, v in paths.items()},
            "card": card}


def datacard_markdown(card: Mapping[str, Any]) -> str:
    gold = card.get("gold_period") or {}
    em = card.get("em") or {}
    lines = [
        f"# Data card: {card['family']} labels",
        "",
        f"- Quality run {card['quality_run']} ({card['created_at']}); {card['records']} records "
        f"kept of {card['posts_judged']} posts judged.",
        f"- Mean confidence of kept records: {card['mean_confidence'] or 0:.3f}.",
        f"- Records with a sampling weight (1 / inclusion probability): "
        f"{card['records_with_sampling_weight']}.",
        (f"- Gold answers scored: {gold['answers']}, given from {gold['from']} to {gold['to']} "
         "(UTC days)." if gold.get("answers") else "- Gold answers scored: none."),
        f"- Consensus model (Dawid-Skene EM): {em.get('iterations')} iterations, "
        + ("converged." if em.get("converged") else "**did not converge** (stopped at its cap)."
           if em.get("converged") is False else "convergence not recorded."),
        "",
    ]
    if card.get("warnings"):
        lines += ["## Warnings", ""] + [f"- **{w}**" for w in card["warnings"]] + [""]
    lines += [
        "## Positives per label",
        "",
        "| label | records with it |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in card["positives_per_slot"].items()]
    effect = card.get("screening_effect") or {}
    if effect.get("prevalence"):
        method = effect["prevalence"][0]["method"]
        lines += ["", "## Prevalence: judged sample vs kept posts", "",
                  f"Consensus posteriors, {method}, with 95% intervals, over the "
                  f"{effect['judged_posts']} posts judged and the {effect['kept_posts']} kept. "
                  "A label is flagged when the kept estimate leaves the judged sample's "
                  "interval: screening then changed what the dataset says about it.", "",
                  "| label | judged sample | kept posts | shift | flagged |",
                  "| --- | --- | --- | --- | --- |"]
        for e in effect["prevalence"]:
            before, after = e["labeled"], e["kept"]
            shift = "n/a" if e["shift"] is None else f"{100 * e['shift']:+.1f} points"
            lines.append(
                f"| {e['label']} | {_fmt(before['value'], _ci(before), 100, '%')} | "
                f"{_fmt(after['value'], _ci(after), 100, '%')} | {shift} | "
                f"{'yes' if e['shifted'] else 'no'} |")
        cal = effect["calibration"]
        lines += ["", "## Sampling weights", "",
                  "- `sampling_weight`: the design weight, 1 / inclusion probability in the "
                  "post's newest campaign of this family.",
                  f"- `calibrated_weight`: {cal['method']}. Assumption: {cal['assumption']}.",
                  "", "| stratum (campaign:keyword) | population | judged | kept | factor |",
                  "| --- | --- | --- | --- | --- |"]
        for name, st in cal["strata"].items():
            factor = "no kept posts" if st["factor"] is None else f"{st['factor']:.4f}"
            lines.append(f"| {name} | {st['population']:g} | {st['judged']} | {st['kept']} | "
                         f"{factor} |")
        if cal["strata_without_kept_posts"]:
            lines.append("")
            lines.append("Strata without kept posts (their population is not represented): "
                         + ", ".join(cal["strata_without_kept_posts"]) + ".")
    lines += ["", "## Agreement between coders", "",
              "| question | posts with 2+ coders | Krippendorff's alpha (95% CI) | "
              "full agreement (95% CI) |", "| --- | --- | --- | --- |"]
    for question, a in card["agreement"].items():
        lines.append(f"| {question} | {a['posts_with_2_or_more']} | "
                     f"{_fmt(a['alpha'], a['alpha_ci'])} | "
                     f"{_fmt(a['percent_agreement'], a['percent_agreement_ci'], 100, '%')} |")
    lines += ["", "## Screening log", "", "| step | removed | why |", "| --- | --- | --- |"]
    lines += [f"| {s['step']} | {s['removed']} | {s['why']} |" for s in card["screening"]]
    verdicts = [v for s in card["screening"] for v in s.get("verdicts", [])]
    if verdicts:
        lines += ["", "### Gold screen per question and coder", "",
                  "| coder | question | gold answers | accuracy | Wilson lower bound | "
                  "threshold | verdict |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for v in verdicts:
            verdict = v["verdict"] + (f" ({v['note']})" if v.get("note") else "")
            lines.append(f"| {v['coder']} | {v['question']} | {v['gold_answers']} | "
                         f"{_pct(v['accuracy_pct'])} | {_pct(v['wilson_low_pct'])} | "
                         f"{v['threshold_pct']:g}% | {verdict} |")
    lines += ["", f"Re-labeling requested for {card['relabel_requested']} posts.", ""]
    return "\n".join(lines)


def _ci(e: Mapping[str, Any]) -> list[float] | None:
    return None if e.get("low") is None else [e["low"], e["high"]]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}%"


def _fmt(value: float | None, ci: Sequence[float] | None, scale: float = 1.0,
         unit: str = "") -> str:
    if value is None:
        return "n/a"
    text = f"{value * scale:.2f}{unit}"
    if ci:
        text += f" ({ci[0] * scale:.2f}-{ci[1] * scale:.2f}{unit})"
    return text
