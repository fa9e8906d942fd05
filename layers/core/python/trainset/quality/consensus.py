"""Consensus labels with calibrated confidence: a Dawid-Skene model per binary item.

Every yes/no question and every option of a multi-select question is a binary *item* of a
post (e.g. ``age: 1 to 4 years``). Each coder has, per item kind, a sensitivity (says yes when
the truth is yes) and a specificity (says no when it is no); each item kind has a prior. EM
alternates between the posterior of every post's item and the coders' rates. Gold answers are
known truths: their posteriors are fixed at 0 or 1, so they anchor the coders' rates (not the
priors: a gold set is chosen, not sampled; ``item_priors``). A post with one label gets its
confidence from that coder's estimated accuracy and the prior.

A conditional question (``age`` is asked only when ``is_child`` is yes) has a truth only where
its condition holds. Coders who wrongly said "child" still pick an age, and those picks say
nothing about how well they tell ages apart; counted as plain mistakes they would make every
coder look careless with ages and the model under-confident on real children. So each
conditional item's unit is weighted, in the M-step, by the probability that its condition
holds (its parent's posterior), and its posterior reads P(option | condition holds, answers).
Once the rates settle, the answers to a conditional question also speak to its gate: ages
given as a real coder gives them to a real child make "child" likelier than ages picked the
way that coder picks them for posts with no child (``gate_evidence``). This is one last
E-step, not part of the iteration: fed back into the weights, it would let the model explain
every stray age as a child.

Vectorised with numpy (bincount over label arrays): a million labels take a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from trainset.quality import EM_MAX_ITERATIONS

# Beta pseudo-counts for coder rates and priors: keeps a coder with a handful of labels from
# being judged perfect (or hopeless) and the model away from degenerate solutions.
RATE_PRIOR_RIGHT = 4.0
RATE_PRIOR_WRONG = 1.0
CLASS_PRIOR = 1.0
# Answers (weighted by 1 - P(condition)) to an option on posts without its condition before
# the option's picks may speak for or against the condition (``gate_evidence``).
MIN_STRAY_ANSWERS = 20.0


@dataclass(frozen=True)
class BinaryLabel:
    """One coder's answer to one binary item of one post."""

    post_id: str
    item: str  # e.g. "is_child" or "age=1 to 4 years (toddler/pre-school)"
    coder: str
    value: bool


@dataclass(frozen=True)
class ItemConsensus:
    post_id: str
    item: str
    value: bool
    posterior: float  # P(item is true)
    confidence: float  # P(value is right) = max(posterior, 1 - posterior)
    n_labels: int


@dataclass(frozen=True)
class CoderRates:
    coder: str
    item: str
    sensitivity: float
    specificity: float
    n_labels: int


@dataclass
class ConsensusResult:
    items: list[ItemConsensus]
    coders: list[CoderRates]
    iterations: int
    converged: bool = True  # False: EM stopped at its iteration cap, still moving
    # P(item) per item kind: for a conditional item, P(option | its condition holds). A post
    # nobody answered an item for (every coder said "no child") takes this for that item.
    priors: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    """When a conditional item kind has a truth: its parent item (``is_child``) holds, or is
    absent (``equals=False``), or any of several parent items holds (``any_of``)."""

    parents: tuple[str, ...]
    equals: bool = True


def dawid_skene(
    labels: Iterable[BinaryLabel],
    gold: Mapping[tuple[str, str], bool] | None = None,
    max_iterations: int = EM_MAX_ITERATIONS,
    tolerance: float = 1e-6,
    conditions: Mapping[str, Condition] | None = None,
) -> ConsensusResult:
    """Fit the model to ``labels``; ``gold`` maps (post_id, item) to its known value;
    ``conditions`` maps a conditional item kind (``age=...``) to when it has a truth."""
    posts, items, coders = {}, {}, {}
    post_idx, kind_idx, coder_idx, values = [], [], [], []
    unit_of: dict[tuple[str, str], int] = {}
    for label in labels:
        unit = unit_of.setdefault((label.post_id, label.item), len(unit_of))
        post_idx.append(unit)
        kind_idx.append(items.setdefault(label.item, len(items)))
        coder_idx.append(coders.setdefault(label.coder, len(coders)))
        values.append(label.value)
        posts.setdefault(label.post_id, None)
    arrays = encode(np.array(post_idx, dtype=np.int64), np.array(kind_idx, dtype=np.int64),
                    np.array(coder_idx, dtype=np.int64), np.array(values, dtype=bool))
    unit_keys = list(unit_of)
    gold_mask = np.zeros(len(unit_keys), dtype=bool)
    gold_value = np.zeros(len(unit_keys), dtype=float)
    for key, value in (gold or {}).items():
        unit = unit_of.get(key)
        if unit is not None:
            gold_mask[unit] = True
            gold_value[unit] = float(value)
    parents = parent_units(unit_keys, unit_of, conditions or {})
    options = np.array(["=" in name for name in items], dtype=bool)
    posterior, sens, spec, counts, iterations = fit(arrays, gold_mask, gold_value,
                                                    max_iterations, tolerance, parents, options)
    asked = parents.asked(posterior) if len(unit_keys) else posterior
    prior = item_priors(arrays, posterior, asked, gold_mask)
    priors = {name: float(prior[k]) for name, k in items.items()}
    n_per_unit = np.bincount(arrays.unit, minlength=len(unit_keys))
    result_items = [
        ItemConsensus(post, item, bool(p >= 0.5), float(p), float(max(p, 1 - p)), int(n))
        for (post, item), p, n in zip(unit_keys, posterior, n_per_unit, strict=True)
    ]
    item_names = list(items)
    coder_names = list(coders)
    rates = []
    n_kinds = len(item_names)
    for flat in np.flatnonzero(counts):
        coder, kind = divmod(int(flat), n_kinds)
        rates.append(CoderRates(coder_names[coder], item_names[kind], float(sens[flat]),
                                float(spec[flat]), int(counts[flat])))
    return ConsensusResult(result_items, rates, iterations,
                           converged=iterations < max_iterations, priors=priors)


@dataclass(frozen=True)
class ParentUnits:
    """For each conditional unit, the units whose posteriors say whether it has a truth."""

    child: np.ndarray  # conditional unit index, once per parent unit
    parent: np.ndarray  # the parent unit
    negate: np.ndarray  # bool per row: the condition is the parent being false
    single: np.ndarray  # bool per row: the condition is this one yes/no parent

    def asked(self, posterior: np.ndarray) -> np.ndarray:
        """P(condition holds) per unit (1 for units without a condition): the likeliest of
        its parents, as a coder is asked when any one of them is picked."""
        weight = np.ones(len(posterior))
        if len(self.child):
            p = posterior[self.parent]
            p = np.where(self.negate, 1.0 - p, p)
            held = np.zeros(len(posterior))
            np.maximum.at(held, self.child, p)
            weight[self.child] = held[self.child]
        return weight


def parent_units(unit_keys: list[tuple[str, str]], unit_of: Mapping[tuple[str, str], int],
                 conditions: Mapping[str, Condition]) -> ParentUnits:
    """Link each conditional unit to its post's parent units. A parent nobody answered (no
    unit) is left out; a unit none of whose parents were answered is treated as asked."""
    child, parent, negate, single = [], [], [], []
    for unit, (post_id, item) in enumerate(unit_keys):
        condition = conditions.get(item)
        if condition is None:
            continue
        for name in condition.parents:
            found = unit_of.get((post_id, name))
            if found is not None:
                child.append(unit)
                parent.append(found)
                negate.append(not condition.equals)
                single.append(len(condition.parents) == 1)
    return ParentUnits(np.array(child, dtype=np.int64), np.array(parent, dtype=np.int64),
                       np.array(negate, dtype=bool), np.array(single, dtype=bool))


NO_PARENTS = ParentUnits(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
                         np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))


@dataclass(frozen=True)
class Encoded:
    unit: np.ndarray  # label -> unit (post x item)
    kind: np.ndarray  # label -> item kind
    coder: np.ndarray  # label -> coder
    value: np.ndarray  # label -> bool
    unit_kind: np.ndarray  # unit -> item kind
    n_units: int
    n_kinds: int
    n_coders: int

    @property
    def cell(self) -> np.ndarray:
        """label -> (coder, kind) cell: coder rates are per coder and item kind."""
        return self.coder * self.n_kinds + self.kind


def encode(unit: np.ndarray, kind: np.ndarray, coder: np.ndarray, value: np.ndarray) -> Encoded:
    n_units = int(unit.max()) + 1 if len(unit) else 0
    unit_kind = np.zeros(n_units, dtype=np.int64)
    unit_kind[unit] = kind
    return Encoded(unit, kind, coder, value, unit_kind, n_units,
                   int(kind.max()) + 1 if len(kind) else 0,
                   int(coder.max()) + 1 if len(coder) else 0)


def fit(
    data: Encoded,
    gold_mask: np.ndarray,
    gold_value: np.ndarray,
    max_iterations: int = EM_MAX_ITERATIONS,
    tolerance: float = 1e-6,
    parents: ParentUnits = NO_PARENTS,
    pooled: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """EM on encoded labels: (posterior per unit, sensitivity and specificity per
    coder x kind cell, labels per cell, iterations). ``parents``: conditional units count in
    the M-step only as much as their condition is likely to hold. ``pooled``: per item kind,
    whether coders' rates shrink toward all coders' rate on it (options of a multi-select
    question) rather than toward the fixed prior (yes/no questions)."""
    if data.n_units == 0:
        empty = np.zeros(0)
        return empty, empty, empty, np.zeros(0, dtype=np.int64), 0
    cell = data.cell
    n_cells = data.n_coders * data.n_kinds
    counts = np.bincount(cell, minlength=n_cells)
    # Split once by answer: every sum below is then one weighted bincount.
    said_yes = data.value
    unit_yes, cell_yes = data.unit[said_yes], cell[said_yes]
    unit_no, cell_no = data.unit[~said_yes], cell[~said_yes]
    # Start from the (soft) majority vote.
    posterior = majority_vote(data)
    posterior = np.where(gold_mask, gold_value, posterior)
    iterations = 0
    sens = spec = np.zeros(n_cells)
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - read after the loop
        asked = parents.asked(posterior)
        w_yes, w_no = asked[unit_yes], asked[unit_no]
        t_yes = posterior[unit_yes] * w_yes
        t_no = posterior[unit_no] * w_no
        right_pos = np.bincount(cell_yes, weights=t_yes, minlength=n_cells)
        all_pos = right_pos + np.bincount(cell_no, weights=t_no, minlength=n_cells)
        weight_yes = np.bincount(cell_yes, weights=w_yes, minlength=n_cells)
        weight_all = weight_yes + np.bincount(cell_no, weights=w_no, minlength=n_cells)
        right_neg = (weight_all - weight_yes) - (all_pos - right_pos)
        all_neg = weight_all - all_pos
        sens = shrunk_rates(right_pos, all_pos, data, pooled)
        spec = shrunk_rates(right_neg, all_neg, data, pooled)
        prior = item_priors(data, posterior, asked, gold_mask)
        # E-step in log-odds: prior odds plus each label's likelihood ratio.
        yes_weight = np.log(sens) - np.log(1 - spec)
        no_weight = np.log(1 - sens) - np.log(spec)
        evidence = (np.bincount(unit_yes, weights=yes_weight[cell_yes], minlength=data.n_units)
                    + np.bincount(unit_no, weights=no_weight[cell_no], minlength=data.n_units))
        log_odds = np.log(prior / (1 - prior))[data.unit_kind] + evidence
        updated = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -50, 50)))
        updated = np.where(gold_mask, gold_value, updated)
        change = float(np.max(np.abs(updated - posterior)))
        posterior = updated
        if change < tolerance:
            break
    if parents.single.any():
        gate = gate_evidence(data, parents, posterior, prior, sens, spec)
        gated = 1.0 / (1.0 + np.exp(-np.clip(log_odds + gate, -50, 50)))
        posterior = np.where(gold_mask, gold_value, gated)
    return posterior, sens, spec, counts, iterations


def item_priors(data: Encoded, posterior: np.ndarray, asked: np.ndarray,
                gold_mask: np.ndarray) -> np.ndarray:
    """P(item) per item kind over the posts being judged. Gold posts anchor the coders'
    rates but are left out of the priors: a gold set is chosen, not sampled (the study's had
    as many positive as negative posts), and counted in it would pull every judged post
    toward its mix. A kind with gold posts only takes the gold posts' share."""
    judged = np.bincount(data.unit_kind, weights=(~gold_mask).astype(float),
                         minlength=data.n_kinds)
    use = np.where(judged[data.unit_kind] > 0, ~gold_mask, True) * asked
    positive = np.bincount(data.unit_kind, weights=posterior * use, minlength=data.n_kinds)
    weight = np.bincount(data.unit_kind, weights=use, minlength=data.n_kinds)
    return (positive + CLASS_PRIOR) / (weight + 2 * CLASS_PRIOR)


def gate_evidence(data: Encoded, parents: ParentUnits, posterior: np.ndarray,
                  prior: np.ndarray, sens: np.ndarray, spec: np.ndarray) -> np.ndarray:
    """Per gate unit, the log-likelihood ratio of its conditional options' answers under
    "the condition holds" (each option true at its prior, answered at the coder's rates)
    against "it does not" (each pick at the rate that coder picks it on posts without it,
    weighted by 1 - P(condition), shrunk toward all coders' rate). An option speaks only once
    the answers on posts without the condition amount to ``MIN_STRAY_ANSWERS``: with fewer,
    neither its stray-pick rate nor its prior is known well enough to tell the two apart."""
    said_yes = data.value
    asked = parents.asked(posterior)
    cell = data.cell
    n_cells = data.n_coders * data.n_kinds
    off = 1.0 - asked[data.unit]
    picks = np.bincount(cell[said_yes], weights=off[said_yes], minlength=n_cells)
    total = np.bincount(cell, weights=off, minlength=n_cells)
    by_kind_picks = picks.reshape(data.n_coders, data.n_kinds).sum(axis=0)
    by_kind_total = total.reshape(data.n_coders, data.n_kinds).sum(axis=0)
    strength = RATE_PRIOR_RIGHT + RATE_PRIOR_WRONG
    # With few posts that lack the condition, stray picks are assumed to look like picks in
    # general (each option at its overall rate): then the ages say nothing about the gate.
    overall = ((np.bincount(data.unit_kind[data.unit[said_yes]], minlength=data.n_kinds) + 1.0)
               / (np.bincount(data.unit_kind[data.unit], minlength=data.n_kinds) + 2.0))
    pooled = (by_kind_picks + overall * strength) / (by_kind_total + strength)
    noise = np.clip((picks + np.tile(pooled, data.n_coders) * strength) / (total + strength),
                    1e-4, 1 - 1e-4)

    def log_likelihood(yes_rate: np.ndarray) -> np.ndarray:
        per_label = np.where(said_yes, np.log(yes_rate[cell]), np.log(1 - yes_rate[cell]))
        return np.bincount(data.unit, weights=per_label, minlength=data.n_units)

    p = prior[data.unit_kind]
    held = np.logaddexp(np.log(p) + log_likelihood(sens), np.log(1 - p) + log_likelihood(1 - spec))
    known = (by_kind_total >= MIN_STRAY_ANSWERS)[data.unit_kind]
    ratio = np.where(known, held - log_likelihood(noise), 0.0)[parents.child[parents.single]]
    out = np.zeros(data.n_units)
    np.add.at(out, parents.parent[parents.single],
              np.where(parents.negate[parents.single], -ratio, ratio))
    return out


def shrunk_rates(right: np.ndarray, total: np.ndarray, data: Encoded,
                 pooled: np.ndarray | None = None) -> np.ndarray:
    """Each coder's rate per item kind with ``RATE_PRIOR_RIGHT + RATE_PRIOR_WRONG``
    pseudo-labels: at the fixed prior rate (80%), or, for the kinds ``pooled`` marks, at the
    rate of all coders on that kind. An option of a multi-select question is rarely picked
    wrongly (a specificity near 98%): the fixed prior would make every coder with a few dozen
    labels look careless with it and the consensus under-confident about who picked it."""
    strength = RATE_PRIOR_RIGHT + RATE_PRIOR_WRONG
    prior_mean = np.full(data.n_kinds, RATE_PRIOR_RIGHT / strength)
    if pooled is not None and pooled.any():
        by_kind_right = right.reshape(data.n_coders, data.n_kinds).sum(axis=0)
        by_kind_total = total.reshape(data.n_coders, data.n_kinds).sum(axis=0)
        across = (by_kind_right + RATE_PRIOR_RIGHT) / (by_kind_total + strength)
        prior_mean = np.where(pooled, across, prior_mean)
    rate = (right + np.tile(prior_mean, data.n_coders) * strength) / (total + strength)
    return np.clip(rate, 1e-4, 1 - 1e-4)


def majority_vote(data: Encoded) -> np.ndarray:
    """Share of yes labels per unit (ties stay at 0.5): the baseline consensus."""
    votes = np.bincount(data.unit, weights=data.value.astype(float), minlength=data.n_units)
    totals = np.bincount(data.unit, minlength=data.n_units)
    return votes / np.maximum(totals, 1)
