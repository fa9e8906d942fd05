"""Sampling campaigns from the corpus, and estimating prevalence from their labels."""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.corpus import estimate
from trainset.corpus.filters import Candidate, FilterSettings, FilterStep, apply_filters
from trainset.corpus.sampling import (
    STRATEGIES,
    SampledPost,
    SamplingError,
    StratumPlan,
    allocate,
    draw,
    load_yields_csv,
    stratum_of,
)
from trainset.errors import Conflict, InvalidInput, NotFound


@dataclass
class SampleRequest:
    family: str
    budget: int
    strategy: str
    seed: int
    labels_per_post: int = 1
    name: str | None = None
    filters: FilterSettings = field(default_factory=FilterSettings)
    yields_file: Path | None = None
    target: str | None = None  # the label whose pilot yields drive neyman (default: presence)
    yields: Mapping[str, float] | None = None  # pilot yields given inline (keyword -> 0..1)
    dry_run: bool = False  # plan only: the allocation table, nothing drawn or stored


@dataclass
class SampleResult:
    campaign_id: int | None  # None for a dry run
    name: str
    plan: list[StratumPlan]
    steps: list[FilterStep]
    frame_size: int
    sampled: list[SampledPost]
    yields_source: str

    @property
    def dry_run(self) -> bool:
        return self.campaign_id is None

    def as_dict(self) -> dict[str, Any]:
        """What the API answers: the allocation table, the filters and the frame."""
        return {
            "dry_run": self.dry_run, "campaign_id": self.campaign_id, "name": self.name,
            "frame_size": self.frame_size, "yields_source": self.yields_source,
            "planned": sum(s.sampled for s in self.plan), "sampled": len(self.sampled),
            "filters": [{"name": s.name, "removed": s.removed, "note": s.note}
                        for s in self.steps],
            "allocation": self.allocation_rows(),
        }

    def allocation_rows(self) -> list[dict[str, Any]]:
        return [
            {"keyword": s.stratum, "population": s.population, "sampled": s.sampled,
             "inclusion_prob": round(s.inclusion_prob, 6),
             "pilot_yield": None if s.pilot_yield is None else round(s.pilot_yield, 4),
             "expected_positives": None if s.expected_positives is None
             else round(s.expected_positives, 1)}
            for s in self.plan
        ]


def pilot_yields(store: Any, family: str, target: str | None = None) -> dict[str, float]:
    """Share of labeled posts per keyword with the target label (by default: the family's
    subject is present, e.g. a child is mentioned)."""
    fam = codebook.family(family)
    if target is None:
        value_of = lambda answers: int(fam.presence.holds(answers))  # noqa: E731
    else:
        labels = dict(fam.labels())
        if target not in labels:
            raise InvalidInput(f"unknown label {target!r} for family {family}; use one of: "
                               f"{', '.join(labels)}")
        value_of = labels[target]
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for keyword, answers in store.labeled_answers_by_keyword(family):
        counts = hits[stratum_of(keyword)]
        counts[0] += value_of(answers)
        counts[1] += 1
    return {k: pos / n for k, (pos, n) in hits.items() if n}


def sample(store: Any, request: SampleRequest) -> SampleResult:
    """Filter the family's posts, allocate the budget over keywords, draw with the seed, and
    store the campaign with every sampled post's inclusion probability."""
    try:
        codebook.family(request.family)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if request.strategy not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {request.strategy!r}; use one of: "
                           f"{', '.join(STRATEGIES)}")
    if not 1 <= request.labels_per_post <= 20:
        raise InvalidInput("labels per post must be between 1 and 20")
    name = request.name or (f"{request.family}-{request.strategy}-seed{request.seed}-"
                            f"{datetime.now(UTC):%Y%m%d%H%M%S}")
    if store.campaign_name_taken(name):
        raise Conflict(f"a campaign named {name} already exists; choose another --name")
    counts = store.family_counts(request.family)
    candidates = [Candidate(*row) for row in store.family_candidates(request.family)]
    kept, steps = apply_filters(candidates, request.filters)
    steps.insert(0, FilterStep("gold posts and posts already in a campaign of this family",
                               counts["gold"] + counts["in_campaigns"]))
    frame: dict[str, list[str]] = defaultdict(list)
    for c in kept:
        frame[stratum_of(c.keyword)].append(c.id)
    populations = {k: len(v) for k, v in frame.items()}
    if request.yields_file is not None or request.yields is not None:
        if request.target is not None:
            raise InvalidInput("pilot yields given with the request are the subject's yields "
                               "only; a target label needs pilot labels in the database")
        if request.yields is not None:
            yields, source = dict(request.yields), "pilot yields given with the request"
        else:
            yields = load_yields_or_fail(request.yields_file)
            source = str(request.yields_file)
    else:
        yields = pilot_yields(store, request.family, request.target)
        source = f"labels in the database ({request.target or 'subject present'})"
    try:
        plan = allocate(populations, request.budget, request.strategy, yields)
        if request.dry_run:
            return SampleResult(None, name, plan, steps, len(kept), [], source)
        sampled = draw(frame, plan, request.seed)
    except SamplingError as exc:
        raise InvalidInput(str(exc)) from None
    frame_ids = sorted(c.id for c in kept)
    snapshot = {
        **counts,
        "eligible": len(kept),
        "frame_sha256": hashlib.sha256("\n".join(frame_ids).encode()).hexdigest(),
        "keyword_populations": populations,
        "drawn_at": datetime.now(UTC).isoformat(),
    }
    campaign_id = store.create_sampled_campaign(
        name=name, family=request.family, labels_per_post=request.labels_per_post,
        strategy=request.strategy,
        params={"yields_source": source if yields else None, "target": request.target,
                "allocation": {s.stratum: s.sampled for s in plan}},
        seed=request.seed, budget=len(sampled), snapshot=snapshot,
        filters={"settings": request.filters.as_dict(),
                 "removed": {s.name: s.removed for s in steps}},
        strata=plan, sampled=sampled,
    )
    return SampleResult(campaign_id, name, plan, steps, len(kept), sampled, source)


def load_yields_or_fail(path: Path) -> dict[str, float]:
    try:
        return load_yields_csv(path)
    except SamplingError as exc:
        raise InvalidInput(str(exc)) from None


@dataclass
class LabelEstimate:
    """One label's prevalence: from the consensus posteriors (the figure to use), and from
    raw votes (each post's share of coders who gave the label) to show what noise does."""

    label: str
    weighted: estimate.Estimate
    unweighted: estimate.Estimate
    per_keyword: dict[str, estimate.Estimate]
    raw_weighted: estimate.Estimate
    raw_unweighted: estimate.Estimate


def estimate_prevalence(store: Any, quality_store: Any, family: str,
                        campaign_name: str | None = None, *,
                        bootstrap: int = estimate.BOOTSTRAP_REFITS, seed: int = 0,
                        progress: Callable[[int, int], None] | None = None,
                        seconds: float | None = None) -> dict:
    """Design-weighted and unweighted prevalence per label, overall and per keyword, for a
    campaign (the family's newest when none is named), from each post's gold-anchored
    consensus posterior over all the family's screened labels, with intervals that carry the
    labeling uncertainty and (with ``bootstrap`` refits of the model to posts resampled
    within strata) the model's own; raw-vote figures beside them. ``seconds``: a time budget
    for the refits (``model_replicates``); ``refits_run`` says how many fitted in it."""
    from trainset.services.quality import ScreeningRules, fit_consensus, label_posteriors

    try:
        fam = codebook.family(family)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    campaign = store.find_campaign(family, campaign_name)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_name or ''} for family {family}; sample one first")
    populations = store.campaign_strata(campaign["id"])
    keyword_populations = store.campaign_frame_keywords(campaign["id"])
    by_post: dict[str, dict[str, Any]] = {}
    for post_id, stratum, keyword, answers in store.campaign_labels(campaign["id"]):
        entry = by_post.setdefault(post_id, {"stratum": stratum or "all",
                                             "keyword": stratum_of(keyword), "answers": []})
        entry["answers"].append(answers)
    # The screening rules of the family's latest quality run, so the estimate describes the
    # same consensus the exported dataset does (the defaults before any run).
    run = quality_store.latest_run(family) if by_post else None
    rules = ScreeningRules(**run["rules"]) if run else None
    fit = fit_consensus(quality_store, family, rules) if by_post else None
    posteriors = fit.posteriors() if fit else {}
    priors = fit.result.priors if fit else {}
    consensus = {post_id: label_posteriors(family, posteriors[post_id], priors)
                 for post_id in by_post if post_id in posteriors}
    replicates = (model_replicates(fit, family, {p: by_post[p]["stratum"] for p in consensus},
                                   populations, bootstrap, seed, progress, seconds)
                  if fit and consensus and bootstrap > 1 else {})
    results = []
    for label, value_of in fam.labels():
        raw = [estimate.Observation(post_id, e["stratum"], e["keyword"],
                                    sum(value_of(a) for a in e["answers"]) / len(e["answers"]))
               for post_id, e in sorted(by_post.items())]
        judged = [estimate.Observation(post_id, e["stratum"], e["keyword"], p,
                                       p * (1 - p))
                  for post_id, e in sorted(by_post.items())
                  if post_id in consensus for p in (consensus[post_id][label],)]
        extra = estimate.model_variance(judged, populations, replicates.get(label, []))
        results.append(LabelEstimate(
            label,
            estimate.weighted(judged, populations, extra),
            estimate.unweighted(judged),
            estimate.per_keyword(judged, keyword_populations or populations),
            estimate.weighted(raw, populations),
            estimate.unweighted(raw),
        ))
    return {"campaign": campaign, "labeled_posts": len(by_post),
            "judged_posts": len(consensus), "sampled_posts": campaign["budget"],
            "em_converged": fit.result.converged if fit else None,
            "refits_run": max(map(len, replicates.values()), default=0),
            "labels": results}


def model_replicates(fit: Any, family: str, strata: Mapping[str, str],
                     populations: Mapping[str, int], refits: int, seed: int,
                     progress: Callable[[int, int], None] | None = None,
                     seconds: float | None = None) -> dict[str, list[float]]:
    """Each label's design-weighted estimate over ``refits`` bootstrap samples: the judged
    posts resampled with replacement within their strata and the consensus refitted to
    each, so the figures vary as much as a refitted model makes them vary. ``seconds``: stop
    starting refits once this long has passed (after two at least: a spread needs two),
    so a request answers in time; each label's list says how many ran."""
    from trainset.services.quality import label_posteriors

    deadline = None if seconds is None else time.monotonic() + seconds
    rng = random.Random(seed)
    members: dict[str, list[str]] = defaultdict(list)
    for post_id, stratum in sorted(strata.items()):
        members[stratum].append(post_id)
    out: dict[str, list[float]] = defaultdict(list)
    for done in range(refits):
        if deadline is not None and done >= 2 and time.monotonic() > deadline:
            break
        drawn = [rng.choice(ids) for ids in members.values() for _ in ids]
        posteriors, priors = fit.refit(drawn)
        values = [label_posteriors(family, p, priors) for p in posteriors]
        for label, _ in codebook.family(family).labels():
            observed = [estimate.Observation(str(n), strata[post_id], "", v[label])
                        for n, (post_id, v) in enumerate(zip(drawn, values, strict=True))]
            value = estimate.weighted(observed, populations).value
            if value is not None:
                out[label].append(value)
        if progress:
            progress(done + 1, refits)
    return dict(out)


def campaign_progress(store: Any, family: str | None = None) -> list[dict[str, Any]]:
    """Every campaign (of ``family``, or all), newest first, with its design and its progress:
    task slots open, leased and done, posts with every slot done; and the same per keyword
    (the post's keyword; for a stratified campaign that is its stratum), beside the keyword's
    population in the campaign's frame when the campaign was sampled by design."""
    campaigns = store.campaign_overview(family)
    keywords: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in store.campaign_keyword_progress([c["id"] for c in campaigns]):
        keywords[row.pop("campaign_id")].append(row)
    out = []
    for c in campaigns:
        created = c["created_at"]
        out.append({**c, "created_at": created.isoformat() if created else None,
                    "keywords": keywords.get(c["id"], [])})
    return out


def campaign_or_fail(store: Any, campaign_id: int) -> dict[str, Any]:
    campaign = store.campaign_by_id(campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    return campaign


def yields_from_rows(rows: Any) -> dict[str, float]:
    """Pilot yields given inline, as a yields file's rows: ``[{keyword, percent_true}]``
    (0-100); a keyword given twice is refused."""
    yields: dict[str, float] = {}
    repeated = []
    for row in rows:
        keyword = str(row["keyword"]).strip()
        if keyword in yields:
            repeated.append(keyword)
        yields[keyword] = float(row["percent_true"]) / 100.0
    if repeated:
        raise InvalidInput("each keyword's pilot yield may be given once",
                           [{"field": "pilot_yields", "message": f"repeated: {k}"}
                            for k in sorted(set(repeated))])
    return yields


def campaign_estimate_document(store: Any, quality_store: Any, campaign_id: int,
                               refits: int = estimate.BOOTSTRAP_REFITS,
                               seconds: float | None = None) -> dict[str, Any]:
    """``estimate_prevalence`` for one campaign, as JSON: per label the consensus figures
    (design-weighted and unweighted, 95% intervals), the raw-vote ones beside them, and per
    keyword; ``refits`` asked for and run (``seconds``: their time budget)."""
    campaign = campaign_or_fail(store, campaign_id)
    result = estimate_prevalence(store, quality_store, campaign["family"], campaign["name"],
                                 bootstrap=refits, seconds=seconds)
    found = dict(result["campaign"])
    if found.get("created_at") is not None:
        found["created_at"] = found["created_at"].isoformat()
    return {
        "campaign": found,
        "labeled_posts": result["labeled_posts"],
        "judged_posts": result["judged_posts"],
        "sampled_posts": result["sampled_posts"],
        "em_converged": result["em_converged"],
        "refits": {"asked": refits, "run": result["refits_run"]},
        "labels": [{
            "label": e.label,
            "weighted": e.weighted.as_dict(),
            "unweighted": e.unweighted.as_dict(),
            "raw_weighted": e.raw_weighted.as_dict(),
            "raw_unweighted": e.raw_unweighted.as_dict(),
            "per_keyword": [{"keyword": k, **v.as_dict()} for k, v in e.per_keyword.items()],
        } for e in result["labels"]],
    }
