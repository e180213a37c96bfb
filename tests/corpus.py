"""Generated documents for the reliability tests: each holds a phrase no other document has."""

from __future__ import annotations

from pathlib import Path

ANIMALS = ["otter", "heron", "lynx", "badger", "falcon", "marmot", "ibex", "puffin", "walrus", "gecko",
           "bison", "koala", "tapir", "okapi", "ferret", "condor", "jackal", "narwhal", "ocelot", "panda"]
PLACES = ["harbour", "quarry", "orchard", "glacier", "lagoon", "canyon", "meadow", "volcano", "delta", "fjord"]


def phrase(i: int) -> str:
    return f"the {ANIMALS[i % len(ANIMALS)]} of the {PLACES[(i // len(ANIMALS)) % len(PLACES)]} number {i}"


def write_corpus(folder: Path, count: int, paragraphs: int = 3) -> list[Path]:
    """`count` files doc-000.md ...; file i is about phrase(i)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        body = [f"# Field report {i}", f"This report describes {phrase(i)} in detail."]
        for p in range(paragraphs):
            body.append(f"Observation {p} about {phrase(i)}: the animal was seen at dawn near the water, "
                        f"feeding and resting while the survey team counted tracks and took notes "
                        f"on weather, light and the behaviour of {phrase(i)}.")
        path = folder / f"doc-{i:03d}.md"
        path.write_text("\n\n".join(body) + "\n")
        paths.append(path)
    return paths
