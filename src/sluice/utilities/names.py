"""Readable names for flow runs, made from our own word lists."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "amber azure bold brave brisk calm clever cobalt coral crimson dapper eager "
    "emerald fleet gentle golden hardy humble ivory jade jolly keen lively lucid "
    "mellow misty nimble noble olive patient plucky quiet rapid rustic scarlet "
    "silver sleek sly spry steady sturdy sunny swift tawny tidy vivid warm witty zesty"
).split()
_NOUNS = (
    "badger beaver bison crane dingo egret falcon ferret finch gecko heron ibis "
    "jackal kestrel koala lemur lynx magpie marten mink newt ocelot orca osprey "
    "otter panda pelican puffin quail raven robin salmon seal shrew stoat swift "
    "tapir tern toad trout viper walrus weasel wombat wren yak"
).split()


def generate_run_name(rng: random.Random | None = None) -> str:
    """A name like ``amber-otter`` (not unique; ids are)."""
    r = rng or random
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}"


def is_generated_run_name(name: str) -> bool:
    """True for a name :func:`generate_run_name` could have made (so no one chose it)."""
    adjective, _, noun = name.partition("-")
    return adjective in _ADJECTIVE_SET and noun in _NOUN_SET


_ADJECTIVE_SET = frozenset(_ADJECTIVES)
_NOUN_SET = frozenset(_NOUNS)


def normalize_name(name: str) -> str:
    """The lookup form of a flow name: ``my_flow`` and ``my-flow`` are the same flow."""
    return name.strip().replace("_", "-").lower()
