"""Write the quickstart's small text-classification dataset (configs/data/quickstart/*.tsv).

Four topics (sports, food, weather, technology); each sentence is drawn from a few templates filled
with topic words and shared filler, then some words are swapped for other topics' words and a few
labels are flipped, so a model has to learn from word content and cannot reach 100%. The output is
deterministic (seeded); run ``python configs/data/make_quickstart_data.py`` to regenerate it.
"""

from __future__ import annotations

import csv
import os
import random

TOPICS = {
    "sports": {
        "nouns": ["team", "coach", "goal", "match", "season", "league", "striker", "referee", "stadium",
                  "tournament", "player", "score", "defense", "final", "trophy"],
        "verbs": ["won", "lost", "scored", "defended", "trained", "tackled", "played", "celebrated"],
        "adjs": ["fast", "strong", "unbeaten", "injured", "athletic", "competitive"],
    },
    "food": {
        "nouns": ["soup", "recipe", "bread", "chef", "oven", "garlic", "salad", "dessert", "kitchen",
                  "pasta", "spice", "sauce", "flavor", "dinner", "butter"],
        "verbs": ["baked", "cooked", "tasted", "seasoned", "served", "roasted", "stirred", "ate"],
        "adjs": ["delicious", "spicy", "sweet", "crispy", "savory", "fresh"],
    },
    "weather": {
        "nouns": ["rain", "storm", "forecast", "wind", "cloud", "snow", "temperature", "sunshine",
                  "thunder", "humidity", "fog", "frost", "breeze", "drought", "flood"],
        "verbs": ["poured", "blew", "froze", "cleared", "flooded", "warmed", "drizzled", "cooled"],
        "adjs": ["cold", "humid", "stormy", "sunny", "windy", "chilly"],
    },
    "technology": {
        "nouns": ["software", "laptop", "network", "server", "update", "chip", "app", "database",
                  "robot", "battery", "screen", "browser", "algorithm", "code", "cloud service"],
        "verbs": ["crashed", "installed", "compiled", "launched", "upgraded", "rebooted", "deployed", "hacked"],
        "adjs": ["wireless", "digital", "faster", "buggy", "secure", "open source"],
    },
}
FILLER = ["the", "a", "this", "that", "our", "their", "today", "yesterday", "again", "really", "very",
          "quite", "after", "before", "during", "we", "they", "everyone", "nobody", "it"]
TEMPLATES = [
    "{f} {n} {v} {f} {a} {n2}",
    "{f} {a} {n} {v} {f}",
    "why {v} the {n} {f} {f} {a} {n2} ?",
    "{f} said the {n} was {a} and the {n2} {v}",
    "{f} {f} {n} {v} , {f} {a} {n2} {v2}",
    "i think the {a} {n} {v} {f}",
]
SPLITS = {"train": 2400, "val": 400, "test": 600}
SWAP_RATE = 0.15   # share of topic words replaced by another topic's word
FLIP_RATE = 0.04   # share of labels replaced by a random topic


def sentence(rng: random.Random, topic: str) -> str:
    words = TOPICS[topic]

    def pick(kind: str) -> str:
        source = topic if rng.random() > SWAP_RATE else rng.choice(list(TOPICS))
        return rng.choice(TOPICS[source][kind])

    template = rng.choice(TEMPLATES)
    return template.format(f=rng.choice(FILLER), n=pick("nouns"), n2=pick("nouns"), v=pick("verbs"),
                           v2=rng.choice(words["verbs"]), a=pick("adjs")).replace("{f}", rng.choice(FILLER))


def main() -> None:
    rng = random.Random(2024)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quickstart")
    os.makedirs(out, exist_ok=True)
    topics = sorted(TOPICS)
    for split, size in SPLITS.items():
        with open(os.path.join(out, f"{split}.tsv"), "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["text", "label"])
            for i in range(size):
                topic = topics[i % len(topics)]
                text = sentence(rng, topic)
                label = rng.choice(topics) if rng.random() < FLIP_RATE else topic
                writer.writerow([text, label])


if __name__ == "__main__":
    main()
