"""The codebook: label families, their questions, options, rules and encodings.

This module is the single source of truth for what a label may contain. The API serves it
(``GET /codebook``), the page renders from it, validation and the multi-hot encodings used by
exports read it. Option strings are byte-exact copies of the strings the study's labeled data
carries (including its spellings), so labels stay comparable with that data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FieldKind = Literal["yes_no", "multi"]


@dataclass(frozen=True)
class Option:
    """One answer a coder can pick for a multi-select question."""

    value: str
    help: str
    exclusive: bool = False  # cannot be combined with other options of the same question
    unsure: bool = False  # the coder could not tell (watched in coder reports)


@dataclass(frozen=True)
class ShowWhen:
    """A question is asked only when another field's answer matches."""

    field: str
    equals: bool | None = None  # for a yes/no field: asked when it has this value
    any_of: tuple[str, ...] = ()  # for a multi-select field: asked when one of these is picked

    def holds(self, answers: Mapping[str, Any]) -> bool:
        value = answers.get(self.field)
        if self.equals is not None:
            return value is self.equals
        return isinstance(value, list) and any(v in self.any_of for v in value)

    def describe(self) -> str:
        if self.equals is not None:
            return f"{self.field} is {'yes' if self.equals else 'no'}"
        return f"{self.field} includes one of: " + ", ".join(self.any_of)


@dataclass(frozen=True)
class Question:
    """One field of a label family."""

    name: str
    kind: FieldKind
    prompt: str
    help: str
    options: tuple[Option, ...] = ()
    show_when: ShowWhen | None = None

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)


@dataclass(frozen=True)
class Slot:
    """One position of a family's multi-hot vector: on when any listed (field, value) is present."""

    name: str
    when: tuple[tuple[str, str | bool], ...]


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    help: str
    questions: tuple[Question, ...]
    slots: tuple[Slot, ...] = field(default=())
    # The study's own multi-hot vector (what its models were trained on), byte for byte.
    study_slots: tuple[Slot, ...] = field(default=())
    # The family's gate question as one feature: is there a child / a health mention / a place.
    gate: Slot | None = None

    @property
    def presence(self) -> ShowWhen:
        """What makes a post relevant to the family (a child, a health mention, a location):
        the condition under which its detail questions are asked. Pilot yields use it."""
        for q in self.questions:
            if q.show_when is not None:
                return q.show_when
        raise ValueError(f"family {self.name} has no conditional question")

    def labels(self) -> list[tuple[str, Any]]:
        """(name, value function) for every label an estimate reports: yes/no questions, then
        each slot of the multi-hot encoding."""
        out: list[tuple[str, Any]] = []
        for q in self.questions:
            if q.kind == "yes_no":
                out.append((q.name, lambda a, n=q.name: int(a.get(n) is True)))
        for i, slot in enumerate(self.slots):
            out.append((slot.name, lambda a, i=i: encode(self.name, a)[i]))
        return out

    def question(self, name: str) -> Question:
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(name)


@dataclass(frozen=True)
class FieldError:
    """A problem with one field of a submitted label; ``field`` is empty for the whole label."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


INDOOR = "Indoor location"
OUTDOOR = "Outdoor location"
NO_LOCATION_UNSURE = "No location/unsure"

AGE_BABY = "0 to less than 1 year (baby/infant)"
AGE_TODDLER = "1 to 4 years (toddler/pre-school)"
AGE_ELEMENTARY = "5 to 10 years (elementary school)"
AGE_MIDDLE = "11 to 13 years (middle school)"
AGE_HIGH = "14 to 17 years (high school)"
AGE_SCHOOL = "School age (no specific school type)"
AGE_GENERAL = "No specific age (children general)"
AGE_UNSURE = "Unsure"

PLACE = Family(
    name="place",
    title="Place",
    help="Where the post happens: indoors or outdoors, and which kinds of places children use.",
    questions=(
        Question(
            name="location_cat",
            kind="multi",
            prompt="Can you identify a location from the text, hashtags, and/or image? "
            "(can select multiple)",
            help="Use the author's name, the text, the hashtags and the picture. Pick every "
            "setting that applies; make an educated guess where you reasonably can (a car's "
            "inside counts as indoors, a shop or clinic is indoors unless the post says "
            "otherwise).",
            options=(
                Option(INDOOR, "The post describes or shows a place inside a building or vehicle."),
                Option(OUTDOOR, "The post describes or shows a place in the open air."),
                Option(
                    NO_LOCATION_UNSURE,
                    "Nothing in the post tells where it happens, or you cannot tell.",
                    exclusive=True,
                    unsure=True,
                ),
            ),
        ),
        Question(
            name="location",
            kind="multi",
            prompt="What type of location does the tweet mention (can select multiple)?",
            help="Asked only when you picked indoors or outdoors. Pick every kind of place the "
            "text, hashtags or picture shows.",
            options=(
                Option(
                    "Childcare/daycare",
                    "A place whose business is looking after children, including care in a "
                    "carer's home and nannies.",
                ),
                Option("A home", "Somewhere people live: a house, an apartment, a condo."),
                Option(
                    "Neigborhood (but not on home property, etc)",
                    "Near where someone lives but off the home's grounds: a street, a sidewalk, "
                    "a corner shop.",
                ),
                Option(
                    "Park/playground/child sports center",
                    "A place set aside for play or sport, such as a park, a playground or a "
                    "court. A sidewalk used for play does not count.",
                ),
                Option(
                    "School",
                    "School grounds, public or private. A school trip elsewhere does not count.",
                ),
                Option("Other", "A place that fits none of the kinds above."),
                Option(
                    "Unsure",
                    "A place is mentioned but there is too little to guess what kind it is.",
                    unsure=True,
                ),
                Option(
                    "No location",
                    "On reflection the post names no place after all.",
                    exclusive=True,
                ),
            ),
            show_when=ShowWhen("location_cat", any_of=(INDOOR, OUTDOOR)),
        ),
    ),
    slots=(
        Slot("indoor", (("location_cat", INDOOR),)),
        Slot("outdoor", (("location_cat", OUTDOOR),)),
        Slot(
            "no_location_unsure",
            (("location_cat", NO_LOCATION_UNSURE), ("location", "No location")),
        ),
        Slot("childcare", (("location", "Childcare/daycare"),)),
        Slot("home", (("location", "A home"),)),
        Slot("neighborhood", (("location", "Neigborhood (but not on home property, etc)"),)),
        Slot("park", (("location", "Park/playground/child sports center"),)),
        Slot("school", (("location", "School"),)),
        Slot("other", (("location", "Other"),)),
        Slot("location_unsure", (("location", "Unsure"),)),
    ),
    study_slots=(
        Slot("daycare", (("location", "Childcare/daycare"),)),
        Slot("park", (("location", "Park/playground/child sports center"),)),
        Slot("home", (("location", "A home"),)),
        Slot("school", (("location", "School"),)),
        Slot("neighborhood", (("location", "Neigborhood (but not on home property, etc)"),)),
        Slot("other_or_unsure", (("location", "Other"), ("location", "Unsure"))),
        Slot("no_location", (("location", "No location"),)),
        Slot("indoor", (("location_cat", INDOOR),)),
        Slot("outdoor", (("location_cat", OUTDOOR),)),
        Slot("no_location_unsure", (("location_cat", NO_LOCATION_UNSURE),)),
    ),
    gate=Slot("has_location", (("location_cat", INDOOR), ("location_cat", OUTDOOR))),
)

CHILD = Family(
    name="child",
    title="Child",
    help="Whether the post is about a child (anyone born and under 18), and how old.",
    questions=(
        Question(
            name="is_child",
            kind="yes_no",
            prompt="Does this tweet mention or depict a child or children (yes/no)?",
            help="Yes only when the text or picture directly mentions or shows a real child. "
            "Schools, toys or a children's hospital alone are not enough; nor are adults "
            "remembering their own childhood, pregnancies, or children in memes and fiction.",
        ),
        Question(
            name="age",
            kind="multi",
            prompt="What age group does the child(ren) belong to (can select multiple)?",
            help="Asked only when a child is present. If there is a picture, estimate the ages "
            "you see rather than choosing a general answer.",
            options=(
                Option(AGE_BABY, "A baby younger than one year."),
                Option(AGE_TODDLER, "A toddler or pre-schooler, one to four years old."),
                Option(AGE_ELEMENTARY, "An elementary-school child, five to ten years old."),
                Option(AGE_MIDDLE, "A middle-schooler, eleven to thirteen years old."),
                Option(AGE_HIGH, "A high-schooler, fourteen to seventeen years old."),
                Option(
                    AGE_SCHOOL,
                    "School children are mentioned, but nothing shows which school level.",
                ),
                Option(
                    AGE_GENERAL,
                    "Children in general are mentioned, with no hint of their age.",
                ),
                Option(AGE_UNSURE, "Too little to go on for any guess. Use rarely.",
                       unsure=True),
            ),
            show_when=ShowWhen("is_child", equals=True),
        ),
    ),
    slots=(
        Slot("baby", (("age", AGE_BABY),)),
        Slot("toddler", (("age", AGE_TODDLER),)),
        Slot("elementary", (("age", AGE_ELEMENTARY),)),
        Slot("middle", (("age", AGE_MIDDLE),)),
        Slot("high", (("age", AGE_HIGH),)),
        Slot(
            "child_age_unspecified",
            (("age", AGE_SCHOOL), ("age", AGE_GENERAL), ("age", AGE_UNSURE)),
        ),
    ),
    study_slots=(
        Slot("baby", (("age", AGE_BABY),)),
        Slot("toddler", (("age", AGE_TODDLER),)),
        Slot("elementary", (("age", AGE_ELEMENTARY),)),
        Slot("middle", (("age", AGE_MIDDLE),)),
        Slot("high", (("age", AGE_HIGH),)),
        # "A child is mentioned": on whenever any age option is, the specific ones included.
        Slot("any_child", tuple(("age", v) for v in (
            AGE_BABY, AGE_TODDLER, AGE_ELEMENTARY, AGE_MIDDLE, AGE_HIGH, AGE_SCHOOL,
            AGE_GENERAL, AGE_UNSURE))),
    ),
    gate=Slot("is_child", (("is_child", True),)),
)

HEALTH_SLOTS = (
    Slot("is_health", (("is_health", True),)),
    Slot("negative", (("health_impact", "Negative impact"),)),
    Slot("positive", (("health_impact", "Positive impact"),)),
    Slot("no_impact", (("health_impact", "No impact"),)),
    Slot("cognitive", (("health_type", "Cognitive health"),)),
    Slot("emotional_social", (("health_type", "Emotional/social health"),)),
    Slot("physical", (("health_type", "Physical health"),)),
)

HEALTH = Family(
    name="health",
    title="Health",
    help="Whether the post mentions a human health symptom or outcome, its direction and kind.",
    questions=(
        Question(
            name="is_health",
            kind="yes_no",
            prompt="Is a health symptom or outcome mentioned in the tweet "
            "(doesn't have to be a child)?",
            help="Yes when the post mentions a symptom (trouble breathing, anxiety, brain fog) or "
            "an outcome (asthma, depression, memory loss) of any person, emotional and social "
            "ones included. Animal health and figures of speech about the planet do not count.",
        ),
        Question(
            name="health_impact",
            kind="multi",
            prompt="Does the tweet author imply a positive or negative health impact "
            "(can select multiple)?",
            help="Asked only when health is mentioned. Judge by what the author believes, even "
            "when the belief is wrong.",
            options=(
                Option(
                    "Negative impact", "The author sees harm, for example stress or an illness."
                ),
                Option(
                    "Positive impact",
                    "The author sees a benefit, for example relief, treatment or prevention.",
                ),
                Option("No impact", "Neither good nor bad. Use rarely."),
            ),
            show_when=ShowWhen("is_health", equals=True),
        ),
        Question(
            name="health_type",
            kind="multi",
            prompt="Is (are) the health impact(s) referring to cognitive, emotional/social, or "
            "physical health (can select multiple)?",
            help="Asked only when health is mentioned. Pick every kind of health the post touches.",
            options=(
                Option("Cognitive health", "Thinking, learning, memory, processing information."),
                Option("Emotional/social health", "Feelings, mood, relationships, social skills."),
                Option("Physical health", "The body: illness, injury, breathing, growth."),
            ),
            show_when=ShowWhen("is_health", equals=True),
        ),
    ),
    slots=HEALTH_SLOTS,
    study_slots=HEALTH_SLOTS,  # the study's health vector is the detailed one
    gate=Slot("is_health", (("is_health", True),)),
)

FAMILIES: dict[str, Family] = {f.name: f for f in (PLACE, CHILD, HEALTH)}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)

# Older spellings from the data dictionary, mapped to the strings the labeled data carries.
ALIASES: dict[tuple[str, str], str] = {
    ("location", "A Home"): "A home",
    ("location", "Neighborhood"): "Neigborhood (but not on home property, etc)",
    ("age", "0 to less than 1 years (baby/infant)"): AGE_BABY,
}


def family(name: str) -> Family:
    """The family called ``name``; a ValueError names the allowed ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown family {name!r}; expected one of: {', '.join(FAMILY_NAMES)}"
        ) from None


def consistent_answers(family_name: str, posteriors: Mapping[str, float]) -> dict[str, Any]:
    """The most probable label that obeys the codebook, from each binary item's probability
    of being true (items as ``binary_items`` names them: ``is_child``, ``age=<option>``).

    Questions are decided in order, so a conditional question is answered exactly when its
    condition holds. A multi question takes every option above one half; when none is, its
    most probable option (a child always gets an age group; with nothing to go on, the
    question's "unsure" option); when an exclusive option meets others, the likelier side
    wins. The result always passes ``validate``."""
    fam = family(family_name)
    answers: dict[str, Any] = {}
    for q in fam.questions:
        if q.show_when is not None and not q.show_when.holds(answers):
            continue
        if q.kind == "yes_no":
            answers[q.name] = float(posteriors.get(q.name, 0.0)) >= 0.5
            continue
        p = {o.value: float(posteriors.get(f"{q.name}={o.value}", 0.0)) for o in q.options}
        picked = [v for v in q.values if p[v] >= 0.5]
        if not picked:
            known = [v for v in q.values if f"{q.name}={v}" in posteriors]
            if known:
                picked = [max(known, key=lambda v: p[v])]
            else:
                unsure = [o.value for o in q.options if o.unsure]
                picked = [unsure[0] if unsure else q.values[-1]]
        for opt in q.options:
            if opt.exclusive and opt.value in picked and len(picked) > 1:
                others = [v for v in picked if v != opt.value]
                if p[opt.value] >= max(p[v] for v in others):
                    picked = [opt.value]
                else:
                    picked = others
        answers[q.name] = picked
    return answers


def is_unsure(family_name: str, answers: Mapping[str, Any]) -> bool:
    """Did the coder pick any option that means they could not tell?"""
    fam = family(family_name)
    return any(o.unsure and o.value in (answers.get(q.name) or [])
               for q in fam.questions if q.kind == "multi" for o in q.options)


def says_no(family_name: str, answers: Mapping[str, Any]) -> bool:
    """Did the coder answer the family's first yes/no question with no?"""
    fam = family(family_name)
    first = fam.questions[0]
    return first.kind == "yes_no" and answers.get(first.name) is False


def canonical_option(field_name: str, value: str) -> str:
    """Map an older spelling of an option to the canonical string; others are returned as-is."""
    return ALIASES.get((field_name, value), value)


def validate(family_name: str, answers: Any) -> list[FieldError]:
    """Every problem with ``answers`` for ``family_name``, all at once; empty when valid."""
    try:
        fam = family(family_name)
    except ValueError as exc:
        return [FieldError("family", str(exc))]
    if not isinstance(answers, Mapping):
        return [FieldError("answers", "must be an object mapping each question to its answer")]
    errors: list[FieldError] = []
    known = {q.name for q in fam.questions}
    for extra in sorted(set(answers) - known):
        errors.append(
            FieldError(extra, f"is not a question of the {fam.name} family "
                       f"(questions: {', '.join(sorted(known))})")
        )
    for q in fam.questions:
        present = q.name in answers and answers[q.name] is not None
        asked = q.show_when is None or q.show_when.holds(answers)
        if not asked:
            if present and answers[q.name] != []:
                errors.append(
                    FieldError(q.name, f"must be left out unless {q.show_when.describe()}")
                )
            continue
        if not present:
            errors.append(FieldError(q.name, "is required"))
            continue
        errors.extend(_check_value(q, answers[q.name]))
    return errors


def _check_value(q: Question, value: Any) -> list[FieldError]:
    if q.kind == "yes_no":
        if not isinstance(value, bool):
            return [FieldError(q.name, "must be true or false")]
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [FieldError(q.name, "must be a list of option strings")]
    if not value:
        return [FieldError(q.name, "pick at least one option")]
    errors = []
    allowed = q.values
    for v in value:
        if v not in allowed:
            errors.append(
                FieldError(q.name, f"{v!r} is not an option; allowed: "
                           + "; ".join(repr(a) for a in allowed))
            )
    if len(set(value)) != len(value):
        errors.append(FieldError(q.name, "lists an option more than once"))
    for opt in q.options:
        if opt.exclusive and opt.value in value and len(set(value)) > 1:
            errors.append(
                FieldError(q.name, f"{opt.value!r} cannot be combined with other options")
            )
    return errors


def normalize(family_name: str, answers: Mapping[str, Any]) -> dict[str, Any]:
    """A valid label in canonical form: unasked questions dropped, options in codebook order."""
    fam = family(family_name)
    out: dict[str, Any] = {}
    for q in fam.questions:
        if q.show_when is not None and not q.show_when.holds(answers):
            continue
        value = answers[q.name]
        out[q.name] = value if q.kind == "yes_no" else [v for v in q.values if v in value]
    return out


def _slot_on(slot: Slot, answers: Mapping[str, Any]) -> int:
    for field_name, wanted in slot.when:
        value = answers.get(field_name)
        if isinstance(wanted, bool):
            if value is wanted:
                return 1
        elif isinstance(value, list | tuple) and wanted in value:
            return 1
    return 0


def encode(family_name: str, answers: Mapping[str, Any]) -> list[int]:
    """The family's detailed multi-hot vector (one slot per option; ``Family.slots``)."""
    return [_slot_on(slot, answers) for slot in family(family_name).slots]


def encode_study(family_name: str, answers: Mapping[str, Any]) -> list[int]:
    """The study's multi-hot vector (``Family.study_slots``): the layout its models were
    trained on, where some options share a slot (child: slot 5 is "any child")."""
    return [_slot_on(slot, answers) for slot in family(family_name).study_slots]


def label_columns(family_name: str, answers: Mapping[str, Any]) -> dict[str, Any]:
    """A label's encodings as dataset columns: ``gate``, ``study_labels`` (the study's
    layout) and ``multi_hot`` (the detailed one)."""
    return {"gate": gate_value(family_name, answers),
            "study_labels": encode_study(family_name, answers),
            "multi_hot": encode(family_name, answers)}


def gate_value(family_name: str, answers: Mapping[str, Any]) -> int:
    """1 when the family's gate holds (a child, a health mention, a place was given)."""
    gate = family(family_name).gate
    return _slot_on(gate, answers) if gate is not None else 0


def as_document() -> dict[str, Any]:
    """The codebook as JSON-ready data, for the API and the page."""
    return {
        "families": [
            {
                "name": fam.name,
                "title": fam.title,
                "help": fam.help,
                "questions": [
                    {
                        "name": q.name,
                        "kind": q.kind,
                        "prompt": q.prompt,
                        "help": q.help,
                        "options": [
                            {"value": o.value, "help": o.help, "exclusive": o.exclusive,
                             "unsure": o.unsure}
                            for o in q.options
                        ],
                        "show_when": None
                        if q.show_when is None
                        else {
                            "field": q.show_when.field,
                            "equals": q.show_when.equals,
                            "any_of": list(q.show_when.any_of),
                        },
                    }
                    for q in fam.questions
                ],
                "slots": [s.name for s in fam.slots],
                "study_slots": [s.name for s in fam.study_slots],
                "gate": fam.gate.name if fam.gate else None,
            }
            for fam in FAMILIES.values()
        ]
    }
