"""A deterministic demo corpus: posts per family from the study's keyword lists, some with images,
plus practice and QA gold posts whose answers follow from their text.

Post text is made up here (the study's posts were never published); keywords are real.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from trainset import codebook

KEYWORD_FILES = {
    "place": ("place",),
    "child": ("child", "age"),
    "health": ("health", "health2"),
}


@dataclass(frozen=True)
class GoldTemplate:
    text: str
    answers: dict[str, Any]
    rationale: str


GOLD_TEMPLATES: dict[str, tuple[GoldTemplate, ...]] = {
    "child": (
        GoldTemplate("My {kw} daughter took her first steps across the kitchen today!",
                     {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]},
                     "First steps put the child in the toddler group; she is named directly."),
        GoldTemplate("Newborn nephew arrived at 3am, all 7 pounds of him. {kw}",
                     {"is_child": True, "age": ["0 to less than 1 year (baby/infant)"]},
                     "A newborn is a baby under one year."),
        GoldTemplate("Remember when we were kids and the {kw} smoke never bothered us?",
                     {"is_child": False},
                     "Adults remembering their own childhood do not count as a child."),
        GoldTemplate("Our 8th graders presented their {kw} science fair projects tonight.",
                     {"is_child": True, "age": ["11 to 13 years (middle school)"]},
                     "8th graders are middle-schoolers."),
        GoldTemplate("Kids everywhere deserve clean air. {kw}",
                     {"is_child": True, "age": ["No specific age (children general)"]},
                     "Children in general, no age group given."),
    ),
    "place": (
        GoldTemplate("Air purifier running all day in the living room because of the {kw}.",
                     {"location_cat": ["Indoor location"], "location": ["A home"]},
                     "A living room is inside a home."),
        GoldTemplate("Recess cancelled again, the playground at school smells of {kw}.",
                     {"location_cat": ["Outdoor location"],
                      "location": ["School", "Park/playground/child sports center"]},
                     "A school playground is both school grounds and a play area, outdoors."),
        GoldTemplate("Thinking about {kw} a lot lately.",
                     {"location_cat": ["No location/unsure"]},
                     "Nothing in the post says where it happens."),
        GoldTemplate("Daycare kept the kids inside today, {kw} alert in effect.",
                     {"location_cat": ["Indoor location"], "location": ["Childcare/daycare"]},
                     "The children stayed inside the daycare."),
    ),
    "health": (
        GoldTemplate("Son's asthma flared up twice this week with all the {kw}.",
                     {"is_health": True, "health_impact": ["Negative impact"],
                      "health_type": ["Physical health"]},
                     "An asthma flare is a negative physical outcome."),
        GoldTemplate("Walking in the park every morning has done wonders for my anxiety. {kw}",
                     {"is_health": True, "health_impact": ["Positive impact"],
                      "health_type": ["Emotional/social health"]},
                     "Less anxiety is a positive emotional outcome."),
        GoldTemplate("New {kw} policy announced by the city council today.",
                     {"is_health": False},
                     "No symptom or outcome is mentioned."),
        GoldTemplate("Brain fog and headaches since the {kw} started, can't focus at work.",
                     {"is_health": True, "health_impact": ["Negative impact"],
                      "health_type": ["Cognitive health", "Physical health"]},
                     "Brain fog affects thinking; headaches are physical; both are negative."),
    ),
}

# Practice posts have texts of their own: were they the QA gold texts, a coder who practised
# would recognise the gold posts mixed into real work. Same answers, same rationale style.
PRACTICE_TEMPLATES: dict[str, tuple[GoldTemplate, ...]] = {
    "child": (
        GoldTemplate("Our two-year-old refused her nap again, blaming the {kw} outside.",
                     {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]},
                     "A two-year-old is a toddler."),
        GoldTemplate("Baby's first bath at home tonight, {kw} or not. Three weeks old!",
                     {"is_child": True, "age": ["0 to less than 1 year (baby/infant)"]},
                     "Three weeks old is a baby under one year."),
        GoldTemplate("As a teacher I have seen {kw} coverage change a lot over the years.",
                     {"is_child": False},
                     "A teacher talking about their career mentions no child."),
        GoldTemplate("My 12 year old is doing a school report on {kw} this week.",
                     {"is_child": True, "age": ["11 to 13 years (middle school)"]},
                     "A 12 year old is in the middle-school group."),
        GoldTemplate("Every child should be able to play outside without worrying about {kw}.",
                     {"is_child": True, "age": ["No specific age (children general)"]},
                     "Children in general, no age group given."),
    ),
    "place": (
        GoldTemplate("Windows shut and fans on in the bedroom all night, {kw} is brutal.",
                     {"location_cat": ["Indoor location"], "location": ["A home"]},
                     "A bedroom is inside a home."),
        GoldTemplate("Soccer practice at the park went ahead despite the {kw}.",
                     {"location_cat": ["Outdoor location"],
                      "location": ["Park/playground/child sports center"]},
                     "Soccer practice in a park is an outdoor play and sports place."),
        GoldTemplate("Some days {kw} is all anyone talks about.",
                     {"location_cat": ["No location/unsure"]},
                     "Nothing in the post says where it happens."),
        GoldTemplate("The preschool room stayed closed to outside air for the {kw}.",
                     {"location_cat": ["Indoor location"], "location": ["Childcare/daycare"]},
                     "A preschool room is an indoor childcare place."),
    ),
    "health": (
        GoldTemplate("Daughter has had a cough for a week since the {kw} rolled in.",
                     {"is_health": True, "health_impact": ["Negative impact"],
                      "health_type": ["Physical health"]},
                     "A lasting cough is a negative physical outcome."),
        GoldTemplate("Gardening with friends has really lifted my mood lately. {kw}",
                     {"is_health": True, "health_impact": ["Positive impact"],
                      "health_type": ["Emotional/social health"]},
                     "A lifted mood with friends is a positive emotional and social outcome."),
        GoldTemplate("Town hall meeting on {kw} moved to Thursday.",
                     {"is_health": False},
                     "No symptom or outcome is mentioned."),
        GoldTemplate("Can't concentrate and my chest feels tight with this {kw}.",
                     {"is_health": True, "health_impact": ["Negative impact"],
                      "health_type": ["Cognitive health", "Physical health"]},
                     "Poor concentration is cognitive; a tight chest is physical; both negative."),
    ),
}

# Real photos with faces, shipped by scikit-image (the demo's face-clipping material).
REAL_PHOTOS = {"demo/photos/astronaut.jpg": "astronaut", "demo/photos/camera.jpg": "camera"}

FILLER = (
    "Anyone else dealing with {kw} this week?",
    "Can't stop thinking about {kw} after today.",
    "{kw} again. Third time this month. #parenting",
    "Photo from this morning: {kw} everywhere around the neighborhood.",
    "Reading up on {kw} and what it means for families.",
    "Honestly the {kw} situation is getting out of hand.",
    "Grateful for the people working on {kw} in our town.",
    "Quick question for the group about {kw} - any advice?",
)


def keywords(family: str) -> list[str]:
    """The study's search keywords for ``family`` (deduplicated, in file order)."""
    codebook.family(family)
    seen: dict[str, None] = {}
    for name in KEYWORD_FILES[family]:
        path = resources.files("trainset").joinpath("data", "keywords", f"{name}.csv")
        text = path.read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            word = (row.get("keywords") or "").strip()
            if word:
                seen.setdefault(word, None)
    return list(seen)


def posts(per_family: int = 120, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Regular demo posts; about a third carry an image key (images come from ``images``)."""
    rng = random.Random(seed)
    for family in codebook.FAMILY_NAMES:
        words = keywords(family)
        for i in range(per_family):
            kw = words[i % len(words)]
            image = None
            if i % 3 == 0:
                image = f"demo/{family}/{i:04d}.jpg"
            if i % 40 == 5:
                image = "demo/photos/astronaut.jpg"
            if i % 40 == 25:
                image = "demo/photos/camera.jpg"
            yield {
                "id": f"demo-{family}-{i:04d}",
                "text": rng.choice(FILLER).format(kw=kw),
                "keyword": kw,
                "family": family,
                "author": f"user{rng.randrange(10_000):04d}",
                "image_key": image,
            }


def gold(seed: int = 7) -> Iterator[tuple[dict[str, Any], str, dict[str, Any], str]]:
    """(post, purpose, answers, rationale): the practice posts from PRACTICE_TEMPLATES, the QA
    gold posts from GOLD_TEMPLATES, so no practice text gives a gold post away."""
    rng = random.Random(seed + 1)
    for family, templates in GOLD_TEMPLATES.items():
        words = keywords(family)
        for purpose, texts in (("practice", PRACTICE_TEMPLATES[family]), ("qa", templates)):
            for j, template in enumerate(texts):
                kw = rng.choice(words)
                post = {
                    "id": f"gold-{purpose}-{family}-{j:02d}",
                    "text": template.text.format(kw=kw),
                    "keyword": kw,
                    "family": family,
                    "author": f"user{rng.randrange(10_000):04d}",
                    "image_key": None,
                }
                yield post, purpose, template.answers, template.rationale


def render_image(key: str, seed: int = 7) -> bytes:
    """A JPEG for a demo image key: a real photo for ``demo/photos/*``, else a drawn scene."""
    from PIL import Image, ImageDraw

    if key in REAL_PHOTOS:
        from skimage import data  # ships these photos: no download

        image = Image.fromarray(getattr(data, REAL_PHOTOS[key])()).convert("RGB")
    else:
        rng = random.Random(f"{seed}:{key}")
        image = Image.new("RGB", (640, 480), tuple(rng.randrange(60, 200) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x, y = rng.randrange(600), rng.randrange(440)
            size = rng.randrange(20, 160)
            colour = tuple(rng.randrange(256) for _ in range(3))
            if rng.random() < 0.5:
                draw.ellipse((x, y, x + size, y + size), fill=colour)
            else:
                draw.rectangle((x, y, x + size, y + size // 2), fill=colour)
        draw.text((16, 16), key, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()
